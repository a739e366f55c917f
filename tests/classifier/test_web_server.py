"""The web server as deployed (gunicorn from the stack harness, melanoma_site/stack.py) under slow clients and
chunked uploads: issue 11.2 (half-sent requests froze the site) and 11.12 (chunked uploads always failed)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from classifier.models import Prediction
from melanoma_site.stack import Stack, isolated_env
from tests.factories import api_token_for
from tests.processes import run_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BODY_TIMEOUT_S = 4


@pytest.fixture
def web(isolated_services, private_media, tmp_path, active_model) -> Iterator[Stack]:
    env = isolated_env(
        tmp_path,
        settings_module=os.environ["DJANGO_SETTINGS_MODULE"],
        database_url=run_database_url(),
        queue=isolated_services["queue"],
        media_root=private_media,
        MELANOMA_REQUEST_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        MELANOMA_UPLOAD_RATE_PER_MINUTE="1000",
    )
    stack = Stack(
        env=env, var_dir=tmp_path / "var", redis_url=isolated_services["redis_url"], log_dir=tmp_path / "logs"
    )
    stack.start_web()  # two workers, as `make run`
    yield stack
    stack.close()


def _half_sent_upload(port: int, token: str | None = None) -> socket.socket:
    """Headers announcing 100 000 bytes, then 10 bytes of body, then nothing."""
    client = socket.create_connection(("127.0.0.1", port), timeout=30)
    auth = f"Authorization: Token {token}\r\n" if token else ""
    client.sendall(
        b"POST /api/predictions/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        + auth.encode()
        + b"Content-Length: 100000\r\n\r\n0123456789"
    )
    return client


def _api(stack: Stack, user) -> httpx.Client:
    token = api_token_for(user)
    return httpx.Client(
        base_url=stack.base_url,
        timeout=30,
        headers={"Authorization": f"Token {token}", "Accept": "application/json"},
    )


def test_ten_half_sent_requests_do_not_stop_health_or_an_upload(web, alice, make_image_bytes):
    """Before: two such clients tied up both sync workers for 60 s. Now each holds one thread (of 2 x 16) until
    the body timeout; /healthz and an upload are answered meanwhile."""
    token = api_token_for(alice)
    auth = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def upload(seed: int) -> httpx.Response:
        photo = make_image_bytes(seed=seed)
        return httpx.post(
            f"{web.base_url}/api/predictions/",
            files={"image": ("m.jpg", photo, "image/jpeg")},
            headers=auth,
            timeout=30,
        )

    # Warm both worker processes (fresh connections land on either): the first /healthz and upload in a
    # process load the model check and the image stack, seconds on a busy machine, whatever the attack.
    for seed in range(6):
        assert httpx.get(f"{web.base_url}/healthz", timeout=30).status_code in (200, 503)
        assert upload(seed).status_code == 202

    # Signed in, so that the server really waits for the body (an anonymous one is refused before reading it).
    stalled = [_half_sent_upload(web.web_port, token) for _ in range(10)]
    time.sleep(0.5)  # every one of them is inside a server thread now, waiting for its body

    started = time.monotonic()
    health = httpx.get(f"{web.base_url}/healthz", timeout=30)
    health_s = time.monotonic() - started
    started = time.monotonic()
    accepted = upload(99)
    upload_s = time.monotonic() - started

    assert health.status_code in (200, 503), health.status_code
    assert health_s < 2, health_s
    assert accepted.status_code == 202, (accepted.status_code, accepted.text[:200])
    assert upload_s < 2, upload_s

    # The body timeout frees the threads: each stalled client gets 408 and its connection closed.
    for client in stalled:
        client.settimeout(BODY_TIMEOUT_S + 20)
        answer = client.recv(4096)
        client.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def _chunked(data: bytes, size: int = 8192):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_chunked_upload_within_the_limit_is_accepted(web, alice, make_image_bytes):
    photo = make_image_bytes()
    boundary = "chunkedboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="mole.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with _api(web, alice) as api:
        # A generator body: httpx sends it with Transfer-Encoding: chunked and no Content-Length.
        response = api.post(
            "/api/predictions/",
            content=_chunked(body),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert response.status_code == 202, response.text[:300]
    assert Prediction.objects.filter(user=alice).count() == 1


def test_a_chunked_upload_over_the_limit_is_refused_with_413(web, alice, settings):
    too_big = b"x" * (21 * 1024 * 1024 + 200_000)  # over the 20 MB default plus the form overhead
    with _api(web, alice) as api:
        response = api.post(
            "/api/predictions/", content=_chunked(too_big, 256 * 1024), headers={"Content-Type": "image/jpeg"}
        )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert Prediction.objects.count() == 0
