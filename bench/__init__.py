"""Benchmarks: `make bench` (= `python -m bench`) measures the serving path, the worker, the whole stack,
memory and training, and prints one table. Speed is reported here, never asserted in unit tests."""
