"""Reads: queries that views, the API, tasks and commands share."""

from classifier.models import ModelVersion


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()
