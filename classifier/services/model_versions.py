"""Writes for ModelVersion rows: registering trained model folders and choosing the active one."""

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from classifier.model_check import model_check
from classifier.models import ModelVersion
from lesion_model.model_card import read_model_card

logger = logging.getLogger(__name__)


class ModelVersionUnusable(Exception):
    """The version's model cannot be loaded or cannot score an image; `message` is for the operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def model_version_path_for_storage(model_dir: Path) -> str:
    """Paths inside the project are stored relative to it, so a clone elsewhere still finds them."""
    model_dir = Path(model_dir).resolve()
    try:
        return str(model_dir.relative_to(settings.BASE_DIR))
    except ValueError:
        return str(model_dir)


def model_version_resolve_path(model_version: ModelVersion) -> Path:
    path = Path(model_version.path)
    return path if path.is_absolute() else settings.BASE_DIR / path


@transaction.atomic
def model_version_register(*, model_dir: Path, activate: bool = False) -> ModelVersion:
    """Create or update the row for a model folder from its card (raises ModelCardError if unusable).

    The only writer of a row's threshold: it is a copy of the card's, which stays the one source of truth.
    """
    card = read_model_card(model_dir)
    model_version, _ = ModelVersion.objects.update_or_create(
        version=str(card["version"]),
        defaults={
            "path": model_version_path_for_storage(model_dir),
            "threshold": float(card["threshold"]),
            "input_size": int(card["input_size"]),
            "metrics": card.get("metrics", {}),
            "card": card,
        },
    )
    if settings.MELANOMA_OBJECT_STORAGE:
        # Worker hosts load it from the object store (verified by SHA-256), not from this host's disk.
        from classifier.services.model_artifacts import model_artifact_upload  # noqa: PLC0415

        model_artifact_upload(model_version=model_version, model_dir=model_dir)
    if activate:
        model_version = model_version_activate(model_version=model_version)
    return model_version


@transaction.atomic
def model_version_activate(*, model_version: ModelVersion) -> ModelVersion:
    """Make this the version every new prediction uses, once its model has loaded and scored a check image.

    Raises ModelVersionUnusable (and changes nothing) otherwise: a broken file activated would fail every
    patient's upload until someone noticed.
    """
    check = model_check(model_version_resolve_path(model_version))
    if not check.ok:
        raise ModelVersionUnusable(f"Model version {model_version.version} was not activated: {check.detail}")
    # Deactivate first: the partial unique constraint allows one active row at any instant.
    ModelVersion.objects.filter(is_active=True).exclude(pk=model_version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=model_version.pk).update(is_active=True, activated_at=timezone.now())
    model_version.refresh_from_db()
    return model_version


def model_versions_register_shipped() -> list[ModelVersion]:
    """Register every model folder shipped under MELANOMA_MODELS_DIR; activate the newest if none is active.

    `manage.py register_models` (run by `make run` and `make migrate`) calls it, so a fresh clone predicts out
    of the box. It also keeps an upgrade that replaced the shipped model working: if the active version's
    folder is gone (a `git pull` removed it), the newest shipped one takes over, rather than every upload
    failing until an admin notices.
    """
    models_dir = Path(settings.MELANOMA_MODELS_DIR)
    registered = [
        model_version_register(model_dir=card_path.parent) for card_path in sorted(models_dir.glob("*/model_card.json"))
    ]
    active = ModelVersion.objects.filter(is_active=True).first()
    active_is_gone = active is not None and not model_version_resolve_path(active).is_dir()
    if registered and (active is None or active_is_gone):
        # The newest that loads and scores: a broken shipped file must not leave the service without a model.
        for candidate in sorted(registered, key=lambda row: str(row.card.get("created", "")), reverse=True):
            try:
                model_version_activate(model_version=candidate)
            except ModelVersionUnusable as error:
                logger.error("%s", error.message)
            else:
                break
    return registered
