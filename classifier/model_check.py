"""Is a model folder usable? Load it with LiteRT and score a check image, once per version of its files.

Activation (classifier.services.model_versions) refuses a model that fails this, and /healthz reports it. A file
header says little: a truncated `model.tflite` keeps its first bytes and still names itself a LiteRT model. The
result is cached by the files' size and modification time, so a health probe every few seconds loads nothing,
and a file replaced in place is checked again.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from lesion_model.decode import ImageError
from lesion_model.model_card import CARD_FILENAME, TFLITE_FILENAME, ModelCardError

logger = logging.getLogger(__name__)

# LiteRT raises ValueError/RuntimeError on a bad file; the card and decoding raise their own errors.
_LOAD_ERRORS = (ModelCardError, ImageError, OSError, ValueError, RuntimeError, KeyError, TypeError)
_CACHE_SIZE = 8


@dataclass(frozen=True)
class ModelCheck:
    ok: bool
    detail: str  # for operators (admin message, /healthz details, logs): the error, or the check image's score


_results: dict[tuple, ModelCheck] = {}
_lock = threading.Lock()


@lru_cache(maxsize=1)
def check_image() -> bytes:
    """A photo-like JPEG (skin-toned noise, a dark blob): scored through the same decode and preprocessing as an
    upload, so a model that cannot take real input fails here rather than on the first patient's photo."""
    rng = np.random.default_rng(20261201)
    yy, xx = np.mgrid[0:256, 0:256]
    inside = ((xx - 128) ** 2 + (yy - 120) ** 2 * 1.4) < 60**2
    pixels = np.where(inside[..., None], [92, 58, 44], [214, 168, 140]) + rng.normal(0, 8, (256, 256, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _fingerprint(model_dir: Path) -> tuple:
    parts: list[object] = [str(model_dir)]
    for name in (TFLITE_FILENAME, CARD_FILENAME):
        try:
            info = (model_dir / name).stat()
        except OSError:
            parts.append(None)
        else:
            parts.append((info.st_size, info.st_mtime_ns, info.st_ino))
    return tuple(parts)


def _load_and_score(model_dir: Path) -> ModelCheck:
    from lesion_model.scorer import MelanomaScorer  # noqa: PLC0415 - LiteRT only when a check runs

    started = time.perf_counter()
    try:
        scorer = MelanomaScorer(model_dir, num_threads=1)
        probability = scorer.score_bytes(check_image())
    except _LOAD_ERRORS as error:
        return ModelCheck(ok=False, detail=f"it cannot be loaded or cannot score an image: {error}")
    if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
        return ModelCheck(ok=False, detail=f"it scored the check image {probability!r}, not a probability")
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    return ModelCheck(ok=True, detail=f"loaded, check image scored {probability:.3f} in {elapsed_ms:.0f} ms")


def model_check(model_dir: Path) -> ModelCheck:
    """Load `model_dir` and score the check image; cached until its files change."""
    model_dir = Path(model_dir).resolve()
    key = _fingerprint(model_dir)
    result = _results.get(key)
    if result is not None:
        return result
    with _lock:
        result = _results.get(key)
        if result is None:
            result = _load_and_score(model_dir)
            if not result.ok:
                logger.error("Model %s is not usable: %s", model_dir, result.detail)
            if len(_results) >= _CACHE_SIZE:
                _results.clear()
            _results[key] = result
    return result


def clear_model_checks() -> None:
    with _lock:
        _results.clear()
