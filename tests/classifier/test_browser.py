"""The whole stack as a person uses it: Debian's Chromium (Playwright) against the live server, a real Celery
worker on real Redis, a real LiteRT model and a real photo.

Sign up, upload, watch the verdict appear on the result page without a reload, find it in history, log out.
Screenshots (desktop and a 375 px phone) go to test-artifacts/; with MELANOMA_UPDATE_DOCS_SCREENSHOTS=1 the
result-page ones are also written to docs/ for the README.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import real_worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
DOCS = Path(settings.BASE_DIR) / "docs"
SHARED_UPLOADS = Path(settings.BASE_DIR).parent / "shared" / "derm" / "uploads"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}
WAIT_MS = 90_000  # a ceiling for slow CI machines, not a timing assertion

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("MELANOMA_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser(monkeypatch) -> Iterator[object]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls of the test and of other
    # fixtures are plain sync calls in the same thread, which Django would otherwise refuse.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def no_public_media(monkeypatch) -> None:
    """MEDIA_URL is None on purpose (photos have no public URL). Django's live test server wraps the site in a
    media-files handler that cannot read a None prefix; make it hand every request to the site instead."""
    from django.test import testcases

    monkeypatch.setattr(testcases._MediaFilesHandler, "_should_handle", lambda self, path: False)


@pytest.fixture
def photo_path(tmp_path: Path) -> Path:
    """A real full-size photo from ../shared/derm/uploads when present, else a generated one."""
    photos = sorted(SHARED_UPLOADS.glob("*.jpg")) if SHARED_UPLOADS.is_dir() else []
    if photos:
        return photos[0]
    from tests.classifier.page_helpers import lesion_jpeg

    path = tmp_path / "IMG_0042.jpg"
    path.write_bytes(lesion_jpeg(width=1600, height=1200, seed=42))
    return path


def _shot(page, name: str, *, docs_name: str | None = None) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    if docs_name and os.environ.get("MELANOMA_UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(path, DOCS / docs_name)
    return path


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_sign_up_upload_watch_the_verdict_find_it_in_history_log_out(
    live_server, no_public_media, transactional_db, isolated_services, active_model, photo_path, browser
):
    from playwright.sync_api import expect

    from classifier.models import Prediction

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    failed_requests: list[str] = []
    page.on("requestfailed", lambda request: failed_requests.append(request.url))
    page.on("response", lambda response: response.status >= 400 and failed_requests.append(response.url))
    # Console errors include Content-Security-Policy violations: the pages must work under the strict policy.
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))

    # Landing page, then sign up.
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_text("screening aid, not a diagnosis").first).to_be_visible()
    _shot(page, "landing-desktop.png")
    page.get_by_role("link", name="Create a free account").click()
    page.get_by_label("Username").fill("patient1")
    page.get_by_label("E-mail (optional)").fill("patient1@example.org")
    page.get_by_label("Password:", exact=True).fill("a-long-and-unusual-passphrase-31")
    page.get_by_label("Password confirmation").fill("a-long-and-unusual-passphrase-31")
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/upload/$"))
    expect(page.get_by_text("Welcome! Your account is ready.")).to_be_visible()

    # Upload a real photo. No worker is running yet, so the result page must show it waiting.
    page.get_by_label("Photo of the skin lesion").set_input_files(str(photo_path))
    page.get_by_label("Where on the body is it? (optional)").select_option("trunk")
    page.get_by_label("Note (optional)").fill("Left shoulder, noticed in spring")
    _shot(page, "upload-desktop.png")
    page.get_by_role("button", name="Check my photo").click()
    expect(page).to_have_url(re.compile(r"/predictions/\d+/$"))
    expect(page.get_by_text("Waiting in the queue")).to_be_visible()
    expect(page.get_by_role("img", name="Your photo of the skin spot")).to_be_visible()
    _shot(page, "result-waiting-desktop.png")
    prediction_id = int(re.search(r"/predictions/(\d+)/", page.url).group(1))
    # A reload would wipe this marker: it proves the verdict arrived by polling.
    page.evaluate("window.__sameDocument = true")

    with real_worker(isolated_services["queue"]):
        verdict = page.locator("#verdict")
        expect(verdict).to_be_visible(timeout=WAIT_MS)

    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    expect(verdict).to_have_text(
        re.compile(
            r"Have this lesion checked by a dermatologist|The photo did not show the features the model looks for"
        )
    )
    panel = page.locator("#result-panel")
    # Issue 10: the level in words, never "looks benign", no bare percentage.
    expect(panel.get_by_test_id("risk-level")).to_have_text(re.compile(r"Low|Moderate|High"))
    expect(panel).not_to_contain_text("benign")
    expect(panel).not_to_contain_text("%")
    expect(panel).to_contain_text(active_model.version)
    expect(panel).to_contain_text("screening aid, not a diagnosis")

    prediction = Prediction.objects.get(pk=prediction_id)
    assert prediction.status == Prediction.Status.DONE
    assert prediction.user.username == "patient1"
    assert prediction.body_site == "trunk"
    # A real number, not NaN (which SQLite stores as NULL) or a missing one: the verdict must rest on it.
    assert prediction.score is not None
    assert 0.0 <= prediction.score <= 1.0
    assert prediction.risk_level in {"low", "moderate", "high"}
    # The photo is really served (through the private view) and rendered.
    assert page.locator(".result-photo img").evaluate("img => img.complete && img.naturalWidth > 0")
    _shot(page, "result-desktop.png", docs_name="result-page.png")

    # The same result on a 375 px phone, logged in as the same person.
    phone = browser.new_context(viewport=PHONE, storage_state=context.storage_state(), is_mobile=True, has_touch=True)
    phone_page = phone.new_page()
    for path, name, docs_name in (
        (f"/predictions/{prediction_id}/", "result-phone.png", "result-page-phone.png"),
        ("/upload/", "upload-phone.png", None),
        ("/history/", "history-phone.png", None),
        ("/", "landing-phone.png", None),
    ):
        phone_page.goto(live_server.url + path)
        assert _fits_the_screen(phone_page), f"{path} scrolls sideways on a 375 px screen"
        _shot(phone_page, name, docs_name=docs_name)
    phone.close()

    # History: the prediction is there, and opens.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    expect(page).to_have_url(re.compile(r"/history/$"))
    item = page.locator(".history-item").first
    expect(item).to_contain_text("Trunk")
    expect(item.locator("img")).to_be_visible()
    _shot(page, "history-desktop.png")
    item.get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(rf"/predictions/{prediction_id}/$"))
    expect(page.locator("#verdict")).to_be_visible()

    # Keyboard: the first Tab reaches the skip link, which is then visible.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # Log out (a POST form in the header); pages need a login again.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Log in")).to_be_visible()
    page.goto(live_server.url + "/history/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/history/$"))

    assert failed_requests == [], f"requests failed: {failed_requests}"
    assert console_errors == [], f"errors in the browser console: {console_errors}"
    context.close()
