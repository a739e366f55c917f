"""Spot pages and API: create on the body map, upload into a new or existing spot, history, spot page
(timeline, comparison, change flag), move a check, delete; per-user isolation of every spot URL."""

from __future__ import annotations

import html
import re

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from classifier.models import Prediction
from spots.models import Spot
from spots.services import spot_create, spot_update
from tests.classifier.page_helpers import lesion_jpeg
from tests.conftest import media_files
from tests.spots.conftest import SECRET_SPOT, session_client, token_client


@pytest.fixture
def upload_file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return lambda: SimpleUploadedFile("IMG_1.jpg", lesion_jpeg(), content_type="image/jpeg")


def test_new_spot_page_places_the_spot(alice):
    client = session_client(alice)
    page = client.get(reverse("spots:spot_new"))
    assert page.status_code == 200
    assert b"data-body-map" in page.content
    assert b"body_map.js" in page.content
    response = client.post(
        reverse("spots:spot_new"),
        {"name": "mole left shoulder", "view": "back", "x": "0.36", "y": "0.22", "recheck_months": "3"},
    )
    spot = Spot.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("spots:spot_detail", args=[spot.pk])
    assert (spot.user, spot.view, spot.region, spot.recheck_months) == (alice, "back", "trunk", 3)


def test_new_spot_without_a_place_is_a_form_error(alice):
    response = session_client(alice).post(reverse("spots:spot_new"), {"name": "x", "recheck_months": "0"})
    assert response.status_code == 400
    assert "Tap the body map" in response.content.decode()
    assert Spot.objects.count() == 0


@pytest.mark.parametrize("x", ["inf", "nan", "abc"])
def test_a_map_point_that_is_not_a_number_is_not_drawn(alice, x):
    """The hidden x/y fields can hold anything: the page says so and draws no marker at 'inf'."""
    for url in (reverse("spots:spot_new"), reverse("classifier:upload")):
        response = session_client(alice).post(url, {"name": "x", "view": "back", "x": x, "y": "0.5"})
        assert response.status_code == 400
        assert 'visibility="hidden"' in response.content.decode()
        assert f'cx="{x}"' not in response.content.decode()
    assert Spot.objects.count() == 0


def test_upload_into_a_new_spot_with_symptoms(alice, upload_file, private_media):
    response = session_client(alice).post(
        reverse("classifier:upload"),
        {
            "image": upload_file(),
            "spot": "new",
            "new_spot_name": "arm mole",
            "view": "front",
            "x": "0.15",
            "y": "0.4",
            "changed_colour": "on",
        },
    )
    check = Prediction.objects.get()
    assert response.status_code == 302
    assert (check.spot.name, check.spot.region, check.body_site, check.changed_colour) == (
        "arm mole",
        "upper_extremity",
        "upper_extremity",
        True,
    )


def test_the_body_map_replaces_the_body_site_dropdown_which_stays_for_no_javascript(alice):
    """The map is shown by its script (hidden until then: without the script it cannot be tapped); the dropdown
    is visible only without JavaScript (.no-js-only) and the script disables it, so that it is never sent beside
    a tap."""
    for url in (reverse("classifier:upload"), reverse("spots:spot_new")):
        page = session_client(alice).get(url).content.decode()
        assert re.search(r'<fieldset class="field" hidden data-js-show>\s*<legend>Where is it\? Tap the body map', page)
        assert re.search(r'<div class="field no-js-only">\s*<label for="id_body_site"', page)
        assert re.search(r'<select name="body_site"[^>]*data-no-js-fallback', page)
        assert page.count('name="body_site"') == 1
    script = (settings.BASE_DIR / "static/js/body_map.js").read_text()
    assert "[data-no-js-fallback]" in script
    assert "select.disabled = true" in script


def test_without_javascript_a_new_spot_is_placed_by_the_dropdown(alice, upload_file, private_media):
    response = session_client(alice).post(
        reverse("classifier:upload"),
        {"image": upload_file(), "spot": "new", "new_spot_name": "shin", "body_site": "lower_extremity"},
    )
    assert response.status_code == 302
    check = Prediction.objects.get()
    assert (check.spot.name, check.spot.region, check.body_site) == ("shin", "lower_extremity", "lower_extremity")
    # Neither a tap nor a body area: the form asks for one.
    response = session_client(alice).post(
        reverse("classifier:upload"), {"image": upload_file(), "spot": "new", "new_spot_name": "x"}
    )
    assert response.status_code == 400
    assert "Tap the body map" in response.content.decode()


def test_without_javascript_the_spot_form_places_and_moves_by_the_dropdown(alice):
    client = session_client(alice)
    response = client.post(reverse("spots:spot_new"), {"name": "neck", "recheck_months": "0", "body_site": "head_neck"})
    spot = Spot.objects.get()
    assert response.status_code == 302
    assert (spot.view, spot.region) == ("front", "head_neck")
    # Editing without the script: the hidden fields keep the old point; the same area keeps it exactly...
    spot_update(spot=spot, view="back", x=0.52, y=0.09)
    fields = {"name": "neck", "recheck_months": "0", "view": "back", "x": "0.52", "y": "0.09"}
    edit = reverse("spots:spot_edit", args=[spot.pk])
    assert 'value="head_neck" selected' in client.get(edit).content.decode()
    assert client.post(edit, {**fields, "body_site": "head_neck"}).status_code == 302
    spot.refresh_from_db()
    assert (spot.view, spot.x, spot.y) == ("back", 0.52, 0.09)
    # ...another area moves it there.
    assert client.post(edit, {**fields, "body_site": "trunk"}).status_code == 302
    spot.refresh_from_db()
    assert spot.region == "trunk"


def test_a_rejected_photo_leaves_no_new_spot(alice, private_media):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = session_client(alice).post(
        reverse("classifier:upload"),
        {
            "image": SimpleUploadedFile("x.jpg", b"not a photo" * 50),
            "spot": "new",
            "new_spot_name": "n",
            "x": "0.5",
            "y": "0.3",
        },
    )
    assert response.status_code == 400
    assert (Spot.objects.count(), Prediction.objects.count(), media_files(private_media)) == (0, 0, [])


def test_upload_into_someone_elses_spot_is_refused(alice, bob, upload_file, private_media):
    bobs = spot_create(user=bob, name=SECRET_SPOT, x=0.5, y=0.3)
    page = session_client(alice).post(reverse("classifier:upload"), {"image": upload_file(), "spot": str(bobs.pk)})
    assert page.status_code == 400
    assert SECRET_SPOT not in page.content.decode()
    api = token_client(alice).post("/api/predictions/", {"image": upload_file(), "spot": str(bobs.pk)})
    missing = token_client(alice).post("/api/predictions/", {"image": upload_file(), "spot": "987654"})
    assert api.status_code == missing.status_code == 400
    assert api.json() == missing.json()  # nothing tells "not yours" from "does not exist"
    assert SECRET_SPOT not in api.content.decode()
    assert (Prediction.objects.count(), media_files(private_media)) == (0, [])


def test_api_upload_into_own_spot(alice, upload_file, private_media):
    spot = spot_create(user=alice, name="arm", x=0.15, y=0.4)
    response = token_client(alice).post(
        "/api/predictions/", {"image": upload_file(), "spot": spot.pk, "itching": "true"}
    )
    assert response.status_code == 202
    check = Prediction.objects.get()
    assert (check.spot, check.body_site, check.itching) == (spot, "upper_extremity", True)
    detail = token_client(alice).get(f"/api/predictions/{check.pk}/").json()
    assert (detail["spot"], detail["itching"]) == (spot.pk, True)


def test_history_lists_spots_first_then_unfiled_checks(alice, spot_with_checks, private_media):
    from classifier.services.prediction_writes import prediction_create

    spot, older, newer = spot_with_checks
    unfiled = prediction_create(user=alice, upload=lesion_jpeg())
    body = session_client(alice).get(reverse("classifier:history")).content.decode()
    assert body.index(SECRET_SPOT) < body.index("Checks not filed under a spot")
    assert reverse("classifier:prediction_detail", args=[unfiled.pk]) in body
    assert reverse("classifier:prediction_thumbnail", args=[newer.pk]) in body  # the spot's latest
    assert "re-check due" in body
    assert reverse("classifier:prediction_detail", args=[older.pk]) not in body  # filed: on the spot page


def test_spot_page_timeline_comparison_and_change_flag(alice, spot_with_checks):
    spot, older, newer = spot_with_checks
    client = session_client(alice)
    body = client.get(reverse("spots:spot_detail", args=[spot.pk])).content.decode()
    assert 'data-testid="change-flag"' in body
    assert "it itches" in body
    assert body.count('data-testid="timeline-item"') == 2
    assert body.index(newer.created_at.strftime("%-d %b %Y")) < body.index(older.created_at.strftime("%-d %b %Y"))
    assert 'data-testid="compare"' in body
    for check in (older, newer):
        assert reverse("classifier:prediction_image", args=[check.pk]) in body
    assert 'visibility="hidden"' in body  # front view: no marker; the back view has it
    # any two photos: the same one twice is not a comparison
    same = client.get(reverse("spots:spot_detail", args=[spot.pk]), {"a": older.pk, "b": older.pk})
    assert 'data-testid="compare"' not in same.content.decode()


def test_move_a_check_from_the_result_page(alice, bob, spot_with_checks):
    spot, older, _ = spot_with_checks
    other = spot_create(user=alice, name="other", x=0.4, y=0.75)
    client = session_client(alice)
    page = client.get(reverse("classifier:prediction_detail", args=[older.pk])).content.decode()
    assert reverse("spots:prediction_move", args=[older.pk]) in page
    client.post(reverse("spots:prediction_move", args=[older.pk]), {"spot": other.pk})
    older.refresh_from_db()
    assert older.spot == other
    assert older.body_site == "lower_extremity"
    bobs = spot_create(user=bob, name="bobs", x=0.5, y=0.3)
    client.post(reverse("spots:prediction_move", args=[older.pk]), {"spot": bobs.pk})
    older.refresh_from_db()
    assert older.spot == other


def test_delete_spot_asks_then_deletes_its_checks(alice, spot_with_checks, private_media):
    spot, *_ = spot_with_checks
    client = session_client(alice)
    ask = client.get(reverse("spots:spot_delete", args=[spot.pk])).content.decode()
    assert "its 2 photos" in html.unescape(ask)
    assert Spot.objects.count() == 1
    client.post(reverse("spots:spot_delete", args=[spot.pk]))
    assert (Spot.objects.count(), Prediction.objects.count()) == (0, 0)


def test_api_spot_crud(alice, spot_with_checks):
    spot, older, newer = spot_with_checks
    client = token_client(alice)
    listed = client.get("/api/spots/").json()
    assert [row["id"] for row in listed["results"]] == [spot.pk]
    detail = client.get(f"/api/spots/{spot.pk}/").json()
    assert [check["id"] for check in detail["checks"]] == [newer.pk, older.pk]  # newest first
    assert detail["region"] == "trunk"
    assert detail["next_recheck_due"]
    created = client.post(
        "/api/spots/", {"name": "leg", "view": "front", "x": 0.4, "y": 0.75}, content_type="application/json"
    )
    assert created.status_code == 201
    assert created.json()["region"] == "lower_extremity"
    new_id = created.json()["id"]
    patched = client.patch(f"/api/spots/{new_id}/", {"recheck_months": 6}, content_type="application/json")
    assert patched.status_code == 200
    assert patched.json()["recheck_months"] == 6
    bad = client.patch(f"/api/spots/{new_id}/", {"recheck_months": 2}, content_type="application/json")
    assert bad.status_code == 400
    assert bad.json()["detail"]
    assert client.put(f"/api/spots/{new_id}/", {}, content_type="application/json").status_code == 405
    assert client.delete(f"/api/spots/{spot.pk}/").status_code == 204
    assert Prediction.objects.filter(pk__in=[older.pk, newer.pk]).count() == 0


def test_spot_urls_are_in_the_openapi_schema(alice):
    schema = session_client(alice).get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/spots/", "/api/spots/{id}/", "/api/spots/{id}/report.pdf", "/api/me/export/"):
        assert path in schema


SPOT_URLS = [
    ("spots:spot_detail", "get"),
    ("spots:spot_edit", "get"),
    ("spots:spot_edit", "post"),
    ("spots:spot_delete", "get"),
    ("spots:spot_delete", "post"),
    ("spots:spot_report", "get"),
    ("api:spot-detail", "get"),
    ("api:spot-detail", "patch"),
    ("api:spot-detail", "delete"),
    ("api:spot-report", "get"),
]


@pytest.mark.parametrize("who", ["bob", "staff", "anonymous"])
@pytest.mark.parametrize(("url_name", "method"), SPOT_URLS)
def test_someone_elses_spot_is_404_everywhere(url_name, method, who, request, spot_with_checks):
    spot, *_ = spot_with_checks
    url = reverse(url_name, args=[spot.pk])
    api = url.startswith("/api/")
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = (token_client(user) if api else session_client(user)) if user else Client(HTTP_ACCEPT="application/json")
    before = list(Spot.objects.values()), list(Prediction.objects.values_list("pk", "spot_id"))
    response = (
        getattr(client, method)(url, {"name": "hacked", "x": 0.5, "y": 0.5}, content_type="application/json")
        if method == "patch"
        else getattr(client, method)(url)
    )
    expected = {401} if api and who == "anonymous" else {302} if who == "anonymous" else {404}
    assert response.status_code in expected
    assert SECRET_SPOT not in response.content.decode(errors="replace")
    assert (list(Spot.objects.values()), list(Prediction.objects.values_list("pk", "spot_id"))) == before


@pytest.mark.parametrize("who", ["bob", "staff"])
def test_someone_elses_spots_are_not_listed(who, request, spot_with_checks):
    user = request.getfixturevalue(who)
    assert token_client(user).get("/api/spots/").json()["results"] == []
    assert SECRET_SPOT not in session_client(user).get(reverse("classifier:history")).content.decode()


def test_someone_elses_check_cannot_be_moved_or_reported(bob, spot_with_checks):
    spot, older, _ = spot_with_checks
    bobs = spot_create(user=bob, name="bobs", x=0.5, y=0.3)
    client = session_client(bob)
    assert client.post(reverse("spots:prediction_move", args=[older.pk]), {"spot": bobs.pk}).status_code == 404
    assert client.get(reverse("spots:prediction_report", args=[older.pk])).status_code == 404
    older.refresh_from_db()
    assert older.spot == spot
