"""The atheris target for the upload check: `python -m tests.fuzz.upload_target CORPUS_DIR [libFuzzer flags]`.

Feeds mutated files to `classifier.images.image_prepare_upload`, the entry point every upload goes through (form
and API). A refusal (`ImageRejected`) is the right answer to a bad file; any other exception, a crash, a hang past
`-timeout` or memory past `-rss_limit_mb` is a finding, written by libFuzzer as `crash-*`/`timeout-*`/`oom-*`
under `-artifact_prefix`. Instrumented for coverage: our own Python (the upload check, the decode path) and
Pillow's Python (the container parsers: PNG chunks, JPEG markers, EXIF/TIFF, WebP, MPO), where a malformed file
raises; Pillow's C decoders are exercised, not instrumented. tests/fuzz/test_upload_fuzz.py runs it for a bounded
time from a corpus of real photos.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import atheris


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "melanoma_site.settings.development")
    # Before django.setup(): the admin's autodiscovery imports the upload check, and a module imported before
    # this block is not instrumented.
    with atheris.instrument_imports(include=["classifier.images", "lesion_model.decode", "PIL"]):
        import django

        django.setup()
        from classifier.images import ImageRejected, image_prepare_upload

    # Pillow warns on every corrupt EXIF block; thousands of lines a second would drown the findings.
    warnings.simplefilter("ignore")

    def test_one_input(data: bytes) -> None:
        with contextlib.suppress(ImageRejected):  # a refusal is the right answer to a bad file
            image_prepare_upload(data)

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
