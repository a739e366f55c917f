"""The photo check (lesion_model/quality.py): each reason on a real lesion photo made bad, and clear photos pass.

Real photos come from ../shared/derm/uploads when present, else the suite's synthetic lesion (bench/synthetic.py).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bench.photo_check import (
    SHARED_DERM,  # noqa: E402 - ../shared/derm, or MELANOMA_SHARED_DERM
    blurred,
    darkened,
    overexposed,
    scene,
)
from bench.synthetic import SKIN, lesion_pixels
from lesion_model import quality
from lesion_model.decode import decode_image
from lesion_model.quality import (
    PIXEL_CHECKS,
    WORKING_SIZE,
    QualityIssue,
    Thresholds,
    check_photo,
    measure,
    run_checks,
    with_extra,
)
from training.camera import SIMULATIONS, camera_like

SHARED_PH2 = SHARED_DERM / "ph2"


@dataclass(frozen=True)
class Lesion:
    image: Image.Image  # WORKING_SIZE x WORKING_SIZE
    box: tuple[int, int, int, int]  # the lesion's bounding box in it (left, top, right, bottom)


def _working(image: Image.Image) -> Image.Image:
    return image.convert("RGB").resize((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR)


def _real_lesions() -> list[Lesion]:
    """PH2 photos with their experts' lesion masks when ../shared is there, else the synthetic lesion."""
    found = []
    for path in sorted((SHARED_PH2 / "jpeg").glob("*.jpg"))[:3] if SHARED_PH2.is_dir() else []:
        mask = np.asarray(_working(Image.open(SHARED_PH2 / "masks" / f"{path.stem}_lesion.png")).convert("L")) > 127
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        found.append(Lesion(_working(decode_image(path, draft_size=(WORKING_SIZE, WORKING_SIZE))), box))
    if found:
        return found
    # bench/synthetic.py: a mole of radius ~0.25 x the short side, in the middle.
    radius = int(0.25 * WORKING_SIZE)
    box = (
        WORKING_SIZE // 2 - radius,
        WORKING_SIZE // 2 - radius,
        WORKING_SIZE // 2 + radius,
        WORKING_SIZE // 2 + radius,
    )
    return [Lesion(Image.fromarray(lesion_pixels(WORKING_SIZE, WORKING_SIZE, seed)), box) for seed in range(3)]


@pytest.fixture(scope="module")
def lesions() -> list[Lesion]:
    return _real_lesions()


def test_clear_lesion_photos_pass(lesions):
    for lesion in lesions:
        result = check_photo(lesion.image)
        assert result.passed, result.measures


def test_camera_like_close_ups_pass(lesions):
    """Smaller in a wider frame of skin, mildly defocused, unevenly lit: most people have no dermatoscope."""
    for seed, lesion in enumerate(lesions):
        for name, conditions in SIMULATIONS.items():
            result = check_photo(camera_like(lesion.image, seed=seed, conditions=conditions))
            assert result.passed, (name, result.measures)


@pytest.mark.parametrize("sigma", [4.0, 6.0])
def test_blurred_photo_is_blurry(lesions, sigma):
    for lesion in lesions:
        assert check_photo(blurred(lesion.image, sigma)).issue == QualityIssue.BLURRY


def test_dark_photo_is_too_dark(lesions):
    for lesion in lesions:
        assert check_photo(darkened(lesion.image, 0.15)).issue == QualityIssue.TOO_DARK


def test_overexposed_photo_is_too_bright(lesions):
    for lesion in lesions:
        assert check_photo(overexposed(lesion.image, 3.0)).issue == QualityIssue.TOO_BRIGHT


def test_white_reflection_on_the_lesion_is_glare(lesions):
    for lesion in lesions:
        left, top, right, bottom = lesion.box
        flashed = lesion.image.copy()
        cx, cy = (left + right) // 2, (top + bottom) // 2
        radius = max(6, min(right - left, bottom - top) // 2)  # a flash reflection over most of it
        ImageDraw.Draw(flashed).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(255, 255, 255))
        assert check_photo(flashed).issue == QualityIssue.GLARE


def _far_away(lesion: Lesion, seed: int, side: int = 16) -> Image.Image:
    """The lesion shrunk to `side` pixels across, on evenly lit plain skin of the photo's own tone."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(lesion.image, dtype=np.float32)
    left, top, right, bottom = lesion.box
    outside = np.ones(pixels.shape[:2], dtype=bool)
    outside[top : bottom + 1, left : right + 1] = False
    tone = np.median(pixels[outside & (pixels.mean(axis=2) > 60)], axis=0)
    canvas = tone + rng.normal(0, 2.0, (WORKING_SIZE, WORKING_SIZE, 3))
    patch = np.asarray(lesion.image.crop((left, top, right, bottom)).resize((side, side)), dtype=np.float32)
    start = (WORKING_SIZE - side) // 2
    canvas[start : start + side, start : start + side] = patch
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))


def test_tiny_lesion_far_away_is_too_small(lesions):
    for seed, lesion in enumerate(lesions):
        result = check_photo(_far_away(lesion, seed))
        assert result.issue == QualityIssue.TOO_SMALL, result.measures


def _filled_frame(seed: int) -> Image.Image:
    """A mole so close that it covers the frame but for slivers of skin in the corners."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:WORKING_SIZE, 0:WORKING_SIZE] / WORKING_SIZE - 0.5
    inside = np.hypot(yy, xx) < 0.66
    pixels = np.where(inside[..., None], np.array([150, 100, 80], dtype=np.float32), SKIN) + rng.normal(
        0, 6, (WORKING_SIZE, WORKING_SIZE, 3)
    )
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _flash_beside_a_mole(seed: int) -> Image.Image:
    """A mole (4.5 % of the frame) on skin, and beside it a flash's reflection: clipped white at its core (2.5 % of
    the frame), fading into the skin, as training.camera draws glare."""
    yy, xx = np.mgrid[0:WORKING_SIZE, 0:WORKING_SIZE] / WORKING_SIZE - 0.5
    pixels = np.empty((WORKING_SIZE, WORKING_SIZE, 3), dtype=np.float32)
    pixels[:] = (205, 160, 140)
    pixels[np.hypot(xx, yy) < 0.12] = (150, 100, 80)
    spread = 0.06 / np.sqrt(np.log(1.25))
    glow = np.exp(-((xx + 0.2) ** 2 + (yy + 0.2) ** 2) / spread**2)[..., None]
    pixels += (255 / 0.8 - pixels) * glow + np.random.default_rng(seed).normal(0, 3, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_flash_reflection_beside_the_lesion_is_not_mistaken_for_the_lesion(seed, monkeypatch):
    """Phone photos are often taken with the flash on. The reflection's bright fringe is neither skin nor lesion;
    left in, Otsu splits the fringe from everything else and the lesion seems to fill the frame (`too_close`)."""
    photo = _flash_beside_a_mole(seed)

    result = check_photo(photo)
    assert result.passed, result.measures
    assert result.measures.lesion_share == pytest.approx(np.pi * 0.12**2, abs=0.01)

    monkeypatch.setattr(quality, "HALO_MARGIN", float("inf"))  # the fringe left in
    assert check_photo(photo).issue == QualityIssue.TOO_CLOSE


def test_lesion_filling_the_frame_is_too_close():
    assert check_photo(_filled_frame(0)).issue == QualityIssue.TOO_CLOSE


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(Image.new("RGB", (300, 300), (180, 140, 120)), id="solid skin colour"),
        pytest.param(Image.new("RGB", (1536, 1), (120, 80, 60)), id="1536x1 strip"),
        pytest.param(Image.fromarray(lesion_pixels(320, 240, 0)).convert("L").convert("RGB"), id="greyscale"),
        pytest.param(scene("landscape", 1), id="landscape"),
        pytest.param(scene("noise", 1), id="noise"),
        pytest.param(scene("text", 1), id="text"),
        pytest.param(scene("blue_blob", 1), id="blue object on skin"),
    ],
)
def test_pictures_that_are_not_lesions(image):
    assert check_photo(image).issue == QualityIssue.NOT_A_LESION


def _faint_patch(colour: tuple[float, float, float], seed: int = 0) -> Image.Image:
    """Skin with a faint darker disc in the middle, a few grey levels below it."""
    yy, xx = np.mgrid[0:WORKING_SIZE, 0:WORKING_SIZE] / WORKING_SIZE - 0.5
    pixels = np.empty((WORKING_SIZE, WORKING_SIZE, 3), dtype=np.float32)
    pixels[:] = (200, 150, 125)
    pixels[np.hypot(xx, yy) < 0.2] = colour
    pixels += np.random.default_rng(seed).normal(0, 3, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_a_faint_patch_of_the_skins_own_colour_is_shading_not_a_lesion():
    """A faint darker region must differ from the skin in colour too: pigment shifts the colour, a shadow or the
    skin's own texture only its brightness."""
    shadow = check_photo(_faint_patch((186, 139.5, 116.25)))  # the skin x 0.93: darker, same colour
    brown = check_photo(_faint_patch((190, 132, 105)))  # as faint, browner: pigment

    limits = Thresholds()
    for result in (shadow, brown):
        assert limits.min_lesion_contrast < result.measures.lesion_contrast < limits.faint_lesion_contrast
    assert shadow.measures.lesion_chroma < limits.min_faint_lesion_chroma < brown.measures.lesion_chroma
    assert shadow.issue == QualityIssue.NOT_A_LESION
    assert brown.passed, brown.measures


def test_bare_skin_is_not_a_lesion():
    """Generated bare skin (bench.photo_check's `skin_only`): its darker half is texture, the skin's own colour."""
    for seed in range(5):
        result = check_photo(scene("skin_only", seed))
        assert result.issue == QualityIssue.NOT_A_LESION, result.measures
        assert result.measures.lesion_chroma < Thresholds().min_faint_lesion_chroma


def test_green_ground_is_not_skin_whatever_its_saturation():
    """Grass and leaves are no more saturated than some dermoscopy: it is their hue that is not skin's. A darker
    green blob on green ground passes every other check; the redness check refuses it."""
    yy, xx = np.mgrid[0:WORKING_SIZE, 0:WORKING_SIZE] / WORKING_SIZE - 0.5
    pixels = np.empty((WORKING_SIZE, WORKING_SIZE, 3), dtype=np.float32)
    pixels[:] = (110, 160, 85)
    pixels[np.hypot(xx, yy) < 0.18] = (60, 95, 45)
    pixels += np.random.default_rng(0).normal(0, 3, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))

    result = check_photo(image)
    assert result.measures.skin_redness < Thresholds().min_skin_redness
    assert result.measures.skin_saturation < Thresholds().max_skin_saturation
    assert result.issue == QualityIssue.NOT_A_LESION
    assert check_photo(image, thresholds=Thresholds(min_skin_redness=-255.0)).issue is None
    for seed in range(5):
        assert check_photo(scene("landscape", seed)).issue == QualityIssue.NOT_A_LESION


def test_skin_and_lesions_are_redder_than_green(lesions):
    for lesion in lesions:
        assert check_photo(lesion.image).measures.skin_redness > Thresholds().min_skin_redness + 10


@pytest.mark.parametrize("name", ["coffee", "rocket", "camera", "grass", "retina", "hubble_deep_field"])
def test_real_photos_that_are_not_lesions_are_refused(name):
    data = pytest.importorskip("skimage.data")
    image = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
    assert check_photo(image).issue is not None


def test_checks_are_a_pipeline_that_takes_one_more(lesions):
    """A later check (the backbone-feature `unfamiliar` one) is one more function over the same measures."""
    measures = with_extra(measure(lesions[0].image), feature_distance=9.0)

    def check_unfamiliar(found, thresholds: Thresholds) -> QualityIssue | None:
        return QualityIssue.UNFAMILIAR if found.extra.get("feature_distance", 0.0) > 5.0 else None

    assert run_checks(measures) is None
    assert run_checks(measures, checks=(*PIXEL_CHECKS, check_unfamiliar)) == QualityIssue.UNFAMILIAR


def test_thresholds_can_be_loosened(lesions):
    dark = darkened(lesions[0].image, 0.15)
    assert check_photo(dark, thresholds=Thresholds(too_dark_p95=0.0)).issue != QualityIssue.TOO_DARK


def test_check_is_fast(lesions):
    """A few ms at 224 px on an idle core; the bound is loose because CI machines are shared."""
    image = lesions[0].image
    check_photo(image)
    started = time.perf_counter()
    for _ in range(10):
        check_photo(image)
    assert (time.perf_counter() - started) / 10 < 0.05


def test_the_bench_scores_the_whole_check_with_the_models_distance(lesions):
    """bench.photo_check --model-dir: a photo the pixel checks pass is `unfamiliar` beyond the card's distance, and
    a pixel issue comes first."""
    from bench.photo_check import Measured, Sample, figures, outcome

    clear = measure(lesions[0].image)
    assert outcome(clear, distance=20.0, unfamiliar_above=10.0) == "unfamiliar"
    assert outcome(clear, distance=5.0, unfamiliar_above=10.0) == "pass"
    assert outcome(measure(darkened(lesions[0].image)), distance=20.0, unfamiliar_above=10.0) == "too_dark"

    measured = [
        Measured(Sample("ph2", "held-out", "as_is", "a", ("pass",)), clear, distance=distance)
        for distance in (1.0, 99.0)
    ]
    (row,) = figures(measured, unfamiliar_above=10.0)["rows"][:1]
    assert row["refused"] == 0.5
    assert row["reasons"] == {"unfamiliar": 1}


def test_the_bench_records_the_issues_figures_in_the_model_card(lesions, tiny_model, tmp_path):
    """bench.photo_check --record: the card keeps the targeted shares per part, with their image counts."""
    from bench.photo_check import Measured, Sample, figures, record

    model_dir = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    clear = measure(lesions[0].image)
    dark = measure(darkened(lesions[0].image))
    measured = [
        Measured(Sample("ph2", "held-out", "as_is", "a", ("pass",)), clear),
        Measured(Sample("ph2", "held-out", "as_is", "b", ("pass",)), dark),
        Measured(Sample("ph2", "held-out", "dark", "a", ("too_dark",)), dark),
        Measured(Sample("skimage", "development", "as_is", "x", ("not_a_lesion", "any_issue")), dark),
    ]
    record(model_dir, figures(measured, unfamiliar_above=12.0))

    card = json.loads((model_dir / "model_card.json").read_text())
    section = card["photo_check"]
    assert section["held_out"]["lesions_refused"] == {"share": 0.5, "images": 2}
    assert section["held_out"]["dark_right_reason"] == {"share": 1.0, "images": 1}
    assert section["development"]["skimage_refused"] == {"share": 1.0, "images": 1}
    assert section["development"]["non_lesions_refused"] == {"share": 1.0, "images": 1}  # scikit-image + scenes
    assert section["unfamiliar_above"] == 12.0
    assert section["thresholds"]["max_skin_saturation"] == Thresholds().max_skin_saturation
