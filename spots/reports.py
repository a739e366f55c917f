"""The report for the doctor: a PDF per spot (every check of it) or per single check.

fpdf2 (pure Python, no system packages). Core PDF fonts only know Latin-1, so text is folded to it: a name with
other characters keeps its Latin-1 letters and shows "?" for the rest, rather than failing.
"""

from __future__ import annotations

import io
import logging

from django.core.files.storage import default_storage
from django.utils import timezone
from fpdf import FPDF

from classifier.images import JPEG_QUALITY, downscale, encode_jpeg
from classifier.models import Prediction
from classifier.risk import next_steps_for
from classifier.templatetags.classifier_extras import percent
from lesion_model.decode import decode_image
from spots import body_map
from spots.models import Spot

logger = logging.getLogger(__name__)

SCREENING_AID = (
    "This report comes from an automated screening aid, not a diagnosis. The model is tuned to catch melanoma "
    "and refers many harmless lesions too; a low-risk result cannot rule melanoma out. Clinical examination "
    "decides."
)
PHOTO_WIDTH_MM = 70
MAP_WIDTH_MM = 32
# 70 mm at 300 dpi is ~830 px: a photo kept as taken (up to 4 MB, 12 MP) is reduced for the PDF.
REPORT_PHOTO_MAX_SIDE = 1024


def check_photo_bytes(check: Prediction) -> bytes:
    """The check's stored photo. OSError (FileNotFoundError) when it is gone, or the row names none."""
    if not check.image.name:
        raise FileNotFoundError(f"check {check.pk} names no photo")
    with default_storage.open(check.image.name, "rb") as handle:
        return handle.read()


def report_photo_jpeg(check: Prediction) -> bytes:
    """The check's photo upright (PDF viewers ignore EXIF orientation, which a photo kept as taken carries) and no
    larger than the report needs. OSError when it is gone; ValueError (ImageError) when it cannot be read."""
    image = decode_image(check_photo_bytes(check), draft_size=(REPORT_PHOTO_MAX_SIDE, REPORT_PHOTO_MAX_SIDE))
    return encode_jpeg(downscale(image, REPORT_PHOTO_MAX_SIDE), JPEG_QUALITY)


def _text(value) -> str:
    return str(value).encode("latin-1", "replace").decode("latin-1")


class _Report(FPDF):
    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", size=7)
        self.set_text_color(90)
        self.multi_cell(0, 3.2, _text(f"{SCREENING_AID}  Page {self.page_no()}"))
        self.set_text_color(0)


def _new_report(title: str, person: str) -> _Report:
    pdf = _Report(format="A4")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_title(_text(title))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 8, _text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    generated = timezone.localtime().strftime("%d %b %Y %H:%M")
    pdf.multi_cell(0, 5, _text(f"For: {person}. Generated {generated}."), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    return pdf


def _row(pdf: FPDF, label: str, value: str) -> None:
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(38, 5, _text(label))
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(0, 5, _text(value or "-"), new_x="LMARGIN", new_y="NEXT")


def _spot_header(pdf: FPDF, spot: Spot) -> None:
    top = pdf.get_y()
    svg = body_map.svg_markup(view=spot.view, x=spot.x, y=spot.y)
    pdf.image(io.BytesIO(svg.encode()), x=pdf.w - pdf.r_margin - MAP_WIDTH_MM, y=top, w=MAP_WIDTH_MM)
    pdf.set_right_margin(pdf.r_margin + MAP_WIDTH_MM + 4)
    _row(pdf, "Spot", spot.name)
    region = Prediction.BodySite(spot.region).label if spot.region in Prediction.BodySite.values else spot.region
    _row(pdf, "Body map", f"{spot.get_view_display()} view, {region} (x {spot.x:.2f}, y {spot.y:.2f})")
    _row(pdf, "Followed since", timezone.localtime(spot.created_at).strftime("%d %b %Y"))
    _row(pdf, "Re-check", spot.get_recheck_months_display())
    if spot.note:
        _row(pdf, "Note", spot.note)
    pdf.set_right_margin(pdf.l_margin)
    pdf.set_y(max(pdf.get_y(), top + MAP_WIDTH_MM * 2 + 2))


def _result_text(check: Prediction) -> str:
    if check.status != Prediction.Status.DONE:
        return f"No result ({check.get_status_display().lower()})"
    if check.verdict == Prediction.Verdict.RETAKE:
        return f"No result: the photo was refused ({check.get_quality_issue_display().lower()}); retake it"
    steps = next_steps_for(check)
    label = steps.label if steps else check.get_verdict_display()
    return f"{label} (model score {percent(check.melanoma_probability)}, threshold {percent(check.threshold)})"


def differential_text(check: Prediction) -> str:
    """The second head's top diagnoses for a clinician: label, code and calibrated probability."""
    items = [
        f"{item.get('label', '')} ({item.get('code', '')}) {percent(item.get('probability'), 0)}"
        for item in check.differential
    ]
    return "; ".join(items) + " - a screening model's estimate, not a diagnosis"


def _check_block(pdf: FPDF, check: Prediction) -> None:
    if pdf.get_y() > pdf.h - 110:
        pdf.add_page()
    pdf.set_draw_color(200)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    taken = timezone.localtime(check.created_at).strftime("%d %b %Y %H:%M")
    pdf.cell(0, 6, _text(f"Check of {taken}"), new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y()
    photo_bottom = top
    try:
        placed = pdf.image(io.BytesIO(report_photo_jpeg(check)), x=pdf.l_margin, y=top, w=PHOTO_WIDTH_MM)
        photo_bottom = top + placed.rendered_height
    except (OSError, ValueError):
        logger.warning("Report: photo of check %s could not be read", check.pk)
        pdf.set_font("Helvetica", "I", 9)
        pdf.cell(PHOTO_WIDTH_MM, 5, "(photo missing)")
    pdf.set_left_margin(pdf.l_margin + PHOTO_WIDTH_MM + 5)
    pdf.set_xy(pdf.l_margin, top)
    _row(pdf, "Result", _result_text(check))
    _row(pdf, "Model version", check.model_version.version if check.model_version else "-")
    if check.differential:
        _row(pdf, "Differential (model)", differential_text(check))
    symptoms = ", ".join(check.symptoms) or "none ticked"
    _row(pdf, "Reported changes", symptoms)
    _row(pdf, "Body site", check.get_body_site_display())
    if check.note:
        _row(pdf, "Note", check.note)
    if check.reviewed:
        reviewed_on = timezone.localtime(check.reviewed_at).strftime("%d %b %Y") if check.reviewed_at else ""
        review = f"{check.get_confirmed_diagnosis_display()} {reviewed_on}".strip()
        if check.review_comment:
            review += f". {check.review_comment}"
        _row(pdf, "Clinician review", review)
    pdf.set_left_margin(pdf.l_margin - PHOTO_WIDTH_MM - 5)
    pdf.set_xy(pdf.l_margin, max(pdf.get_y(), photo_bottom) + 4)


def _finish(pdf: FPDF) -> bytes:
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 9)
    pdf.multi_cell(0, 4.5, _text(SCREENING_AID), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def spot_report_pdf(*, spot: Spot, checks: list[Prediction]) -> bytes:
    """Every check of the spot, newest first, with photos, dates, results, answers and reviews."""
    pdf = _new_report(f"Skin check report: {spot.name}", spot.user.get_username())
    _spot_header(pdf, spot)
    if not checks:
        pdf.set_font("Helvetica", "I", 9)
        pdf.cell(0, 6, "No checks filed under this spot yet.", new_x="LMARGIN", new_y="NEXT")
    for check in checks:
        _check_block(pdf, check)
    return _finish(pdf)


def check_report_pdf(*, check: Prediction) -> bytes:
    """One check; with its spot's name and body-map position when it is filed under one."""
    spot = check.spot
    title = f"Skin check report: {spot.name}" if spot is not None else "Skin check report"
    pdf = _new_report(title, check.user.get_username())
    if spot is not None:
        _spot_header(pdf, spot)
    _check_block(pdf, check)
    return _finish(pdf)


def report_filename(name: str) -> str:
    safe = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    return f"skin-check-{'-'.join(part for part in safe.split('-') if part)[:60] or 'report'}.pdf"
