"""What the web server hands Django as a request body, made safe before Django reads it (melanoma_site/wsgi.py).

- **A body timeout.** A client that sends its headers and then stalls (or trickles its body) would hold a server
  thread for as long as it likes. Each read of the body now waits at most MELANOMA_REQUEST_BODY_TIMEOUT_S; then
  the request fails with 408 (melanoma_site/errors.py) and the thread is free again.
- **Chunked bodies** (`Transfer-Encoding: chunked`, no Content-Length) reach Django as an empty body, so an
  upload failed with "No file was submitted". The body is now read here, up to the upload limit, into a spooled
  file and handed on with its real length; a longer one is refused with 413 by RequestSizeLimitMiddleware, and
  with a server that does not end the decoded stream (no `wsgi.input_terminated`) with 411.

A production front (nginx, see README) buffers whole requests before they reach gunicorn; these guards keep the
app safe without one.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterable
from typing import IO

from django.conf import settings
from django.core.exceptions import BadRequest

READ_CHUNK_BYTES = 64 * 1024
SPOOL_IN_MEMORY_BYTES = 1024 * 1024
# Set in the WSGI environ (request.META) for the middleware: the chunked body was over the limit, or stalled.
BODY_TOO_LARGE_KEY = "melanoma.body_too_large"
BODY_TIMED_OUT_KEY = "melanoma.body_timed_out"
LENGTH_REQUIRED_KEY = "melanoma.length_required"


class RequestBodyTimeout(BadRequest):
    """The client stopped sending its request body (melanoma_site/errors.py answers 408)."""


class TimeoutGuardedInput:
    """wsgi.input whose socket timeout surfaces as RequestBodyTimeout, not as an OSError (a 500 in Django)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def _guarded(self, method: str, *args):
        try:
            return getattr(self._stream, method)(*args)
        except TimeoutError as error:  # socket.timeout is TimeoutError
            raise RequestBodyTimeout("The request body did not arrive in time.") from error

    def read(self, *args) -> bytes:
        return self._guarded("read", *args)

    def readline(self, *args) -> bytes:
        return self._guarded("readline", *args)

    def readlines(self, *args) -> list[bytes]:
        return self._guarded("readlines", *args)

    def __iter__(self):
        return iter(self.readline, b"")


class RequestBodyGuard:
    """WSGI middleware around Django's application: see the module docstring."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.body_timeout_s = float(settings.MELANOMA_REQUEST_BODY_TIMEOUT_S)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        client_socket = environ.get("gunicorn.socket")
        if client_socket is not None:
            # gunicorn resets it (setblocking) before the next request on a kept-alive connection.
            client_socket.settimeout(self.body_timeout_s)
        environ["wsgi.input"] = TimeoutGuardedInput(environ["wsgi.input"])
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH"):
            if environ.get("wsgi.input_terminated"):  # the server decodes the chunks and ends the stream (gunicorn)
                self._spool_chunked_body(environ)
            else:  # reading to the end could wait for ever: refuse with 411 (RequestSizeLimitMiddleware)
                environ[LENGTH_REQUIRED_KEY] = True
        return self.app(environ, start_response)

    def _spool_chunked_body(self, environ: dict) -> None:
        """The server has decoded the chunks; read the body, at most the limit, and give it a Content-Length."""
        from classifier.uploads import max_request_bytes  # noqa: PLC0415 - the app registry is ready by now

        limit = max_request_bytes()
        spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 - Django reads it later
        size = 0
        try:
            while chunk := environ["wsgi.input"].read(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    environ[BODY_TOO_LARGE_KEY] = True
                    break
                spooled.write(chunk)
        except RequestBodyTimeout:
            environ[BODY_TIMED_OUT_KEY] = True
        if environ.get(BODY_TOO_LARGE_KEY) or environ.get(BODY_TIMED_OUT_KEY):
            spooled.close()
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(), "0"
            return
        spooled.seek(0)
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = spooled, str(size)
