"""The serving entry point the Celery worker calls: image bytes -> raw score, calibrated probability, risk level.

The active ModelVersion's LiteRT model is loaded once per process, lazily (never before the worker
forks), and reloaded when another version is activated: each call checks the active row (one indexed
query) and swaps the cached scorer only when the version changed. No TensorFlow here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from classifier.models import ModelVersion
from classifier.selectors import model_version_get_active
from classifier.services.model_artifacts import model_version_local_dir
from lesion_model.decode import ImageError
from lesion_model.model_card import ModelCardError
from lesion_model.scorer import MelanomaScorer


class InferenceError(Exception):
    """Scoring failed; the message is fit to show a user or store on the prediction row."""


class ModelUnavailable(InferenceError):
    """No active model, or its folder/file/card is missing or corrupt (an operator must fix it; not the user)."""


class ImageUnreadable(InferenceError):
    """The uploaded file cannot be decoded as an image."""


@dataclass(frozen=True)
class InferenceResult:
    score: float  # the model's raw output; the verdict compares it with the threshold
    melanoma_probability: float | None  # calibrated by the model card; None when the card has no calibration
    risk_level: str  # lesion_model.calibration: low / moderate / high
    threshold: float
    model_version: str
    model_version_id: int


# (ModelVersion id, path, artifact SHA-256) -> scorer; one entry: the active model of this process.
_cache: dict[tuple[int, str, str], MelanomaScorer] = {}
_cache_lock = threading.Lock()


def _scorer_for(model_version: ModelVersion) -> MelanomaScorer:
    key = (model_version.pk, model_version.path, (model_version.artifact or {}).get("sha256", ""))
    scorer = _cache.get(key)
    if scorer is not None:
        return scorer
    with _cache_lock:
        scorer = _cache.get(key)
        if scorer is None:
            try:
                # The registered folder, or the verified download of the object store's copy.
                scorer = MelanomaScorer(model_version_local_dir(model_version))
            except ModelCardError as error:
                raise ModelUnavailable(f"Model {model_version.version} cannot be loaded: {error}") from error
            _cache.clear()  # drop the previous version's interpreter
            _cache[key] = scorer
    return scorer


def get_active_scorer() -> tuple[ModelVersion, MelanomaScorer]:
    model_version = model_version_get_active()
    if model_version is None:
        raise ModelUnavailable("No model is active. Register one with `manage.py train_model --activate` or migrate.")
    return model_version, _scorer_for(model_version)


def predict_melanoma(image_bytes: bytes) -> InferenceResult:
    """Score one uploaded image with the active model. Raises ModelUnavailable or ImageUnreadable."""
    model_version, scorer = get_active_scorer()
    try:
        score = scorer.score_bytes(image_bytes)
    except ImageError as error:
        raise ImageUnreadable(f"The image could not be read: {error}") from error
    except ModelCardError as error:
        raise ModelUnavailable(f"Model {model_version.version} cannot score images: {error}") from error
    # The row's threshold is the card's, copied at registration (training/card.py: the card is its one source).
    threshold = float(model_version.threshold)
    interpretation = scorer.interpret(score, threshold=threshold)
    return InferenceResult(
        score=score,
        melanoma_probability=interpretation.melanoma_probability,
        risk_level=interpretation.risk_level,
        threshold=threshold,
        model_version=model_version.version,
        model_version_id=model_version.pk,
    )


def clear_cache() -> None:
    """Forget the loaded model (tests; or after replacing a model folder in place)."""
    with _cache_lock:
        _cache.clear()
