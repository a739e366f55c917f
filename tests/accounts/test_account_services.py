"""Account services: deleting a user deletes their rows and every stored file of theirs, and only theirs."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts.services import user_delete
from classifier.models import Prediction
from classifier.services.prediction_runs import prediction_run
from classifier.services.prediction_writes import prediction_create
from tests.conftest import media_files

pytestmark = pytest.mark.django_db


def test_user_delete_removes_every_row_and_file_of_theirs(
    alice, bob, make_upload, private_media, active_model, django_capture_on_commit_callbacks
):
    # Scored by the worker, so that each has its photo, the thumbnail the worker made and a heatmap.
    for _ in range(3):
        prediction_run(prediction_id=prediction_create(user=alice, upload=make_upload()).pk)
    kept = prediction_run(prediction_id=prediction_create(user=bob, upload=make_upload()).pk)
    assert len(media_files(private_media)) > 8

    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=alice)

    assert not get_user_model().objects.filter(username="alice").exists()
    assert list(Prediction.objects.values_list("pk", flat=True)) == [kept.pk]
    remaining = {str(path.relative_to(private_media)) for path in media_files(private_media)}
    assert remaining == {name for name in (kept.image.name, kept.thumbnail.name, kept.heatmap.name) if name}


def test_user_delete_keeps_the_reviews_they_made_as_a_clinician(
    alice, staff, make_upload, django_capture_on_commit_callbacks
):
    from classifier.services.prediction_writes import prediction_mark_reviewed

    prediction = prediction_create(user=alice, upload=make_upload())
    prediction_mark_reviewed(prediction=prediction, reviewer=staff, diagnosis=Prediction.Diagnosis.MELANOMA)

    with django_capture_on_commit_callbacks(execute=True):
        user_delete(user=staff)

    prediction.refresh_from_db()
    assert prediction.reviewed
    assert prediction.confirmed_diagnosis == Prediction.Diagnosis.MELANOMA
    assert prediction.reviewed_by is None
