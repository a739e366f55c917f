"""Part 5: the default `train_model` recipe's total time, and its time per image (or per epoch), on HAM10000.

By default the figures come from the shipped model's card (written by the training run itself:
`training_time_s`, `timings_s`, `recipe`). `python -m bench --train` runs the
recipe again into a temporary folder, registering it in a temporary database (the development database and
the active model are left alone), and reads the new card.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, REPO, SHARED_DERM, Results, log, read_card


def _display(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _per_epoch_s(card: dict[str, Any]) -> float | None:
    timings = card.get("timings_s") or {}
    epochs = (card.get("recipe") or {}).get("epochs")
    for key in ("train_s", "training_s", "fit_s"):
        if key in timings and epochs:
            return float(timings[key]) / float(epochs)
    history = (card.get("recipe") or {}).get("history") or []
    seconds = [entry.get("seconds") or entry.get("epoch_s") for entry in history if isinstance(entry, dict)]
    seconds = [float(value) for value in seconds if value is not None]
    if seconds:
        return sum(seconds) / len(seconds)
    return None


def _report_card(results: Results, card: dict[str, Any], origin: str) -> None:
    total_s = card.get("training_time_s")
    epochs = (card.get("recipe") or {}).get("epochs")
    timings = card.get("timings_s") or {}
    machine = card.get("training_machine", "")
    phases = ", ".join(f"{key} {value:g} s" for key, value in timings.items() if isinstance(value, int | float))
    results.add(
        "5 training",
        "default recipe, total",
        None if total_s is None else float(total_s) / 60.0,
        "min",
        f"{origin}; {machine}; {phases}",
    )
    recipe = card.get("recipe") or {}
    if recipe.get("head") == "logistic":
        # No epochs: one pass of the frozen backbone per image and view, then a convex fit of the head.
        results.add(
            "5 training",
            "backbone features per image and view",
            recipe.get("ms_per_image_view"),
            "ms",
            f"views {', '.join(recipe.get('training_views', []))}; head fit (train_s) {timings.get('train_s')} s",
        )
    else:
        results.add(
            "5 training",
            "time per epoch",
            _per_epoch_s(card),
            "s",
            (f"train_s / {epochs} epochs" if epochs else "epochs unknown")
            + "; the backbone-feature cache (cache_s) is computed once, before the epochs",
        )
    results.summary["train_min"] = None if total_s is None else float(total_s) / 60.0


def bench_training(results: Results, model_dir: Path | None, *, retrain: bool) -> None:
    if retrain:
        data = SHARED_DERM / "ham10000"
        if not data.is_dir():
            results.add("5 training", "default recipe, total", None, "min", f"skipped: {data} is absent")
            results.summary["train_min"] = None
            return
        with tempfile.TemporaryDirectory(prefix="melanoma-bench-train-") as out:
            env = {**os.environ, "DATABASE_URL": f"sqlite:///{Path(out) / 'db.sqlite3'}"}
            subprocess.run([PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=REPO, env=env, check=True)  # noqa: S603
            log("training: running the default train_model recipe (a few minutes)")
            started = time.monotonic()
            subprocess.run(  # noqa: S603
                [PYTHON, "manage.py", "train_model", "--data", str(data), "--out", str(Path(out) / "models")],
                cwd=REPO,
                env=env,
                check=True,
            )
            wall_s = time.monotonic() - started
            card = read_card(next((Path(out) / "models").glob("*/model_card.json")).parent)
        _report_card(results, card, f"re-measured now (`python -m bench --train`), command wall {wall_s / 60:.1f} min")
        return
    if model_dir is None or not (model_dir / "model_card.json").is_file():
        results.add("5 training", "default recipe, total", None, "min", "no shipped model card; run --train")
        results.summary["train_min"] = None
        return
    card = read_card(model_dir)
    if card.get("training_time_s") is not None:
        _report_card(results, card, f"from the shipped card {_display(model_dir)}")
        return
    # The shipped model was not made by train_model (no timing on its card): use the newest train_model card
    # on this machine, and say where it came from.
    local = _newest_local_train_card()
    if local is not None:
        local_dir, local_card = local
        _report_card(
            results, local_card, f"shipped card {model_dir.name} has no training time; from {_display(local_dir)}"
        )
        return
    results.add(
        "5 training",
        "default recipe, total",
        None,
        "min",
        f"{model_dir.name}: card has no training time and no local train_model card; run --train",
    )
    results.summary["train_min"] = None


def _newest_local_train_card() -> tuple[Path, dict[str, Any]] | None:
    candidates = []
    for card_path in (REPO / "var" / "models").rglob("model_card.json"):
        try:
            card = read_card(card_path.parent)
        except (OSError, ValueError):
            continue
        sources = (card.get("data") or {}).get("sources") or {}
        if card.get("training_time_s") is not None and "ham10000" in sources:
            candidates.append((str(card.get("created", "")), card_path.parent, card))
    if not candidates:
        return None
    _, model_dir, card = max(candidates, key=lambda item: item[0])
    return model_dir, card
