"""The benchmark's own plumbing: the summary line's exact format, the table, the training figures read from a
model card, the TensorFlow detector. No timings are asserted (speed is reported by `make bench`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.__main__ import print_table, summary_line
from bench.common import Results, lesion_jpeg, percentile, rss_mib, tensorflow_loaded
from bench.training import bench_training


def test_summary_line_has_the_documented_keys_in_order():
    line = summary_line(
        {
            "serve_speedup": 17.04,
            "serve_ms_full_photo": 21.26,
            "e2e_p50_ms": 98.4,
            "e2e_p95_ms": 130.6,
            "worker_rss_mib": 140.2,
            "train_min": 18.25,
        }
    )
    assert line == (
        "bench: serve_speedup=17.0 serve_ms_full_photo=21.3 e2e_p50_ms=98 e2e_p95_ms=131 "
        "worker_rss_mib=140 train_min=18.2"
    )


def test_missing_figures_print_as_na():
    assert summary_line({}) == (
        "bench: serve_speedup=n/a serve_ms_full_photo=n/a e2e_p50_ms=n/a e2e_p95_ms=n/a "
        "worker_rss_mib=n/a train_min=n/a"
    )


def test_table_lists_every_row(capsys):
    results = Results()
    results.add("1 serving", "ours", 3.14159, "ms/image", "1 thread")
    results.add("4 memory", "TensorFlow loaded", "no")
    results.add("5 training", "total", None, "min")
    print_table(results, ["header"])
    out = capsys.readouterr().out
    assert "header" in out
    assert "3.14" in out
    assert "ms/image" in out
    assert "1 thread" in out
    assert "no" in out
    assert "n/a" in out


def test_training_figures_come_from_the_card(tmp_path: Path):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    card = {"training_time_s": 900.0, "recipe": {"epochs": 10}, "timings_s": {"train_s": 600.0, "cache_s": 250.0}}
    (model_dir / "model_card.json").write_text(json.dumps(card))
    results = Results()
    bench_training(results, model_dir, retrain=False)
    assert results.summary["train_min"] == 15.0
    figures = {row.name: row.value for row in results.rows}
    assert figures["time per epoch"] == 60.0


def test_logistic_recipe_reports_time_per_image_view(tmp_path: Path):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    recipe = {"head": "logistic", "ms_per_image_view": 10.8, "training_views": ["identity", "shades_of_gray"]}
    card = {"training_time_s": 144.0, "recipe": recipe, "timings_s": {"cache_s": 116.2, "train_s": 4.4}}
    (model_dir / "model_card.json").write_text(json.dumps(card))
    results = Results()
    bench_training(results, model_dir, retrain=False)
    assert results.summary["train_min"] == 2.4
    figures = {row.name: row.value for row in results.rows}
    assert figures["backbone features per image and view"] == 10.8
    assert "time per epoch" not in figures


def test_tensorflow_detector_and_rss_on_real_processes():
    # Other tests in this session may have imported TensorFlow here, so the detector must agree with
    # sys.modules in this process, and see nothing in a fresh interpreter that never imports it.
    assert tensorflow_loaded(os.getpid()) == ("tensorflow" in sys.modules)
    assert (rss_mib(os.getpid()) or 0) > 0
    # A bare interpreter reading its program from a pipe that stays open: idle, and it imports nothing.
    child = subprocess.Popen([sys.executable], stdin=subprocess.PIPE)
    try:
        time.sleep(0.3)
        assert not tensorflow_loaded(child.pid)
        assert (rss_mib(child.pid) or 0) > 0
    finally:
        child.kill()
        child.communicate()


def test_generated_photo_and_percentile():
    assert lesion_jpeg(64, 48)[:2] == b"\xff\xd8"
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5


def test_load_counts_the_cpu_of_a_process_and_its_children():
    from bench.load import tree_cpu_s

    # A child that burns ~0.4 s of CPU, then idles: its CPU counts for it and for us, its parent. /proc counts
    # user and system time in whole clock ticks, each rounded down: 0.3 s burnt once read as 0.29.
    burn = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_s(child.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tree_cpu_s(child.pid) >= 0.3
        assert tree_cpu_s(os.getpid()) >= tree_cpu_s(child.pid)
    finally:
        child.kill()
        child.communicate()
    assert tree_cpu_s(None) == 0.0


def test_upload_path_times_every_step():
    from bench.upload_path import STEPS, profile_photo

    times = profile_photo(lesion_jpeg(3072, 2304), repeats=1)
    assert set(times) == set(STEPS)
    assert all(value >= 0 for value in times.values())
    assert times["re-encoded call"] > 0
    assert 0 < times["kept call"] < times["re-encoded call"]
