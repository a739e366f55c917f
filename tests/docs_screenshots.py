"""The README's screenshots (docs/*.png) and what they show: written by the browser test with
MELANOMA_UPDATE_DOCS_SCREENSHOTS=1, checked by tests/test_docs_screenshots.py on every run (no browser needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.conf import settings

DOCS = Path(settings.BASE_DIR) / "docs"
MANIFEST = DOCS / "screenshots.json"
REGENERATE = "MELANOMA_UPDATE_DOCS_SCREENSHOTS=1 pytest tests/classifier/test_browser.py"
# Files whose change changes how the result page looks.
SOURCES = (
    "templates/base.html",
    "templates/classifier/base.html",
    "templates/classifier/result.html",
    "templates/classifier/_result_panel.html",
    "static/css/site.css",
    "classifier/answers.py",
    "classifier/templatetags/classifier_extras.py",
)


def sources_digest() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (Path(settings.BASE_DIR) / name).read_bytes() + b"\0")
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def record(docs_name: str, screenshot: Path, shows: dict) -> None:
    """Copy a screenshot into docs/ and note what it shows and what it was made from."""
    DOCS.mkdir(exist_ok=True)
    (DOCS / docs_name).write_bytes(screenshot.read_bytes())
    manifest = read_manifest()
    manifest[docs_name] = {
        "regenerate": REGENERATE,  # `shows` may name another test (the spot pages: tests/spots/)
        **shows,
        "sources_sha256": sources_digest(),
        "png_sha256": file_digest(screenshot),
    }
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def shipped_default_model_card() -> dict:
    """The card of the model a fresh clone activates (register_models: the newest shipped card by `created`)."""
    cards = [json.loads(path.read_text()) for path in Path(settings.MELANOMA_MODELS_DIR).glob("*/model_card.json")]
    return max(cards, key=lambda card: str(card.get("created", "")))
