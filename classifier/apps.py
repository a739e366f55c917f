from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _register_shipped_models(sender, **kwargs) -> None:
    # Imported here: app registry is ready only after ready() runs.
    from classifier.services.model_versions import model_versions_register_shipped

    model_versions_register_shipped()


class ClassifierConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "classifier"
    verbose_name = "Melanoma classifier"

    def ready(self) -> None:
        # A fresh clone's `migrate` registers and activates the shipped default model, so it predicts at once.
        post_migrate.connect(_register_shipped_models, sender=self, dispatch_uid="classifier_register_shipped_models")
