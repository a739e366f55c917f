"""The whole stack as a person uses it: Debian's Chromium (Playwright) against the live server, a real Celery
worker on real Redis, a real LiteRT model and a real photo.

Sign up, upload, watch the verdict appear on the result page without a reload, find it in history, log out.
On the way, every page is checked with axe-core (vendored in tests/assets/axe-core: contrast, alt texts, labels,
the rest of WCAG 2 A/AA), for sideways scrolling at 320 px, for 44 px touch targets, for a result page that does
not jump when the photo arrives late, and with JavaScript off. A second test walks the admin at 1280 px.

Screenshots (desktop and a 375 px phone) go to test-artifacts/; with MELANOMA_UPDATE_DOCS_SCREENSHOTS=1 the
result-page ones are also written to docs/ for the README, with docs/screenshots.json recording what they show
(tests/test_docs_screenshots.py fails when the pages or the shipped model changed since).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from tests import docs_screenshots
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
SHARED_UPLOADS = Path(settings.BASE_DIR).parent / "shared" / "derm" / "uploads"
PHONE = {"width": 375, "height": 812}
NARROW_PHONE = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 900}
AXE_VERSION = "4.14.1"
AXE_SOURCE = Path(__file__).resolve().parent.parent / "assets" / "axe-core" / "axe.min.js"

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


def _shot(page, name: str, *, docs_name: str | None = None, shows: dict | None = None) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    if docs_name and os.environ.get("MELANOMA_UPDATE_DOCS_SCREENSHOTS") == "1":
        docs_screenshots.record(docs_name, path, shows or {})
    return path


def _fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _axe_violations(page) -> list[str]:
    """axe-core's WCAG 2 A/AA rules (colour contrast >= 4.5:1, image alt texts, form labels, ...) on the page
    as it is now. Evaluated through the DevTools protocol, so the page's strict CSP does not block it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE.read_text())
    assert page.evaluate("axe.version") == AXE_VERSION
    results = page.evaluate(
        """() => axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})"""
    )
    return [
        f"{violation['id']}: {violation['help']} ({', '.join(node['target'][0] for node in violation['nodes'][:3])})"
        for violation in results["violations"]
    ]


def _accessible(page, where: str) -> None:
    violations = _axe_violations(page)
    assert violations == [], f"{where}: {violations}"


def _small_targets(page, selector: str) -> list[str]:
    return page.evaluate(
        """(selector) => Array.from(document.querySelectorAll(selector))
            .filter((el) => el.getBoundingClientRect().height < 44)
            .map((el) => el.textContent.trim() + " " + Math.round(el.getBoundingClientRect().height) + "px")""",
        selector,
    )


def test_sign_up_upload_watch_the_verdict_find_it_in_history_log_out(
    live_server, no_public_media, transactional_db, isolated_services, active_model, photo_path, browser, settings
):
    from playwright.sync_api import expect

    from classifier.answers import ANSWERS
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
    _accessible(page, "landing")
    page.get_by_role("link", name="Create a free account").click()
    _accessible(page, "sign-up")
    page.get_by_label("Username").fill("patient1")
    page.get_by_label("E-mail (optional)").fill("patient1@example.org")
    page.get_by_label("Password:", exact=True).fill("a-long-and-unusual-passphrase-31")
    page.get_by_label("Password confirmation").fill("a-long-and-unusual-passphrase-31")
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/upload/$"))
    expect(page.get_by_text("Welcome! Your account is ready.")).to_be_visible()

    _accessible(page, "upload")

    # A photo over the limit is refused in the browser, before a byte is sent, and the note stays.
    settings.MELANOMA_MAX_UPLOAD_BYTES = photo_path.stat().st_size - 1
    page.reload()
    page.get_by_label("Note (optional)").fill("kept while I pick another photo")
    page.get_by_label("Photo of the skin lesion").set_input_files(str(photo_path))
    expect(page.get_by_role("alert")).to_contain_text("The file is too large")
    page.get_by_role("button", name="Check my photo").click()
    expect(page).to_have_url(re.compile(r"/upload/$"))
    expect(page.get_by_label("Note (optional)")).to_have_value("kept while I pick another photo")
    expect(page.get_by_label("Photo of the skin lesion")).to_be_focused()
    _accessible(page, "upload with a too-large photo")
    settings.MELANOMA_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
    page.reload()

    # Upload a real photo. No worker is running yet, so the result page must show it waiting.
    page.get_by_label("Photo of the skin lesion").set_input_files(str(photo_path))
    # The body map replaces the body-area dropdown (which is only for browsers without JavaScript).
    expect(page.get_by_label("Where on the body is it? (optional)")).to_be_hidden()
    front = page.locator('.body-map-svg[data-view="front"]')
    box = front.bounding_box()
    front.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.35})  # the chest: trunk
    page.get_by_label("Note (optional)").fill("Left shoulder, noticed in spring")
    _shot(page, "upload-desktop.png")
    page.get_by_role("button", name="Check my photo").click()
    expect(page).to_have_url(re.compile(r"/predictions/\d+/$"))
    expect(page.get_by_text("Waiting in the queue")).to_be_visible()
    expect(page.get_by_role("img", name="Your photo of the skin spot")).to_be_visible()
    _shot(page, "result-waiting-desktop.png")
    _accessible(page, "result, waiting")
    prediction_id = int(re.search(r"/predictions/(\d+)/", page.url).group(1))

    # With JavaScript off the waiting page says one thing: reload (not also "updates by itself").
    no_script = browser.new_context(viewport=PHONE, storage_state=context.storage_state(), java_script_enabled=False)
    still_page = no_script.new_page()
    still_page.goto(page.url)
    expect(still_page.get_by_text("Reload this page")).to_be_visible()
    expect(still_page.get_by_text("updates by itself")).to_be_hidden()
    no_script.close()
    # A reload would wipe this marker: it proves the verdict arrived by polling.
    page.evaluate("window.__sameDocument = true")

    with real_worker(isolated_services["queue"]):
        verdict = page.locator("#verdict")
        expect(verdict).to_be_visible(timeout=WAIT_MS)

    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    expect(verdict).to_have_text(re.compile("|".join(re.escape(answer.title) for answer in ANSWERS.values())))
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
    assert page.locator(".result-photo img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    # Issue 12: with the result, without a reload, the page offers where the model looked (off until ticked, CSS
    # only) and, in plain words, what else it could be.
    heatmap = page.get_by_test_id("heatmap")
    expect(heatmap).to_be_hidden()
    page.get_by_label("Show where the model looked").check()
    expect(heatmap).to_be_visible()
    expect(heatmap).to_have_js_property("complete", value=True)
    assert heatmap.evaluate("img => img.naturalWidth > 0")
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    page.get_by_label("Show where the model looked").uncheck()
    expect(page.get_by_test_id("other-possibilities")).to_contain_text("Other things this could be")
    expect(page.get_by_test_id("other-possibilities")).not_to_contain_text("%")
    _accessible(page, "result")
    # Loaded afresh, the finished page offers the same toggle.
    page.reload()
    expect(heatmap).to_be_hidden()
    expect(page.get_by_label("Show where the model looked")).to_be_visible()
    shows = {"model_version": prediction.model_version.version, "risk_level": prediction.risk_level}
    _shot(page, "result-desktop.png", docs_name="result-page.png", shows=shows)
    _result_page_does_not_jump(browser, context, page.url)

    # The same result on a 375 px phone, logged in as the same person.
    phone = browser.new_context(viewport=PHONE, storage_state=context.storage_state(), is_mobile=True, has_touch=True)
    phone_page = phone.new_page()
    for path, name, docs_name in (
        (f"/predictions/{prediction_id}/", "result-phone.png", "result-page-phone.png"),
        ("/upload/", "upload-phone.png", None),
        ("/history/", "history-phone.png", None),
        ("/accounts/", "account-phone.png", None),
        ("/", "landing-phone.png", None),
    ):
        phone_page.goto(live_server.url + path)
        assert _fits_the_screen(phone_page), f"{path} scrolls sideways on a 375 px screen"
        if name == "result-phone.png":  # the phone screenshot shows where the model looked
            phone_page.get_by_label("Show where the model looked").check()
            expect(phone_page.get_by_test_id("heatmap")).to_be_visible()
        _shot(phone_page, name, docs_name=docs_name, shows=shows)
        phone_page.set_viewport_size(NARROW_PHONE)
        assert _fits_the_screen(phone_page), f"{path} scrolls sideways on a 320 px screen"
        if path == "/history/":
            small = _small_targets(phone_page, ".history-date a, .history-actions a")
            assert small == [], f"touch targets under 44 px: {small}"
        _accessible(phone_page, f"{path} at 320 px")
        phone_page.set_viewport_size(PHONE)
    phone.close()

    # History: the prediction is there, and opens.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    expect(page).to_have_url(re.compile(r"/history/$"))
    item = page.locator(".history-item").first
    expect(item).to_contain_text("Trunk")
    expect(item.locator("img")).to_be_visible()
    _shot(page, "history-desktop.png")
    _accessible(page, "history")
    item.get_by_role("link", name="Open the check of").click()
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


def _result_page_does_not_jump(browser, context, url: str) -> None:
    """On a phone the verdict sits below the photo: it must not move when a slow photo finally arrives."""
    phone = browser.new_context(viewport=PHONE, storage_state=context.storage_state(), is_mobile=True)
    page = phone.new_page()
    held: list = []
    page.route(
        re.compile(r"/predictions/\d+/image/$"), lambda route: held.append(route)
    )  # the photo is "on a slow connection"
    page.goto(url, wait_until="domcontentloaded")
    verdict = page.locator("#verdict")
    verdict.wait_for()
    assert held, "the photo request was not held back"
    before = verdict.bounding_box()
    for route in held:
        route.continue_()
    page.wait_for_function(
        "() => { const img = document.querySelector('.result-photo img'); "
        "return img.complete && img.naturalWidth > 0; }"
    )
    after = verdict.bounding_box()
    assert abs(after["y"] - before["y"]) < 1, f"the verdict moved from y={before['y']} to y={after['y']}"
    phone.close()


def test_admin_at_1280_px_review_queue_by_keyboard_model_card_figures(
    live_server, no_public_media, transactional_db, isolated_services, active_model, browser
):
    """A clinician's round: nothing cut off at 1280 px, no missing favicon or figure, the review queue answered
    with the keyboard alone, the model card's figures shown."""
    from playwright.sync_api import expect

    from classifier.models import Prediction
    from tests.factories import TEST_PASSWORD, PredictionFactory, UserFactory

    UserFactory(username="clinician", superuser=True)
    patient = UserFactory(username="a-patient-with-a-rather-long-username", email="long.address@example.org")
    flagged = [
        PredictionFactory(user=patient, done=True, melanoma_probability=probability, note="itches since March " * 4)
        for probability in (0.91, 0.62)
    ]
    PredictionFactory(user=patient, done=True, melanoma_probability=0.01)

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    failed_requests: list[str] = []
    console_errors: list[str] = []
    page.on("response", lambda response: response.status >= 400 and failed_requests.append(response.url))
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))

    page.goto(live_server.url + "/admin/")
    page.get_by_label("Username").fill("clinician")
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Predictions")).to_be_visible()

    page.goto(live_server.url + "/admin/classifier/prediction/")
    expect(page.locator("#result_list")).to_be_visible()
    _shot(page, "admin-predictions-1280.png")
    assert _fits_the_screen(page), "the prediction list is cut off at 1280 px"
    # Not cut off inside its box either (the admin lets the table scroll sideways within the page).
    assert page.evaluate(
        "() => { const box = document.querySelector('#changelist .results'); "
        "return box.scrollWidth <= box.clientWidth; }"
    ), "the prediction list's columns are cut off at 1280 px"

    # The queue, keyboard only: Tab to the first answer, Enter; the next flagged check appears.
    page.get_by_role("link", name=re.compile(r"Review queue \(2 waiting\)")).click()
    expect(page.get_by_role("heading", name=f"Check #{flagged[0].pk}")).to_be_visible()
    assert _fits_the_screen(page)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('review-answer')"):
            break
    assert page.evaluate("document.activeElement.value") == "melanoma"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "2. Not melanoma"
    expect(page.get_by_role("heading", name=f"Check #{flagged[1].pk}")).to_be_visible()
    reviewed = Prediction.objects.get(pk=flagged[0].pk)
    assert (reviewed.reviewed, reviewed.confirmed_diagnosis) == (True, "not_melanoma")
    _shot(page, "admin-review-queue.png")

    page.goto(live_server.url + "/admin/classifier/modelversion/")
    assert _fits_the_screen(page)
    page.goto(live_server.url + f"/admin/classifier/modelversion/{active_model.pk}/change/")
    figures = page.locator(".model-figures img")
    expect(figures.first).to_be_visible()
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.model-figures img')).every(i => i.complete && i.naturalWidth)"
    )
    expect(page.locator(".metrics-table").first).to_be_visible()
    assert _fits_the_screen(page), "the model card page is cut off at 1280 px"
    _shot(page, "admin-model-card.png")

    page.goto(live_server.url + "/admin/classifier/modelversion/comparison/")
    expect(page.locator("table.comparison")).to_contain_text("0 of 1")
    assert _fits_the_screen(page)

    # The API docs: Swagger UI from the site's own static files renders under the strict CSP.
    page.goto(live_server.url + "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Melanoma screening API")
    expect(page.get_by_text("/api/predictions/").first).to_be_visible()

    assert failed_requests == [], f"requests failed (a missing favicon.ico would show here): {failed_requests}"
    assert console_errors == [], f"errors in the browser console: {console_errors}"
    context.close()
