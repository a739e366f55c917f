"""The serving entry point the Celery worker calls: image bytes -> photo check -> raw score, calibrated
probability, risk level.

The active ModelVersion's LiteRT model is loaded once per process, lazily (never before the worker
forks), and reloaded when another version is activated: each call checks the active row (one indexed
query) and swaps the cached scorer only when the version changed. No TensorFlow here.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from classifier.images import exif_orientation, thumbnail_jpeg
from classifier.models import ModelVersion
from classifier.selectors import model_version_get_active
from classifier.services.model_artifacts import model_version_local_dir
from lesion_model.decode import ImageError, decode_image
from lesion_model.explain import heatmap_png
from lesion_model.model_card import ModelCardError
from lesion_model.preprocessing import to_model_input
from lesion_model.quality import WORKING_SIZE, PhotoCheck, QualityIssue, check_photo
from lesion_model.scorer import Analysis, MelanomaScorer

# The stored overlay's long side. It takes the photo's aspect (the model saw the photo squashed to a square), so
# the page lays it over the photo in the same box and both fit alike. Small: the map has 28 x 28 cells and the
# browser smooths it when stretching; 112 px encodes in < 1 ms (320 px optimised took 120 ms per photo).
HEATMAP_LONG_SIDE = 112


class InferenceError(Exception):
    """Scoring failed; the message is fit to show a user or store on the prediction row."""


class ModelUnavailable(InferenceError):
    """No active model, or its folder/file/card is missing or corrupt (an operator must fix it; not the user)."""


class ImageUnreadable(InferenceError):
    """The uploaded file cannot be decoded as an image."""


@dataclass(frozen=True)
class InferenceResult:
    score: float | None  # the model's raw output (the verdict compares it with the threshold); None: retake
    melanoma_probability: float | None  # calibrated by the model card; None without calibration or on retake
    risk_level: str  # lesion_model.calibration: low / moderate / high; "" on retake
    threshold: float
    model_version: str
    model_version_id: int
    quality_issue: str = ""  # lesion_model.quality.QualityIssue value: retake the photo, no verdict
    heatmap_png: bytes | None = None  # overlay of where the model looked (lesion_model.explain); None: no map
    differential: list[dict[str, Any]] = field(default_factory=list)  # top diagnoses, most likely first
    thumbnail_jpeg: bytes | None = None  # when asked for: made from the pixels decoded for the check


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


def predict_melanoma(image_bytes: bytes, *, thumbnail_side: int | None = None) -> InferenceResult:
    """Check the photo, then score it with the active model. Raises ModelUnavailable or ImageUnreadable.

    A photo the check refuses (lesion_model/quality.py) is not scored: the result names the issue instead.
    thumbnail_side: also return a thumbnail this big (a photo stored as taken has none yet), from the pixels the
    check decoded: ~1 ms instead of another decode.
    """
    model_version, scorer = get_active_scorer()
    # The row's threshold is the card's, copied at registration (training/card.py: the card is its one source).
    threshold = float(model_version.threshold)
    try:
        image, check, decoded = _decode_and_check(image_bytes, scorer)
        thumbnail = thumbnail_jpeg(decoded, thumbnail_side) if thumbnail_side is not None else None
        if check.issue is not None:
            return InferenceResult(
                score=None,
                melanoma_probability=None,
                risk_level="",
                threshold=threshold,
                model_version=model_version.version,
                model_version_id=model_version.pk,
                quality_issue=check.issue.value,
                thumbnail_jpeg=thumbnail,
            )
        model_input = (
            to_model_input(image, scorer.normalisation) if image is not None else scorer.preprocess(image_bytes)
        )
        analysis = scorer.analyse_array(model_input)
    except ImageError as error:
        raise ImageUnreadable(f"The image could not be read: {error}") from error
    except ModelCardError as error:
        raise ModelUnavailable(f"Model {model_version.version} cannot score images: {error}") from error
    if unfamiliar(analysis, scorer):
        return InferenceResult(
            score=None,
            melanoma_probability=None,
            risk_level="",
            threshold=threshold,
            model_version=model_version.version,
            model_version_id=model_version.pk,
            quality_issue=QualityIssue.UNFAMILIAR.value,
            thumbnail_jpeg=thumbnail,
        )
    score = analysis.score
    interpretation = scorer.interpret(score, threshold=threshold)
    return InferenceResult(
        score=score,
        melanoma_probability=interpretation.melanoma_probability,
        risk_level=interpretation.risk_level,
        threshold=threshold,
        model_version=model_version.version,
        model_version_id=model_version.pk,
        heatmap_png=heatmap_png(analysis.heatmap, overlay_size(image_bytes)) if analysis.heatmap is not None else None,
        differential=analysis.differential or [],
        thumbnail_jpeg=thumbnail,
    )


def overlay_size(image_bytes: bytes) -> tuple[int, int]:
    """(width, height) of the heatmap overlay: the upright photo's aspect, long side fixed."""
    with Image.open(io.BytesIO(image_bytes)) as photo:  # the header only: no pixels decoded
        width, height = photo.size
        if exif_orientation(photo) >= 5:  # a photo kept as taken may be stored on its side, shown upright
            width, height = height, width
    scale = HEATMAP_LONG_SIDE / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def unfamiliar(analysis: Analysis, scorer: MelanomaScorer) -> bool:
    """The photo check's last step: features far from every training image (the card's `familiarity`)."""
    return analysis.unfamiliar(scorer.familiarity)


def _decode_and_check(image_bytes: bytes, scorer: MelanomaScorer) -> tuple[Image.Image | None, PhotoCheck, Image.Image]:
    """Decode once for the check; hand the same pixels to the model when it takes the check's size.

    Returns (the model's size x size image or None, the check, the decoded upright photo). The image is exactly what
    `lesion_model.preprocessing.load_image` makes (same draft size, same resize) when the model's input size is the
    check's, so evaluation and serving still see the same pixels; for any other size the scorer decodes itself.
    """
    draft = max(WORKING_SIZE, scorer.input_size)
    decoded = decode_image(image_bytes, draft_size=(draft, draft))
    check = check_photo(decoded)
    if scorer.input_size != draft:
        return None, check, decoded
    size = (scorer.input_size, scorer.input_size)
    return (decoded if decoded.size == size else decoded.resize(size, Image.Resampling.BILINEAR)), check, decoded


def clear_cache() -> None:
    """Forget the loaded model (tests; or after replacing a model folder in place)."""
    with _cache_lock:
        _cache.clear()
