"""The README's screenshots are current: made from today's result page, showing the model a fresh clone uses.

When this fails, regenerate them: MELANOMA_UPDATE_DOCS_SCREENSHOTS=1 pytest tests/classifier/test_browser.py
(needs Chromium), and commit docs/*.png with docs/screenshots.json."""

from __future__ import annotations

import pytest

from tests import docs_screenshots

SCREENSHOTS = ("result-page.png", "result-page-phone.png")


@pytest.mark.parametrize("name", SCREENSHOTS)
def test_readme_screenshot_is_current(name):
    entry = docs_screenshots.read_manifest().get(name)
    assert entry, f"docs/{name} is not in docs/screenshots.json: {docs_screenshots.REGENERATE}"
    assert docs_screenshots.file_digest(docs_screenshots.DOCS / name) == entry["png_sha256"], (
        f"docs/{name} is not the screenshot the manifest describes: {docs_screenshots.REGENERATE}"
    )
    assert entry["sources_sha256"] == docs_screenshots.sources_digest(), (
        f"the result page changed since docs/{name} was taken: {docs_screenshots.REGENERATE}"
    )
    card = docs_screenshots.shipped_default_model_card()
    assert entry["model_version"] == card["version"], (
        f"docs/{name} shows model {entry['model_version']}, the shipped default is {card['version']}: "
        + docs_screenshots.REGENERATE
    )


def test_the_readme_shows_the_screenshots():
    readme = (docs_screenshots.DOCS.parent / "README.md").read_text()
    assert "](docs/result-page.png)" in readme
