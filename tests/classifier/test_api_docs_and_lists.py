"""The API for integrators: a docs page from the site's own files, an index, a schema a browser shows, list
filters, a bounded page_size and an order that never repeats or skips a row."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from classifier.api.filters import PredictionFilter
from classifier.models import Prediction
from tests.factories import PredictionFactory, api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def _api(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_token_for(user)}", HTTP_ACCEPT="application/json")


def test_api_index_links_to_the_docs_and_the_schema():
    body = Client(HTTP_ACCEPT="application/json").get("/api/").json()
    assert body["docs"].endswith("/api/docs/")
    assert body["schema"].endswith("/api/schema/")
    assert body["token"].endswith("/api/token/")
    assert body["predictions"].endswith("/api/predictions/")


def test_schema_in_a_browser_is_json_not_a_yaml_download():
    response = Client(HTTP_ACCEPT=BROWSER_ACCEPT).get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" not in response.get("Content-Disposition", "")
    schema = json.loads(response.content)
    assert "/api/predictions/" in schema["paths"]
    yaml = Client().get("/api/schema/?format=yaml")
    assert yaml.status_code == 200
    assert yaml.content.startswith(b"openapi:")


def test_docs_page_is_served_from_own_static_files_under_the_strict_policy():
    response = Client(HTTP_ACCEPT=BROWSER_ACCEPT).get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn." not in html
    assert "https://" not in html
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in src for src in sources)
    # No inline script or style: the Content-Security-Policy ('self' only) would refuse them.
    assert "<style" not in html
    assert re.search(r"<script>", html) is None
    for src in sources:
        if src.startswith("/static/"):
            assert finders.find(src.removeprefix("/static/")), src
    init = Client().get(next(src for src in sources if "script" in src and not src.startswith("/static/")))
    assert init.status_code == 200
    assert "/api/schema/" in init.content.decode()
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_schema_documents_the_list_parameters_and_bearer_auth():
    schema = Client(HTTP_ACCEPT="application/json").get("/api/schema/").json()
    parameters = {p["name"] for p in schema["paths"]["/api/predictions/"]["get"]["parameters"]}
    assert {"status", "created_after", "created_before", "page", "page_size", "ordering"} <= parameters
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {"delete", "get", "post"} <= set(schema["paths"]["/api/token/"])


def _made(user, *, days_ago: int, **fields) -> Prediction:
    prediction = PredictionFactory(user=user, **fields)
    Prediction.objects.filter(pk=prediction.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return prediction


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_list_filters_by_status_verdict_and_date_range(alice, bob):
    old_done = _made(alice, days_ago=10, done=True, melanoma_probability=0.9)
    new_done = _made(alice, days_ago=1, done=True, melanoma_probability=0.01)
    failed = _made(alice, days_ago=1, failed=True)
    _made(bob, days_ago=1, done=True)
    client = _api(alice)

    assert _ids(client.get("/api/predictions/", {"status": "done"})) == [new_done.pk, old_done.pk]
    assert _ids(client.get("/api/predictions/", {"status": "failed"})) == [failed.pk]
    assert _ids(client.get("/api/predictions/", {"verdict": "refer"})) == [old_done.pk]
    since = (timezone.now() - timedelta(days=3)).date().isoformat()
    assert set(_ids(client.get("/api/predictions/", {"created_after": since}))) == {new_done.pk, failed.pk}
    until = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert _ids(client.get("/api/predictions/", {"created_before": until})) == [old_done.pk]


@pytest.mark.parametrize(
    "query",
    [
        {"status": "finished"},
        {"created_after": "last week"},
        {"ordering": "note"},
        {"spot": "-5.507116757477674e+157"},  # found by schemathesis: was the database's overflow, a 500
        {"spot": str(2**63)},
    ],
)
def test_a_bad_filter_is_400_with_a_message(alice, query):
    response = _api(alice).get("/api/predictions/", query)
    assert response.status_code == 400
    assert next(iter(query)) in response.json()["detail"]


def test_risk_level_and_spot_filters_appear_once_the_fields_exist():
    has = {field.name for field in Prediction._meta.get_fields()}
    filters = set(PredictionFilter.base_filters)
    assert ("risk_level" in filters) == ("risk_level" in has)
    assert ("spot" in filters) == ("spot" in has)


def test_page_size_is_capped_and_order_is_stable_on_equal_times(alice):
    made = [PredictionFactory(user=alice) for _ in range(5)]
    same_time = timezone.now()
    Prediction.objects.filter(user=alice).update(created_at=same_time)
    client = _api(alice)
    pages = [_ids(client.get("/api/predictions/", {"page_size": 2, "page": page})) for page in (1, 2, 3)]
    assert [pk for page in pages for pk in page] == sorted((p.pk for p in made), reverse=True)
    oldest_first = _ids(client.get("/api/predictions/", {"ordering": "created_at"}))
    assert oldest_first == sorted(p.pk for p in made)

    response = client.get("/api/predictions/", {"page_size": 10_000})
    assert response.status_code == 200
    from classifier.api.pagination import PredictionPagination

    assert PredictionPagination.max_page_size == 100
