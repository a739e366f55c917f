"""/metrics is for the scraper only (a token or an allow-listed address); it carries the event counters and the
state read at scrape time; every prediction state change writes one JSON line with its id and nothing
personal."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from classifier.metrics import metrics_access_allowed
from classifier.services.prediction_runs import prediction_fail, prediction_run
from classifier.services.prediction_writes import prediction_create
from tests.conftest import row_files

pytestmark = pytest.mark.django_db


def _value(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


@pytest.mark.parametrize(
    ("authorization", "remote_addr", "token", "allowed", "expected"),
    [
        ("Bearer s3cret", "203.0.113.9", "s3cret", [], True),
        ("bearer s3cret", "203.0.113.9", "s3cret", [], True),
        ("Bearer wrong", "203.0.113.9", "s3cret", [], False),
        ("Token s3cret", "203.0.113.9", "s3cret", [], False),
        ("", "10.0.0.7", "", ["10.0.0.0/24"], True),
        ("", "10.0.1.7", "", ["10.0.0.0/24", "127.0.0.1"], False),
        ("", "127.0.0.1", "", ["127.0.0.1"], True),
        ("", "not-an-ip", "", ["10.0.0.0/8"], False),
        ("Bearer ", "127.0.0.1", "", [], False),  # nothing configured: nobody, not even loopback
    ],
)
def test_access_rule(authorization, remote_addr, token, allowed, expected):
    assert (
        metrics_access_allowed(authorization=authorization, remote_addr=remote_addr, token=token, allowed=allowed)
        is expected
    )


def test_metrics_are_refused_to_the_public_and_to_signed_in_users(client, alice, settings):
    settings.MELANOMA_METRICS_TOKEN = "scrape-token"
    assert client.get("/metrics").status_code == 403
    client.force_login(alice)
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"melanoma_" not in response.content


def test_metrics_count_uploads_outcomes_failures_and_state(settings, active_model, alice, make_upload,
                                                           django_capture_on_commit_callbacks):  # fmt: skip
    settings.MELANOMA_METRICS_TOKEN = "scrape-token"
    scraper = Client(HTTP_AUTHORIZATION="Bearer scrape-token")
    before = scraper.get("/metrics").content.decode()

    with django_capture_on_commit_callbacks(execute=True):  # an upload counts once its row is committed
        created = [prediction_create(user=alice, upload=make_upload(seed=seed)) for seed in range(3)]
    done = prediction_run(prediction_id=created[0].pk)
    prediction_fail(prediction_id=created[1].pk, reason="The model file is missing.", kind="model_unavailable")
    # created[2] stays queued

    response = scraper.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    after = response.content.decode()

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("melanoma_uploads_total") == 3
    assert delta("melanoma_predictions_finished_total", outcome=done.verdict) == 1
    assert delta("melanoma_predictions_finished_total", outcome="failed") == 1
    assert delta("melanoma_prediction_failures_total", reason="model_unavailable") == 1
    assert delta("melanoma_prediction_latency_seconds_count") == 1
    assert delta("melanoma_inference_seconds_count") == 1
    assert _value(after, "melanoma_predictions_unfinished", status="queued") == 1
    assert _value(after, "melanoma_model_info", version=active_model.version) == 1


def test_allow_listed_address_may_scrape(settings):
    settings.MELANOMA_METRICS_ALLOWED_IPS = ["127.0.0.1"]
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.0.2.10").get("/metrics").status_code == 403


def test_one_json_line_per_state_change_without_personal_data(caplog, active_model, alice, make_upload,
                                                              django_capture_on_commit_callbacks):  # fmt: skip
    caplog.set_level(logging.INFO, logger="melanoma.events")
    with django_capture_on_commit_callbacks(execute=True):
        prediction = prediction_create(user=alice, upload=make_upload(), body_site="trunk", note="my secret note")
    prediction_run(prediction_id=prediction.pk)
    lines = [record.getMessage() for record in caplog.records if record.name == "melanoma.events"]
    events = [json.loads(line) for line in lines]
    assert [(event["event"], event["status"]) for event in events] == [
        ("uploaded", "queued"),
        ("running", "running"),
        ("done", "done"),
    ]
    assert {event["prediction_id"] for event in events} == {prediction.pk}
    assert events[-1]["model_version"] == active_model.version
    assert events[-1]["inference_ms"] > 0
    text = "\n".join(lines)
    for private in ("alice", "my secret note", "trunk", ".jpg", *row_files(prediction)):
        assert private not in text
