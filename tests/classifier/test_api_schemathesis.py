"""Schemathesis against the API's own OpenAPI schema (/api/schema/): every operation, as a signed-in user with a
token, with generated input (a bounded number of examples each, derandomized so a run is reproducible). No
answer may be a 500, and every answer must match the schema: its status code is documented, its content type
and body are what the schema says.

The requests go through the WSGI application in this thread, so they share the test's database transaction; the
upload task is queued on commit, which never comes, so no worker is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from classifier.models import Prediction
from tests.classifier.page_helpers import lesion_jpeg
from tests.factories import api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]

EXAMPLES_PER_OPERATION = 25
# Checks about the shape of each answer. Left out: positive_data_acceptance (a schema-valid upload is random
# bytes, rightly refused as "not a photo"), and the stateful/auth probes that need several calls per case.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@contextmanager
def _connection_kept_open() -> Iterator[None]:
    """The WSGI handler closes the database connection after each request; the test's transaction lives on it.
    (Django's own test client disconnects the same handler.)"""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def owned_prediction(alice, make_prediction) -> Prediction:
    return make_prediction(user=alice, status="done")


def _operations(schema) -> list:
    # Deleting last: the other operations then also meet the prediction that exists, not only 404s.
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda operation: operation.method.upper() == "DELETE")


def test_every_operation_answers_within_its_schema(alice, owned_prediction):
    token = api_token_for(alice)
    auth = {"Authorization": f"Token {token}"}
    app = get_wsgi_application()
    # Fetched with the test client before the WSGI calls (it reconnects the handler _connection_kept_open removes).
    raw = Client().get("/api/schema/", {"format": "json"})
    assert raw.status_code == 200
    schema = schemathesis.openapi.from_dict(raw.json())
    operations = _operations(schema)
    assert {operation.label for operation in operations} >= {
        "POST /api/token/",
        "GET /api/predictions/",
        "POST /api/predictions/",
        "GET /api/predictions/{id}/",
        "DELETE /api/predictions/{id}/",
        "POST /api/predictions/{id}/retry/",
        "GET /api/predictions/{id}/image/",
        "GET /api/predictions/{id}/thumbnail/",
    }
    with _connection_kept_open():
        failures: dict[str, str] = {}
        seen: dict[str, set[int]] = {}
        for operation in operations:
            try:
                _fuzz(operation, auth, app, seen.setdefault(operation.label, set()))
                if operation.label.startswith(("GET /api/predictions/{id}", "DELETE /api/predictions/{id}")):
                    # Generated ids rarely hit a real row (PostgreSQL's ids keep growing across tests): once with
                    # alice's own prediction, so the real answer is checked against the schema too.
                    _call_with_id(operation, auth, app, seen[operation.label], owned_prediction.pk)
                if operation.label == "POST /api/predictions/":
                    _upload_a_real_photo(operation, auth, app, seen[operation.label])
            except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - report every operation's failures
                failures[operation.label] = f"{error.__class__.__name__}: {error}"[:3000]
        assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    # The generated input reached the real answers, not only the refusals.
    for label in ("GET /api/predictions/", "GET /api/predictions/{id}/", "GET /api/predictions/{id}/image/"):
        assert 200 in seen[label], (label, seen[label])
    assert 202 in seen["POST /api/predictions/"]
    assert 400 in seen["POST /api/predictions/"]
    assert 204 in seen["DELETE /api/predictions/{id}/"]


def _upload_a_real_photo(operation, auth: dict[str, str], app, seen: set[int]) -> None:
    """Generated bytes are never a photo: one real upload checks the 202 answer against the schema too."""
    case = operation.Case(
        body={"image": lesion_jpeg(), "body_site": "trunk", "note": "left shoulder"},
        media_type="multipart/form-data",
    )
    response = case.call(headers=auth, app=app)
    seen.add(response.status_code)
    assert response.status_code == 202, response.text
    case.validate_response(response, checks=CHECKS, headers=auth)


def _call_with_id(operation, auth: dict[str, str], app, seen: set[int], pk: int) -> None:
    case = operation.Case(path_parameters={"id": pk})
    response = case.call(headers=auth, app=app)
    seen.add(response.status_code)
    case.validate_response(response, checks=CHECKS, headers=auth)


def _fuzz(operation, auth: dict[str, str], app, seen: set[int]) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case) -> None:
        response = case.call(headers=auth, app=app)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=auth)

    run()
