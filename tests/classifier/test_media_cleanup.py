"""Issue 11.10: stored photos with no row (a web worker killed between saving the files and committing the row)
are deleted by the periodic cleanup once older than an hour; files of real predictions and young files stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.conf import settings

from classifier.services.media_cleanup import media_orphans_delete
from classifier.services.prediction_writes import prediction_create
from classifier.tasks import media_orphans_cleanup_task
from tests.conftest import media_files, row_files

pytestmark = pytest.mark.django_db


def _orphan(media_root, name: str, *, age_s: float):
    path = media_root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8 left behind by a killed web worker")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_old_orphans_go_young_ones_and_referenced_files_stay(alice, make_upload, private_media):
    prediction = prediction_create(user=alice, upload=make_upload())
    kept = {private_media / name for name in row_files(prediction)}
    for path in kept:  # as old as the orphans: age alone never deletes a file that a row refers to
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    old_photo = _orphan(private_media, "lesions/dead-upload.jpg", age_s=7200)
    old_thumbnail = _orphan(private_media, "thumbnails/dead-upload.jpg", age_s=7200)
    young = _orphan(private_media, "lesions/being-committed.jpg", age_s=60)
    elsewhere = _orphan(private_media, "exports/not-ours.csv", age_s=7200)

    deleted = media_orphans_delete(older_than=timedelta(hours=1))

    assert sorted(deleted) == ["lesions/dead-upload.jpg", "thumbnails/dead-upload.jpg"]
    assert not old_photo.exists()
    assert not old_thumbnail.exists()
    assert set(media_files(private_media)) == kept | {young, elsewhere}


def test_the_cleanup_runs_periodically_with_an_hour_of_grace(private_media, alice):
    schedule = settings.CELERY_BEAT_SCHEDULE["media-orphans-cleanup"]
    assert schedule["task"] == media_orphans_cleanup_task.name
    assert schedule["schedule"] <= 3600
    assert settings.MELANOMA_ORPHAN_FILES_AFTER_S == 3600
    _orphan(private_media, "lesions/dead-upload.jpg", age_s=3700)

    assert media_orphans_cleanup_task.apply().get() == ["lesions/dead-upload.jpg"]
    assert media_files(private_media) == []
