"""Shared by the model commands: which registered model folder to use, as a clear CommandError if none."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from classifier.models import ModelVersion
from classifier.selectors import model_version_get_active
from classifier.services.model_versions import model_version_resolve_path
from lesion_model.model_card import ModelCardError, read_model_card


class ModelCommand(BaseCommand):
    """A command whose `--version` names a model version rather than printing Django's version."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)


def model_version_for_command(version: str | None) -> ModelVersion:
    """The named version, or the active one when no name is given."""
    if version:
        model_version = ModelVersion.objects.filter(version=version).first()
        if model_version is None:
            known = list(ModelVersion.objects.order_by("version").values_list("version", flat=True))
            listed = ", ".join(known) if known else "none registered yet (run `manage.py register_models`)"
            raise CommandError(f"Unknown model version {version!r}. Known versions: {listed}.")
        return model_version
    model_version = model_version_get_active()
    if model_version is None:
        raise CommandError(
            "No model is active. Train one with `manage.py train_model --activate`, register the shipped one with "
            "`manage.py register_models`, or name one with --version."
        )
    return model_version


def model_dir_for_command(model_version: ModelVersion) -> Path:
    """The version's folder, checked: a folder without model.tflite or model_card.json is an error."""
    model_dir = model_version_resolve_path(model_version)
    try:
        read_model_card(model_dir)
    except ModelCardError as error:
        raise CommandError(f"Model version {model_version.version} cannot be used: {error}") from error
    return model_dir


def checked_model_dir(path: str) -> Path:
    """A model folder named on the command line (not necessarily registered)."""
    model_dir = Path(path)
    try:
        read_model_card(model_dir)
    except ModelCardError as error:
        raise CommandError(str(error)) from error
    return model_dir
