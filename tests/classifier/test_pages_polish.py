"""What people touch, without a browser: one wording per answer everywhere, pages that do not jump, the 413
page that keeps the person signed in, JavaScript-off wording, focus-ring contrast, link texts with context.
(The browser test measures the rest: touch-target sizes, overflow at 320 px, axe-core's checks.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from classifier.answers import ANSWERS, LOW, MODERATE, verdict_text
from classifier.models import Prediction
from tests.classifier.page_helpers import lesion_jpeg
from tests.factories import api_token_for

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ui_private_media", "ui_isolated_cache")]

SITE_CSS = Path(settings.BASE_DIR) / "static" / "css" / "site.css"


def _client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# --- one wording per answer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("probability", "answer"), [(0.91, MODERATE), (0.05, LOW)])
def test_each_answer_has_one_wording_on_the_result_page_history_and_api(alice, make_prediction, probability, answer):
    prediction = make_prediction(user=alice, status="done", probability=probability)
    client = _client_for(alice)
    result = client.get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    history = client.get(reverse("classifier:history")).content.decode()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_token_for(alice)}").get(f"/api/predictions/{prediction.pk}/")

    assert f'id="verdict">{answer.title}</h2>' in result
    assert answer.explanation in result
    assert f">{answer.title}</span>" in history
    assert api.json()["verdict_text"] == answer.title == verdict_text(prediction.verdict)
    other = LOW if answer is MODERATE else MODERATE
    for page in (result, history):
        assert other.title not in page


def test_the_landing_page_names_both_answers_in_the_same_words(client):
    text = client.get(reverse("landing")).content.decode()
    for answer in ANSWERS.values():
        assert answer.title in text


def test_no_template_spells_an_answer_out_itself():
    """The answers live in classifier/answers.py only: a template that types one out would drift from it."""
    templates = Path(settings.BASE_DIR) / "templates"
    for path in templates.rglob("*.html"):
        text = path.read_text()
        for answer in ANSWERS.values():
            assert answer.title not in text, f"{path} spells out {answer.title!r}: use {{% answer %}}"
        assert "See a dermatologist</span>" not in text, path
        assert "Low risk</span>" not in text, path


# --- result page ------------------------------------------------------------------------------------------------


def test_result_photo_box_is_reserved_before_the_photo_arrives(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done")
    html = _client_for(alice).get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    img = re.search(r'<img src="[^"]*/image/"[^>]*>', html, re.S).group(0)
    assert 'width="' in img
    assert 'height="' in img
    css = SITE_CSS.read_text()
    rule = re.search(r"\.result-photo img \{([^}]*)\}", css).group(1)
    # A fixed aspect ratio (not "auto"): the box keeps its size whatever the photo's own shape.
    assert re.search(r"aspect-ratio:\s*4 / 3;", rule)


def test_a_waiting_result_page_says_one_thing_with_javascript_off(alice, make_prediction):
    prediction = make_prediction(user=alice)
    html = _client_for(alice).get(reverse("classifier:prediction_detail", args=[prediction.pk])).content.decode()
    assert '<span class="js-only">This page updates by itself.</span>' in html
    assert '<span class="no-js-only">Reload this page in a few seconds to see the result.</span>' in html
    css = SITE_CSS.read_text()
    assert ".js-only { display: none; }" in css
    assert ".js .js-only { display: inline; }" in css
    assert ".js .no-js-only { display: none; }" in css
    assert 'classList.add("js")' in (Path(settings.BASE_DIR) / "static" / "js" / "site.js").read_text()


# --- focus ring ------------------------------------------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    darker, lighter = sorted((_luminance(a), _luminance(b)))
    return (lighter + 0.05) / (darker + 0.05)


def test_focus_ring_has_at_least_3_to_1_contrast_on_every_light_background():
    css = SITE_CSS.read_text()
    variables = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6});", css))
    assert re.search(r":focus-visible \{\s*outline: 3px solid var\(--focus\)", css)
    for background in ("#ffffff", variables["bg"], variables["refer-bg"], variables["low-bg"], variables["warn-bg"]):
        assert _contrast(variables["focus"], background) >= 3.0, background


# --- history --------------------------------------------------------------------------------------------------


def test_history_open_and_delete_links_say_which_check(alice, make_prediction):
    prediction = make_prediction(user=alice, status="done")
    html = _client_for(alice).get(reverse("classifier:history")).content.decode()
    when = prediction.created_at.strftime("%-d %b %Y, %H:%M")
    for word in ("Open", "Delete"):
        assert f'{word}<span class="visually-hidden"> the check of {when}</span>' in html
    css = SITE_CSS.read_text()
    assert re.search(r"\.history-date a,\s*\.history-actions a \{[^}]*min-height: 44px", css)


# --- upload errors: signed in, input kept ----------------------------------------------------------------------


def test_413_by_content_length_shows_the_upload_page_signed_in(alice, settings):
    settings.MELANOMA_MAX_UPLOAD_BYTES = 20_000
    big = SimpleUploadedFile("big.jpg", lesion_jpeg(width=1600, height=1200, seed=3))
    response = _client_for(alice).post(reverse("classifier:upload"), {"image": big, "note": "left shoulder"})
    assert response.status_code == 413
    html = response.content.decode()
    assert "Log out" in html, "the 413 page showed the person as logged out"
    assert "Log in" not in html, "the 413 page showed the person as logged out"
    assert "too large" in html
    assert 'id="upload-form"' in html, "the person can pick another photo where they are"
    assert Prediction.objects.count() == 0


def test_413_elsewhere_knows_who_is_signed_in(alice, settings):
    settings.MELANOMA_MAX_UPLOAD_BYTES = 1_000
    response = _client_for(alice).post(
        reverse("accounts:account_delete"), data=b"x" * 200_000, content_type="application/octet-stream"
    )
    assert response.status_code == 413
    assert "Log out" in response.content.decode()


def test_a_refused_photo_keeps_the_note_and_body_site(alice):
    response = _client_for(alice).post(
        reverse("classifier:upload"),
        {
            "image": SimpleUploadedFile("notes.jpg", b"not a photo"),
            "note": "has grown since spring",
            "body_site": "trunk",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "has grown since spring</textarea>" in html
    assert re.search(r'<option value="trunk"\s+selected>', html)


def test_the_photo_field_carries_the_size_limit_for_the_check_in_the_browser(alice, settings):
    settings.MELANOMA_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
    html = _client_for(alice).get(reverse("classifier:upload")).content.decode()
    assert f'data-max-bytes="{5 * 1024 * 1024}"' in html
    assert 'data-too-large-message="The file is too large. The limit is 5 MB' in html
