"""What every benchmark part shares: sample images, the model under test, statistics, result rows, and a
throw-away stack on the harness of `make run` (own redis-server on a free port, own SQLite file, own media
folder, own Celery queue).

Nothing here imports TensorFlow or Django at module level: the measuring process must stay as lean as the
web and worker processes it measures. The shared Redis at 127.0.0.1:6379 is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.synthetic import build_model_dir_in_subprocess, encode_image, lesion_jpeg
from melanoma_site.stack import DEVELOPMENT_SETTINGS, Stack, isolated_env

REPO = Path(__file__).resolve().parent.parent
SHARED_DERM = Path(os.environ.get("MELANOMA_SHARED_DERM", str(REPO.parent / "shared" / "derm")))
BENCH_VAR = REPO / "var" / "bench"
PYTHON = sys.executable
# The full-size photo of the issue: a 12 MP phone-camera JPEG (../shared/derm/uploads are 3072x2304).
FULL_PHOTO_SIZE = (3072, 2304)


# --- results ----------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: `part`, what was measured, the figure, and how it was obtained."""

    part: str
    name: str
    value: float | str | None
    unit: str = ""
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    summary: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, part: str, name: str, value: float | str | None, unit: str = "", note: str = "") -> None:
        self.rows.append(Row(part, name, value, unit, note))


def log(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the table and the summary line."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- statistics -------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def time_calls_ms(function: Callable[[], object], *, repeats: int, warmup: int) -> list[float]:
    """Wall time of each of `repeats` calls after `warmup` untimed ones, in milliseconds."""
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000.0)
    return timings


# --- sample images ----------------------------------------------------------------------------------


def shared_available() -> bool:
    return (SHARED_DERM / "uploads").is_dir() and (SHARED_DERM / "ham10000").is_dir()


@dataclass(frozen=True)
class SampleImage:
    label: str  # e.g. "224x224 JPEG"
    source: str  # a path, or "generated"
    data: bytes


def sample_images() -> tuple[SampleImage, SampleImage]:
    """(a 224x224 HAM10000 JPEG, a full-size 3072x2304 photo), real when ../shared is there, else generated."""
    if shared_available():
        small = sorted((SHARED_DERM / "ham10000").rglob("*.jpg"))[0]
        full = sorted((SHARED_DERM / "uploads").glob("*.jpg"))[0]
        return (
            SampleImage("224x224 JPEG (HAM10000)", str(small), small.read_bytes()),
            SampleImage("full photo 3072x2304 JPEG", str(full), full.read_bytes()),
        )
    return (
        SampleImage("224x224 JPEG (generated)", "generated", lesion_jpeg(224, 224, quality=95)),
        SampleImage("full photo 3072x2304 JPEG (generated)", "generated", lesion_jpeg(*FULL_PHOTO_SIZE, quality=92)),
    )


# --- the model under test ---------------------------------------------------------------------------

# Without a shipped model, bench times a MobileNetV2 of the real architecture (random weights: speed does not
# depend on them), built by bench/synthetic.py in a subprocess: TensorFlow never enters the measuring process.


def shipped_model_dir() -> Path | None:
    """The newest usable model folder under models/ (the default model), if one is shipped."""
    from lesion_model.model_card import ModelCardError, read_model_card  # noqa: PLC0415

    usable: list[tuple[str, Path]] = []
    for card_path in sorted((REPO / "models").glob("*/model_card.json")):
        try:
            card = read_model_card(card_path.parent)
        except ModelCardError:
            continue
        usable.append((str(card.get("created", "")), card_path.parent))
    return max(usable)[1] if usable else None


def bench_model_dir() -> tuple[Path, str]:
    """(model folder, how it was obtained). The shipped model when there is one; otherwise an untrained
    MobileNetV2 224 export cached under var/bench/ (built once, ~1 minute)."""
    override = os.environ.get("BENCH_MODEL_DIR")
    if override:
        return Path(override).resolve(), f"BENCH_MODEL_DIR={override}"
    shipped = shipped_model_dir()
    fallback_reason = "no shipped model"
    if shipped is not None:
        if _scores_finite(shipped):
            return shipped, f"shipped model {shipped.relative_to(REPO)}"
        # Timing a broken file would report the wrong graph's speed (the NaN exports kept 1064 ops, not 71).
        fallback_reason = f"shipped model {shipped.relative_to(REPO)} does not load or scores NaN, not timed"
        log(fallback_reason)
    # An untrained MobileNetV2 of the real architecture (speed does not depend on the weights), built in a
    # subprocess (bench/synthetic.py): TensorFlow never enters the measuring process.
    target = BENCH_VAR / "models" / "bench-mobilenetv2-224"
    if (target / "model_card.json").is_file() and not _scores_finite(target):
        shutil.rmtree(target)  # cached from an older, broken export: build it again
    if not (target / "model_card.json").is_file():
        log("no shipped model under models/: building an untrained MobileNetV2 224 LiteRT export (once)")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        build_model_dir_in_subprocess(
            partial, size=224, architecture="mobilenetv2", version="bench-mobilenetv2-224-untrained"
        )
        shutil.rmtree(target, ignore_errors=True)
        partial.replace(target)
    return target, f"{fallback_reason}: untrained MobileNetV2 224 of the same architecture (var/bench/)"


def _scores_finite(model_dir: Path) -> bool:
    from lesion_model.model_card import ModelCardError  # noqa: PLC0415
    from lesion_model.scorer import MelanomaScorer  # noqa: PLC0415 - no TensorFlow

    try:
        scorer = MelanomaScorer(model_dir, num_threads=1)
        pixels = np.full((scorer.input_size, scorer.input_size, 3), 128, dtype=np.uint8)
        return bool(np.isfinite(scorer.score_bytes(encode_image(pixels, "PNG"))))
    except ModelCardError:  # the scorer refuses non-finite scores itself
        return False


def read_card(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))


# --- processes --------------------------------------------------------------------------------------


def rss_mib(pid: int) -> float | None:
    """Resident set size of one process (VmRSS), MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def mapped_libraries(pid: int) -> set[str]:
    files = set()
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                files.add(parts[5])
    except OSError:
        pass
    return files


def tensorflow_loaded(pid: int) -> bool:
    """True when the process has any of TensorFlow's files mapped (its package or libtensorflow*).

    Importing `tensorflow` maps site-packages/tensorflow/*.so; LiteRT lives in ai_edge_litert/ instead.
    """
    return any("/site-packages/tensorflow/" in path or "libtensorflow" in path for path in mapped_libraries(pid))


def litert_loaded(pid: int) -> bool:
    return any("/ai_edge_litert/" in path for path in mapped_libraries(pid))


# --- a throw-away stack -----------------------------------------------------------------------------


@contextmanager
def bench_stack(model_dir: Path) -> Iterator[Stack]:
    """The stack harness of `make run` (melanoma_site/stack.py) on its own redis-server, SQLite file (or
    BENCH_DATABASE_URL), media folder and queue, logging to files; the model under test is the only one under
    MELANOMA_MODELS_DIR, so that `register_models` registers and activates it."""
    directory = Path(tempfile.mkdtemp(prefix="melanoma-bench-"))
    env = isolated_env(
        directory,
        settings_module=DEVELOPMENT_SETTINGS,
        database_url=os.environ.get("BENCH_DATABASE_URL"),
        MELANOMA_MODELS_DIR=str(model_dir.parent),
        # The per-user upload limit protects production from floods; the benchmark is one deliberate flood.
        MELANOMA_UPLOAD_RATE_PER_MINUTE="100000",
        LOG_LEVEL="WARNING",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    stack = Stack(env=env, var_dir=directory / "var", log_dir=directory / "logs", log_level="WARNING")
    try:
        with stack:
            yield stack
    finally:
        if os.environ.get("BENCH_KEEP"):
            log(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def setup_django(stack: Stack) -> None:
    """Point this process at the stack's database, so that it can create rows through the services and read
    their timestamps; `register_models` registers and activates the model under MELANOMA_MODELS_DIR."""
    os.environ.update(stack.env)
    import django  # noqa: PLC0415

    django.setup()
    from django.core.management import call_command  # noqa: PLC0415

    call_command("migrate", verbosity=0, interactive=False)
    call_command("register_models", verbosity=0)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
