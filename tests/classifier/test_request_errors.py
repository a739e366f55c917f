"""Issue 11.13 (and the request-reading half of 11.2/11.12): errors Django raises while it reads a request are
readable answers with the right status — JSON `{"detail": ...}` under /api/, a page elsewhere — never Django's
bare HTML 400 page for an API client."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from classifier.models import Prediction
from melanoma_site.request_body import RequestBodyGuard, RequestBodyTimeout, TimeoutGuardedInput
from tests.conftest import media_files
from tests.factories import api_token_for

pytestmark = pytest.mark.django_db

API_URL = "/api/predictions/"
PAGE_URL = "/upload/"


@pytest.fixture(autouse=True)
def isolated_rate_limit_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(id(settings))}
    }


@pytest.fixture
def api_client(alice) -> Client:
    token = api_token_for(alice)
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


@pytest.fixture
def page_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def _photo(make_image_bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("mole.jpg", make_image_bytes(), "image/jpeg")


def too_many_fields(make_image_bytes) -> dict:
    return {"image": _photo(make_image_bytes), **{f"field{index}": "x" for index in range(1500)}}


def too_many_files(make_image_bytes) -> dict:
    return {"image": _photo(make_image_bytes), "extra": [io.BytesIO(b"x") for _ in range(150)]}


def huge_note(make_image_bytes) -> dict:
    return {"image": _photo(make_image_bytes), "body_site": "trunk", "note": "x" * (3 * 1024 * 1024)}


CASES = [(too_many_fields, 400, "too many fields"), (too_many_files, 400, "too many files"), (huge_note, 413, "note")]


@pytest.mark.parametrize(("make_body", "status", "words"), CASES, ids=["fields", "files", "note-3mb"])
def test_api_request_errors_are_json_with_detail(api_client, make_body, status, words, make_image_bytes, private_media):
    response = api_client.post(API_URL, make_body(make_image_bytes), HTTP_ACCEPT="application/json")

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert words in response.json()["detail"].lower()
    assert Prediction.objects.count() == 0
    assert media_files(private_media) == []


@pytest.mark.parametrize(("make_body", "status", "words"), CASES, ids=["fields", "files", "note-3mb"])
def test_page_request_errors_are_readable_pages(page_client, make_body, status, words, make_image_bytes):
    response = page_client.post(PAGE_URL, make_body(make_image_bytes))

    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert words in response.content.decode().lower()
    assert Prediction.objects.count() == 0


# --- the WSGI guard (melanoma_site/request_body.py) without a server: environ in, environ out ------------------


def _call_guard(environ: dict) -> dict:
    seen: dict = {}

    def app(env, start_response):
        seen.update(env)
        return [b""]

    RequestBodyGuard(app)(environ, lambda *args: None)
    return seen


def test_chunked_body_within_the_limit_gets_its_length():
    body = b"x" * 300_000
    seen = _call_guard(
        {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
    )
    assert seen["CONTENT_LENGTH"] == str(len(body))
    assert seen["wsgi.input"].read() == body


def test_chunked_body_over_the_limit_is_flagged_and_dropped(settings):
    settings.MELANOMA_MAX_UPLOAD_BYTES = 100_000
    seen = _call_guard(
        {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x" * 400_000), "wsgi.input_terminated": True}
    )
    assert seen["melanoma.body_too_large"] is True
    assert seen["CONTENT_LENGTH"] == "0"


def test_chunked_body_from_a_server_that_does_not_end_the_stream_needs_a_length():
    seen = _call_guard({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"x")})
    assert seen["melanoma.length_required"] is True


def test_a_stalled_body_read_is_a_request_timeout_not_an_os_error():
    class Stalled(io.RawIOBase):
        def read(self, *args):
            raise TimeoutError("timed out")

    with pytest.raises(RequestBodyTimeout):
        TimeoutGuardedInput(Stalled()).read(10)


@pytest.mark.parametrize(("key", "status"), [("melanoma.length_required", 411), ("melanoma.body_timed_out", 408)])
def test_flags_from_the_guard_become_answers(api_client, page_client, key, status):
    api = api_client.post(API_URL, {}, **{key: True})
    assert api.status_code == status
    assert api.json()["detail"]
    page = page_client.post(PAGE_URL, {}, **{key: True})
    assert page.status_code == status
    assert page["Content-Type"].startswith("text/html")
