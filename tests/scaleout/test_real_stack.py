"""The whole path with real processes on shared object storage: gunicorn (2 workers) and a Celery worker (2 pool
processes) started by the stack harness of `make run`, photos in a SeaweedFS bucket (STORAGE_URL=s3://...),
over HTTP: upload -> worker -> result -> image -> delete removes the objects. And /metrics adds up what every
one of those processes counted (prometheus multiprocess mode), for the scraper only."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from classifier.models import Prediction
from melanoma_site.stack import Stack, isolated_env
from tests.conftest import wait_for_status
from tests.factories import api_token_for
from tests.processes import run_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FINISHED = {Prediction.Status.DONE, Prediction.Status.FAILED}


@pytest.fixture
def s3_stack(isolated_services, s3_bucket, tmp_path) -> Iterator[tuple[Stack, str]]:
    token = secrets.token_urlsafe(24)
    env = isolated_env(
        tmp_path,
        settings_module=os.environ["DJANGO_SETTINGS_MODULE"],
        database_url=run_database_url(),
        queue=isolated_services["queue"],
        STORAGE_URL=s3_bucket.url,
        MELANOMA_METRICS_TOKEN=token,
        MELANOMA_UPLOAD_RATE_PER_MINUTE="1000",
    )
    stack = Stack(
        env=env,
        var_dir=tmp_path / "var",
        log_dir=tmp_path / "logs",
        redis_url=isolated_services["redis_url"],
        web_workers=2,
        worker_concurrency=2,
    )
    try:
        yield stack, token
    finally:
        stack.close()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_two_web_and_a_worker_on_s3_whole_path_and_metrics(s3_stack, s3_bucket, active_model, alice,
                                                           real_photo_bytes):  # fmt: skip
    stack, metrics_token = s3_stack
    stack.start_web()
    stack.start_worker()
    api_token = api_token_for(alice)
    headers = {"Authorization": f"Token {api_token}", "Accept": "application/json"}
    uploads = 4
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=60) as client:
        ids = []
        for _ in range(uploads):  # several requests: both gunicorn workers get some (counted in /metrics)
            response = client.post("/api/predictions/", files={"image": ("mole.jpg", real_photo_bytes, "image/jpeg")})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        rows = [wait_for_status(pk, FINISHED, timeout_s=120) for pk in ids]
        assert [row.status for row in rows] == [Prediction.Status.DONE] * uploads, [row.error for row in rows]
        # Photo + thumbnail each, and the heatmap of every scored (not retake) check, all in the bucket.
        heatmaps = sum(1 for row in rows if row.heatmap)
        assert len(s3_bucket.keys()) == 2 * uploads + heatmaps
        local_media = Path(stack.env["MELANOMA_MEDIA_ROOT"])
        assert not local_media.exists() or not any(local_media.rglob("*"))  # nothing on the web hosts' disks

        image = client.get(f"/api/predictions/{ids[0]}/image/")
        assert image.status_code == 200
        assert image.content == s3_bucket.get(rows[0].image.name)

        assert client.get("/metrics").status_code == 403  # not for the public, not for a signed-in user
        deadline = time.monotonic() + 10
        while True:  # the worker's counters are written when each task ends; the scrape reads them
            scraped = httpx.get(
                f"{stack.base_url}/metrics", headers={"Authorization": f"Bearer {metrics_token}"}, timeout=30
            )
            assert scraped.status_code == 200
            samples = _samples(scraped.text)
            finished = sum(v for (name, _), v in samples.items() if name == "melanoma_predictions_finished_total")
            if finished == uploads or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert samples[("melanoma_uploads_total", ())] == uploads  # summed over both gunicorn workers
        assert finished == uploads
        assert samples[("melanoma_prediction_latency_seconds_count", ())] == uploads
        assert samples[("melanoma_inference_seconds_count", ())] == uploads
        assert samples[("melanoma_model_info", (("version", active_model.version),))] == 1
        assert samples[("melanoma_predictions_unfinished", (("status", "queued"),))] == 0
        assert samples[("melanoma_queue_depth", (("queue", stack.env["MELANOMA_CELERY_QUEUE"]),))] == 0

        for pk in ids:
            assert client.delete(f"/api/predictions/{pk}/").status_code == 204
        assert s3_bucket.keys() == []  # every object removed
    # One JSON line per state change, with the id and no file name.
    worker_log = stack.log("worker")
    assert f'"prediction_id": {ids[0]}, "status": "done"' in worker_log
    assert rows[0].image.name not in worker_log
