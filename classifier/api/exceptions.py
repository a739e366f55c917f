"""Every API error is JSON with a readable `detail` (field errors keep their per-field lists as well)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from classifier.images import ImageRejected
from classifier.services.prediction_writes import PredictionStateError
from melanoma_site.errors import request_error

UNREADABLE_UPLOAD_MESSAGE = (
    "The upload could not be read: the form is damaged or the file name is too long. "
    "Please rename the photo to something short and try again."
)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The file is too large."
    default_code = "too_large"


class BadRequest(exceptions.APIException):
    """A 400 whose body is one readable `detail` (ValidationError would wrap it in a list)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid request."
    default_code = "bad_request"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The prediction is not in a state that allows this."
    default_code = "conflict"


class RequestUnreadable(exceptions.APIException):
    """What Django raised while reading the request (too many fields or files, a field too large, a stalled body)."""

    def __init__(self, status_code: int, message: str) -> None:
        self.status_code = status_code
        super().__init__(message)


def _first_message(data) -> str | None:
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        return next((message for item in data if (message := _first_message(item))), None)
    if isinstance(data, dict):
        for field, value in data.items():
            message = _first_message(value)
            if message:
                return message if field in {"non_field_errors", "detail"} else f"{field}: {message}"
    return None


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if (known := request_error(exc)) is not None:
        status_code, _title, message = known
        exc = RequestUnreadable(status_code, message)
    elif isinstance(exc, ImageRejected):
        if exc.status_code == 413:
            exc = PayloadTooLarge(exc.message)
        else:
            exc = exceptions.ValidationError({"detail": exc.message, "image": [exc.message]})
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, PredictionStateError):
        exc = Conflict(exc.message)
    elif isinstance(exc, exceptions.ParseError) and "Multipart form parse error" in str(exc.detail):
        # Django's parser words ("max total header size exceeded") mean nothing to the person uploading.
        exc = exceptions.ParseError(UNREADABLE_UPLOAD_MESSAGE)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, dict) and "detail" not in response.data:
        detail = _first_message(response.data) or "Invalid request."
        # A form-level error becomes the detail, once: not again under non_field_errors.
        rest = {
            field: value
            for field, value in response.data.items()
            if not (field == "non_field_errors" and _first_message(value) == detail)
        }
        response.data = {"detail": detail, **rest}
    elif isinstance(response.data, list):
        response.data = {"detail": _first_message(response.data) or "Invalid request.", "errors": response.data}
    return response
