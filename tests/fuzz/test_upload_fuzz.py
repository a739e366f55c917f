"""Fuzzing the upload check (classifier.images.image_prepare_upload) with atheris, and the findings kept.

- `test_regression_cases`: every file under tests/fuzz/regressions/ (inputs a fuzzing run once crashed on, or that
  reproduce a defect found by attacking the service) is refused with a readable reason or accepted, never an
  unexpected exception; fast, always runs.
- `test_fuzz_the_upload_check` (slow): atheris (libFuzzer) mutates a corpus of real photos in every accepted
  format (tests/fuzz/seeds.py) for MELANOMA_FUZZ_SECONDS (default 60) in a subprocess, with a per-input timeout
  and a memory limit. A crash leaves its input under the run's artifact folder; copy it into
  tests/fuzz/regressions/ with the fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from classifier.images import ImageRejected, PreparedImage, image_prepare_upload
from tests.fuzz.seeds import write_seed_corpus

REGRESSIONS = Path(__file__).with_name("regressions")
DICTIONARY = Path(__file__).with_name("upload.dict")
FUZZ_SECONDS = int(os.environ.get("MELANOMA_FUZZ_SECONDS", "60"))
PER_INPUT_TIMEOUT_S = 10
# The fuzzing process (Django, NumPy, Pillow, LiteRT-free) starts near 200 MB; decoding may add ~300 MB.
RSS_LIMIT_MB = 1024
FORKED = ["/bin/sh", "-c", '"$@"; exit $?', "sh"]  # a fresh process whose peak RSS starts at zero


def _regression_cases() -> list[Path]:
    return sorted(path for path in REGRESSIONS.iterdir() if path.is_file() and path.name != "README.md")


@pytest.mark.parametrize("case", _regression_cases(), ids=lambda path: path.name)
def test_regression_cases(case: Path):
    started = time.monotonic()
    outcome: PreparedImage | ImageRejected
    try:
        outcome = image_prepare_upload(case.read_bytes())
    except ImageRejected as rejected:
        outcome = rejected
    if isinstance(outcome, ImageRejected):
        assert outcome.status_code in (400, 413)
        assert outcome.message
        assert "Traceback" not in outcome.message
    else:
        assert isinstance(outcome, PreparedImage)
    assert time.monotonic() - started < PER_INPUT_TIMEOUT_S


@pytest.mark.slow
def test_fuzz_the_upload_check(tmp_path):
    pytest.importorskip("atheris")
    corpus = tmp_path / "corpus"
    seeds = write_seed_corpus(corpus)
    for case in _regression_cases():
        shutil.copy(case, corpus / f"regression-{case.name}")
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    result = subprocess.run(  # noqa: S603
        [
            # Through a shell that forks: libFuzzer's -rss_limit_mb reads the process's peak RSS, and a child
            # exec'd straight from this pytest process inherits its peak (TensorFlow-sized after the training
            # tests: 2.1 GB), which libFuzzer then reports as an out-of-memory finding on the first input.
            *FORKED,
            sys.executable,
            "-m",
            "tests.fuzz.upload_target",
            str(corpus),
            f"-dict={DICTIONARY}",
            f"-max_total_time={FUZZ_SECONDS}",
            f"-timeout={PER_INPUT_TIMEOUT_S}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            "-max_len=65536",
            f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1",
        ],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "melanoma_site.settings.development"},
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 300,
    )
    findings = sorted(path.name for path in artifacts.iterdir())
    report = (
        f"atheris found {findings} (inputs under {artifacts}; keep them in tests/fuzz/regressions/ with the fix)\n"
        + result.stderr[-4000:]
    )
    assert not findings, report
    assert result.returncode == 0, report
    assert "Done" in result.stderr
    assert len(seeds) >= 8
