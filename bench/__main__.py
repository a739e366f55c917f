"""`make bench` = `python -m bench`: every part, one table, and a one-line summary as the last line.

    python -m bench            # all parts (~5 minutes on 2 cores); training figures from the shipped card
    python -m bench --train    # also re-run the default train_model recipe (~20 minutes)
    python -m bench --quick    # fewer repeats (a smoke run; figures are noisier)
    python -m bench --only serving,e2e

Each figure is a median over repeated runs after warm-up; the seed's baseline runs in the same invocation.
Progress goes to stderr; the table and the summary line go to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.development")

from bench.common import (  # noqa: E402 - the environment above must be set before Django is imported
    Results,
    bench_model_dir,
    bench_stack,
    load_average,
    sample_images,
    setup_django,
    shared_available,
    shipped_model_dir,
)

PARTS = ("serving", "worker", "e2e", "training")


def _format_value(value: float | str | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def print_table(results: Results, header: list[str]) -> None:
    rows = [(row.part, row.name, _format_value(row.value), row.unit, row.note) for row in results.rows]
    widths = [
        max(len(str(item[index])) for item in [("part", "measurement", "value", "unit", ""), *rows])
        for index in range(4)
    ]
    for line in header:
        print(line)
    print()
    titles = ("part", "measurement", "value", "unit", "how / breakdown")
    print("  ".join(title.ljust(width) for title, width in zip(titles, [*widths, 0], strict=True)).rstrip())
    print("  ".join("-" * width for width in [*widths, 15]))
    for part, name, value, unit, note in rows:
        cells = (part.ljust(widths[0]), name.ljust(widths[1]), value.rjust(widths[2]), unit.ljust(widths[3]), note)
        print("  ".join(cells).rstrip())
    for note in results.notes:
        print(f"note: {note}")


def summary_line(summary: dict[str, float | None]) -> str:
    def figure(key: str, digits: int) -> str:
        value = summary.get(key)
        return "n/a" if value is None else f"{value:.{digits}f}"

    return (
        f"bench: serve_speedup={figure('serve_speedup', 1)} serve_ms_full_photo={figure('serve_ms_full_photo', 1)} "
        f"e2e_p50_ms={figure('e2e_p50_ms', 0)} e2e_p95_ms={figure('e2e_p95_ms', 0)} "
        f"worker_rss_mib={figure('worker_rss_mib', 0)} train_min={figure('train_min', 1)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", action="store_true", help="re-run the default train_model recipe (~20 min)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a smoke run")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {','.join(PARTS)}")
    args = parser.parse_args(argv)
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")

    repeats = {
        "serve": 8 if args.quick else 30,
        "serve_warmup": 2 if args.quick else 5,
        "worker_n": 30 if args.quick else 120,
        "worker_runs": 1 if args.quick else 3,
        "e2e_1": 8 if args.quick else 40,
        "e2e_8": 16 if args.quick else 64,
        "e2e_warmup": 4 if args.quick else 8,
    }

    started = time.monotonic()
    load_before = load_average()
    results = Results()
    small, full = sample_images()
    if not shared_available():
        results.notes.append("../shared/derm is absent: real-image rows use generated JPEGs of the same sizes")
    shipped = shipped_model_dir()  # decided once: a model shipped during the run must not mix into the table
    model_dir, model_origin = bench_model_dir()
    results.notes.append(f"model: {model_origin}")

    if "serving" in parts:
        from bench.serving import bench_serving  # noqa: PLC0415

        bench_serving(results, model_dir, (small, full), repeats=repeats["serve"], warmup=repeats["serve_warmup"])

    if parts & {"worker", "e2e"}:
        with bench_stack(model_dir) as stack:
            setup_django(stack)
            if "worker" in parts:
                from bench.worker import bench_worker  # noqa: PLC0415

                bench_worker(results, stack, full, n_predictions=repeats["worker_n"], repeats=repeats["worker_runs"])
            if "e2e" in parts:
                from bench.e2e import bench_e2e  # noqa: PLC0415

                bench_e2e(
                    results,
                    stack,
                    full,
                    n_sequential=repeats["e2e_1"],
                    n_concurrent=repeats["e2e_8"],
                    warmup=repeats["e2e_warmup"],
                )

    if "training" in parts:
        from bench.training import bench_training  # noqa: PLC0415

        bench_training(results, shipped, retrain=args.train)

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    header = [
        f"melanoma bench  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  command: python -m bench"
        + (" --train" if args.train else "")
        + (" --quick" if args.quick else ""),
        f"machine: {os.cpu_count()} CPU cores, {memory_gib:.0f} GiB RAM, {platform.platform()}, "
        f"Python {platform.python_version()}",
        f"load average (1/5/15 min) at start: {load_before}; at end: {load_average()}; "
        f"took {time.monotonic() - started:.0f} s",
        f"images: {small.label}; {full.label}",
        "measuring process: TensorFlow "
        + (
            "IMPORTED (the seed's baseline must run in its subprocess)"
            if "tensorflow" in sys.modules
            else "not imported"
        ),
    ]
    print_table(results, header)
    print(summary_line(results.summary))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
