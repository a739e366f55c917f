"""factory_boy factories for the rows tests need: users, model versions and predictions.

A prediction is made by the real upload service (so its photo and thumbnail exist on disk and were checked like
any upload), then put in the state the test asks for: `PredictionFactory(user=alice, done=True)`,
`PredictionFactory(failed=True, error="...")`.
"""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from bench.synthetic import lesion_jpeg
from classifier.models import ModelVersion, Prediction

TEST_PASSWORD = "correct-horse-battery-staple-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda number: f"user{number}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    # Every test user can log in with TEST_PASSWORD (the suite hashes with MD5: see tests/conftest.py).
    password = factory.django.Password(TEST_PASSWORD)

    class Params:
        staff = factory.Trait(is_staff=True)
        superuser = factory.Trait(is_staff=True, is_superuser=True)


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A registered model row whose folder need not exist (pages only show its version and threshold)."""

    class Meta:
        model = ModelVersion
        django_get_or_create = ("version",)

    version = "test-model-1"
    path = factory.LazyAttribute(lambda model_version: f"models/{model_version.version}")
    threshold = 0.35


class PredictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prediction

    user = factory.SubFactory(UserFactory)
    upload = factory.LazyFunction(lesion_jpeg)
    body_site = Prediction.BodySite.TRUNK
    note = ""
    status = Prediction.Status.QUEUED

    class Params:
        done = factory.Trait(
            status=Prediction.Status.DONE,
            melanoma_probability=0.82,
            # The raw score the verdict and level rest on; the same number unless a test sets it apart.
            score=factory.SelfAttribute("melanoma_probability"),
            model_version=factory.SubFactory(ModelVersionFactory),
            threshold=factory.SelfAttribute("model_version.threshold"),
            verdict=factory.LazyAttribute(
                lambda row: Prediction.Verdict.for_score(score=row.score, threshold=row.model_version.threshold)
            ),
            # The level a model without calibration gives: low below the threshold, moderate at or above it.
            risk_level=factory.LazyAttribute(
                lambda row: (
                    Prediction.RiskLevel.MODERATE
                    if row.score >= row.model_version.threshold
                    else Prediction.RiskLevel.LOW
                )
            ),
            completed_at=factory.LazyFunction(timezone.now),
        )
        failed = factory.Trait(
            status=Prediction.Status.FAILED,
            error="The model file is missing.",
            completed_at=factory.LazyFunction(timezone.now),
        )

    @classmethod
    def _create(cls, model_class, *args, user, upload, body_site, note, **fields) -> Prediction:
        from classifier.services.prediction_writes import prediction_create

        prediction = prediction_create(user=user, upload=upload, body_site=body_site, note=note)
        # The service leaves a queued row; the wanted state is written as the worker would have written it,
        # with the thumbnail the worker makes for a photo kept as taken.
        model_class.objects.filter(pk=prediction.pk).update(**fields)
        if fields.get("status") == Prediction.Status.DONE and not prediction.thumbnail.name:
            _worker_thumbnail(prediction)
        prediction.refresh_from_db()
        return prediction


def _worker_thumbnail(prediction: Prediction) -> None:
    from classifier.images import stored_sizes, thumbnail_jpeg
    from classifier.services.prediction_runs import prediction_thumbnail_attach
    from lesion_model.decode import decode_image

    side = stored_sizes()[1]
    with prediction.image.open("rb") as stored:
        photo = decode_image(stored.read(), draft_size=(side, side))
    prediction_thumbnail_attach(prediction.pk, thumbnail_jpeg(photo, side))


def api_token_for(user, **options) -> str:
    """A new API token for `user` (through the service, as POST /api/token/ makes it); returns its secret."""
    from api_tokens.services import api_token_create

    return api_token_create(user=user, **options)[1]
