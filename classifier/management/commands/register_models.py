"""`manage.py register_models`: register the model folders shipped under MELANOMA_MODELS_DIR (models/).

`make run` and `make migrate` run it after `migrate`, so a fresh clone predicts at once. It is a command of
its own, not a post-migrate hook, so that migrating never reads model files and registering can be run (and
tested) on its own, e.g. after a `git pull` that shipped a new model.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from classifier.selectors import model_version_get_active
from classifier.services.model_versions import model_versions_register_shipped
from lesion_model.model_card import ModelCardError


class Command(BaseCommand):
    help = (
        "Register every model folder under MELANOMA_MODELS_DIR; activate the newest if none is active "
        "or the active one's folder is gone."
    )

    def handle(self, *args, **options) -> None:
        try:
            registered = model_versions_register_shipped()
            active = model_version_get_active()
        except ModelCardError as error:
            raise CommandError(f"A shipped model folder is unusable: {error}") from error
        except DatabaseError as error:
            raise CommandError(f"The database is not ready ({error}); run `manage.py migrate` first.") from error
        if not registered:
            self.stdout.write(f"No model folders under {settings.MELANOMA_MODELS_DIR}.")
        for model_version in registered:
            self.stdout.write(f"Registered {model_version.version} ({model_version.path})")
        self.stdout.write(f"Active model: {active.version if active else 'none'}")
