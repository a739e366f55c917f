"""The issue's "Done when" walk in a real browser (Debian's Chromium via Playwright) against the live server:
create a spot on the body map, two checks a month apart, compare, change flag, PDF downloaded and read,
reminder sent once by the periodic task, unsubscribe link works logged out, export zip holds both photos.

Checks are finished through the ORM (dates set by the test) rather than by a worker: the worker path has its
own browser test (tests/classifier/test_browser.py). With MELANOMA_UPDATE_DOCS_SCREENSHOTS=1 the spot page
screenshots and the report's first page (rendered to PNG) go to docs/.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone
from pypdf import PdfReader

from tests import docs_screenshots
from tests.classifier.page_helpers import lesion_jpeg
from tests.classifier.test_browser import (  # the launch and helpers of the existing browser test
    ARTIFACTS,
    DESKTOP,
    PHONE,
    _fits_the_screen,
    _shot,
    browser,  # noqa: F401 - fixture
    no_public_media,  # noqa: F401 - fixture
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
MADE_BY = {"regenerate": "MELANOMA_UPDATE_DOCS_SCREENSHOTS=1 pytest tests/spots/test_spot_browser.py"}


def _render_first_page(pdf_path, name: str, *, docs_name: str) -> Path:
    """The report's first page as a PNG (PDFium through pypdfium2, a wheel: no system package), checked not blank;
    into docs/ with MELANOMA_UPDATE_DOCS_SCREENSHOTS=1."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf_path)
    try:
        image = document[0].render(scale=150 / 72).to_pil().convert("RGB")  # 150 dpi
    finally:
        document.close()
    assert image.width > 1000
    assert image.convert("L").getextrema()[0] < 100, "the rendered page is blank"
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    image.save(path, optimize=True)
    if os.environ.get("MELANOMA_UPDATE_DOCS_SCREENSHOTS") == "1":
        docs_screenshots.record(docs_name, path, MADE_BY)
    return path


def test_follow_a_spot_over_time(live_server, no_public_media, transactional_db, browser, settings, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    from accounts.models import VerifiedEmail
    from classifier.models import Prediction
    from spots.models import Spot
    from spots.tasks import reminders_send_due_task
    from tests.spots.conftest import finish

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.MELANOMA_SITE_URL = live_server.url
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("walker", email="walker@example.org", password="pw-walker-123456")
    VerifiedEmail.objects.create(user=user, email=user.email, verified_at=timezone.now())
    photos = []
    for seed in (1, 2):
        path = tmp_path / f"IMG_{seed}.jpg"
        path.write_bytes(lesion_jpeg(width=800, height=600, seed=seed))
        photos.append(path)

    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.goto(live_server.url + "/accounts/login/")
    page.get_by_label("Username").fill("walker")
    page.get_by_label("Password").fill("pw-walker-123456")
    page.get_by_role("button", name="Log in").click()

    # The body map replaces the body-area dropdown, which is there only without JavaScript.
    page.goto(live_server.url + "/upload/")
    expect(page.locator('.body-map-svg[data-view="front"]')).to_be_visible()
    expect(page.get_by_label("Where on the body is it? (optional)")).to_be_hidden()
    no_script = browser.new_context(storage_state=context.storage_state(), java_script_enabled=False)
    still_page = no_script.new_page()
    still_page.goto(live_server.url + "/upload/")
    expect(still_page.get_by_label("Where on the body is it? (optional)")).to_be_visible()
    expect(still_page.locator('.body-map-svg[data-view="front"]')).to_be_hidden()
    no_script.close()

    # A spot on the body map (the back view, upper trunk), with monthly reminders.
    page.goto(live_server.url + "/spots/new/")
    page.get_by_label("Name").fill("mole left shoulder")
    page.get_by_label("Re-check reminder").select_option("1")
    back = page.locator('.body-map-svg[data-view="back"]')
    box = back.bounding_box()
    back.click(position={"x": box["width"] * 0.36, "y": box["height"] * 0.25})
    expect(page.get_by_text("Placed on the back view.")).to_be_visible()
    page.get_by_role("button", name="Save the spot").click()
    expect(page).to_have_url(re.compile(r"/spots/\d+/$"))
    spot = Spot.objects.get()
    assert (spot.view, spot.region) == ("back", "trunk")

    # Two checks of it, from the spot page's "Re-check this spot"; the second with "it itches" ticked.
    for index, photo in enumerate(photos):
        page.goto(f"{live_server.url}/spots/{spot.pk}/")
        page.get_by_role("link", name="Re-check this spot").click()
        page.get_by_label("Photo of the skin lesion").set_input_files(str(photo))
        if index == 1:
            page.get_by_label("It itches").check()
        page.get_by_role("button", name="Check my photo").click()
        expect(page).to_have_url(re.compile(r"/predictions/\d+/$"))
    older, newer = Prediction.objects.order_by("pk")
    now = timezone.now()
    finish(older, verdict="low_risk", probability=0.02, when=now - dt.timedelta(days=62))
    finish(newer, verdict="refer", probability=0.4, when=now - dt.timedelta(days=31))

    page.goto(f"{live_server.url}/spots/{spot.pk}/")
    expect(page.get_by_test_id("change-flag")).to_be_visible()
    expect(page.get_by_test_id("timeline-item")).to_have_count(2)
    expect(page.get_by_test_id("marker-back")).to_be_visible()
    # The page already compares the two newest checks, so "Compare" reloads it with ?a=..&b=..: wait for that
    # page, then for each photo to load (private, no-store: fetched again on every load), or its error.
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(rf"/spots/{spot.pk}/\?a={older.pk}&b={newer.pk}$"))
    pair = page.get_by_test_id("compare").locator("img")
    expect(pair).to_have_count(2)
    for index in range(2):
        assert pair.nth(index).evaluate("img => img.decode().then(() => img.naturalWidth > 0, () => false)")
    _shot(page, "spot-desktop.png", docs_name="spot-page.png", shows=MADE_BY)

    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Download the report")).click()
    pdf_path = download_info.value.path()
    text = " ".join(page_.extract_text() for page_ in PdfReader(pdf_path).pages)
    assert "mole left shoulder" in text
    _render_first_page(pdf_path, "spot-report.png", docs_name="spot-report.png")

    phone = browser.new_context(viewport=PHONE, storage_state=context.storage_state(), is_mobile=True, has_touch=True)
    phone_page = phone.new_page()
    phone_page.goto(f"{live_server.url}/spots/{spot.pk}/")
    assert _fits_the_screen(phone_page)
    _shot(phone_page, "spot-phone.png", docs_name="spot-page-phone.png", shows=MADE_BY)
    phone.close()

    # The periodic task: one e-mail, and nothing more on a second run.
    assert reminders_send_due_task() == [spot.pk]
    assert reminders_send_due_task() == []
    assert len(mail.outbox) == 1
    link = re.search(r"(http://\S+/reminders/unsubscribe/\S+/)", mail.outbox[0].body).group(1)
    stranger = browser.new_context()  # logged out
    stranger_page = stranger.new_page()
    stranger_page.goto(link)
    expect(stranger_page.get_by_test_id("unsubscribed")).to_be_visible()
    stranger.close()
    spot.refresh_from_db()
    assert spot.recheck_months == 0

    # Export: both photos in the zip.
    page.goto(live_server.url + "/accounts/")
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Export my data")).click()
    archive = zipfile.ZipFile(io.BytesIO(open(download_info.value.path(), "rb").read()))  # noqa: SIM115
    assert len([name for name in archive.namelist() if name.startswith("photos/")]) == 2

    assert console_errors == [], console_errors
    context.close()
