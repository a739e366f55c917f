"""The accounts tests use the page fixtures of tests/classifier (people, real uploads, per-test media and cache)."""

from tests.classifier.conftest import (  # noqa: F401 - pytest finds fixtures by name in this module
    admin_user_ui,
    jpeg_upload,
    make_prediction,
    ui_isolated_cache,
    ui_private_media,
)
