"""How well the photo check (lesion_model/quality.py) tells usable lesion photos from the rest.

    python -m bench.photo_check                 # table on stdout (~2 minutes on 2 cores with ../shared/derm)
    python -m bench.photo_check --json          # the figures as JSON (what `photo_check_figures` returns)
    python -m bench.photo_check --per-source 300  # at most N lesion images per source and part (a quicker run)
    python -m bench.photo_check --model-dir models/mnv2-320-centre40-20261207  # the whole check, `unfamiliar` too
    python -m bench.photo_check --model-dir models/mnv2-320-centre40-20261207 --record  # + the card's photo_check

The thresholds were chosen on the *development* part only: HAM10000 lesions whose lesion id hashes into the
first half, half of scikit-image's bundled photos (`skimage.data`) and generated scenes of seeds 0-9. Every
other image is held out: the other HAM10000 lesions, isic2017, ph2, isic-sample and uploads (every source in
../shared/derm), the other half of the scikit-image photos and scenes of seeds 100-109.

Measured on held-out images:
- real lesion photos as they are: the share refused (target <= 2 %);
- real photos that are not lesions (scikit-image) and generated scenes: the share refused, of both together
  (`non_lesions`, the issue's target: >= 95 %) and of each;
- real lesion photos made blurry (Gaussian sigma 4 and 6 px at 224), dark (x0.15) or overexposed (x3, clipped):
  the share refused *with the right reason* (target >= 90 %);
- camera-like versions of real lesions (the lesion smaller in a wider frame of skin, mild defocus, uneven
  light, JPEG; `camera_glare` with a flash's reflection too): the share let through (they must pass: most people
  have no dermatoscope).

scikit-image is a development requirement (requirements-dev.txt); without it the non-lesion photo rows are empty.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from lesion_model.decode import ImageError, decode_image
from lesion_model.preprocessing import to_model_input
from lesion_model.quality import WORKING_SIZE, PhotoMeasures, QualityIssue, Thresholds, measure, run_checks
from lesion_model.scorer import MelanomaScorer
from training.camera import SIMULATIONS, CameraConditions, camera_like, smooth_noise

REPO = Path(__file__).resolve().parent.parent
SHARED_DERM = Path(os.environ.get("MELANOMA_SHARED_DERM", str(REPO.parent / "shared" / "derm")))

DEV, HELD_OUT = "development", "held-out"
# Photos in skimage.data (bundled with the package, no download) that are not skin lesions.
SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
    "checkerboard",
    "stereo_motorcycle",
)
DEV_SCENE_SEEDS = range(10)
HELD_OUT_SCENE_SEEDS = range(100, 110)


@dataclass(frozen=True)
class Sample:
    source: str  # ham10000, isic2017, ..., skimage, scenes
    part: str  # DEV or HELD_OUT
    variant: str  # as_is, blur4, blur6, dark, bright, camera
    name: str
    expected: tuple[str, ...]  # acceptable outcomes: "pass", or the issues that count as right


@dataclass(frozen=True)
class Measured:
    sample: Sample
    measures: PhotoMeasures
    distance: float | None = None  # the model's feature distance (`unfamiliar`), when collected with a model


# --- images -------------------------------------------------------------------------------------------------


def _hash_share(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _working(image: Image.Image) -> Image.Image:
    return image.convert("RGB").resize((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)


def _load(path: Path) -> Image.Image | None:
    try:
        return _working(decode_image(path, draft_size=(WORKING_SIZE, WORKING_SIZE)))
    except (ImageError, OSError):
        return None


def lesion_files(root: Path = SHARED_DERM) -> Iterator[tuple[str, str, Path]]:
    """(source, part, path) for every lesion image in ../shared/derm; HAM10000 is split by lesion id."""
    ham = root / "ham10000" / "HAM10000_metadata.csv"
    if ham.is_file():
        with ham.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                part = DEV if _hash_share(row["lesion_id"]) < 0.5 else HELD_OUT
                yield "ham10000", part, root / "ham10000" / "HAM10000_images" / f"{row['image_id']}.jpg"
    for source, folder in (("isic2017", "jpeg"), ("ph2", "jpeg"), ("isic-sample", "jpeg")):
        for path in sorted((root / source / folder).glob("*.jpg")) if (root / source / folder).is_dir() else []:
            yield source, HELD_OUT, path
    uploads = root / "uploads"
    for path in sorted(uploads.glob("*.jpg")) if uploads.is_dir() else []:
        yield "uploads", HELD_OUT, path


def skimage_photos() -> Iterator[tuple[str, str, Image.Image]]:
    """(part, name, image): the bundled scikit-image photos, alternately development and held out, each whole
    and as two crops (a crop of a photo is a photo too)."""
    try:
        from skimage import data  # noqa: PLC0415 - development requirement only
    except ImportError:
        return
    for index, name in enumerate(SKIMAGE_PHOTOS):
        loaded = getattr(data, name)()
        pixels = np.asarray(loaded[0] if isinstance(loaded, tuple) else loaded)  # stereo pairs: the left view
        if pixels.dtype != np.uint8:
            pixels = (255 * (pixels.astype(np.float64) / max(1.0, float(pixels.max())))).astype(np.uint8)
        image = Image.fromarray(pixels).convert("RGB")
        part = DEV if index % 2 == 0 else HELD_OUT
        yield part, name, image
        width, height = image.size
        side = min(width, height) // 2
        for corner, (left, top) in enumerate(((width // 4, height // 4), (0, height - side))):
            yield part, f"{name}-crop{corner}", image.crop((left, top, left + side, top + side))


def _solid(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    return np.broadcast_to(rng.uniform(0, 255, 3), (*xx.shape, 3))


def _gradient(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    start, stop = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return start + (stop - start) * xx[..., None]


def _noise(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    return rng.uniform(0, 255, (*xx.shape, 3))


def _skin_only(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Bare skin, no lesion."""
    red = rng.uniform(150, 235)
    tone = np.array([red, red * rng.uniform(0.72, 0.82), red * rng.uniform(0.6, 0.7)])
    texture = 1 + 0.04 * smooth_noise(rng, xx.shape[0], 8)
    return tone * texture[..., None] + rng.normal(0, 3, (*xx.shape, 3))


def _landscape(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Sky over green ground."""
    sky = np.array([110, 160, 230]) * rng.uniform(0.8, 1.1)
    ground = np.array([70, 130, 50]) * rng.uniform(0.7, 1.2)
    pixels = np.where((yy < rng.uniform(0.3, 0.7))[..., None], sky, ground)
    return pixels * (1 + 0.08 * smooth_noise(rng, xx.shape[0], 3))[..., None]


def _shapes(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Bright geometric shapes on a coloured background."""
    pixels = np.broadcast_to(rng.uniform(0, 255, 3), (*xx.shape, 3)).copy()
    for _ in range(6):
        cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
        pixels[(xx - cx) ** 2 + (yy - cy) ** 2 < radius**2] = rng.uniform(0, 255, 3)
    return pixels


def _stripes(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    period = rng.uniform(6, 30)
    return (127 + 120 * np.sin(2 * np.pi * xx * xx.shape[1] / period))[..., None] * np.ones(3)


def _text(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """A page of dark "text" lines."""
    size = xx.shape[0]
    pixels = np.full((size, size, 3), 240.0)
    for row in range(12, size - 8, 14):
        for start in range(8, size - 20, 24):
            if rng.random() < 0.8:
                pixels[row : row + 6, start : start + int(rng.uniform(8, 20))] = 30
    return pixels


def _blue_blob(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """A blue object on skin-coloured ground: a blob, but not a pigmented lesion."""
    pixels = np.broadcast_to(np.array([200.0, 160.0, 140.0]), (*xx.shape, 3)).copy()
    pixels[(xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.2**2] = (40, 80, 200)
    return pixels + rng.normal(0, 4, pixels.shape)


_SCENES: dict[str, Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]] = {
    "solid": _solid,
    "gradient": _gradient,
    "noise": _noise,
    "skin_only": _skin_only,
    "landscape": _landscape,
    "shapes": _shapes,
    "stripes": _stripes,
    "text": _text,
    "blue_blob": _blue_blob,
}


def scene(kind: str, seed: int) -> Image.Image:
    """A generated non-lesion picture of one kind: what people upload by mistake, or what breaks a naive check."""
    if kind not in _SCENES:
        raise ValueError(f"Unknown scene {kind!r}")
    yy, xx = np.mgrid[0:WORKING_SIZE, 0:WORKING_SIZE].astype(np.float32) / WORKING_SIZE
    pixels = _SCENES[kind](np.random.default_rng(seed), xx, yy)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


SCENE_KINDS = tuple(_SCENES)


# --- transforms: blurry, dark, overexposed, camera-like -----------------------------------------------------


def blurred(image: Image.Image, sigma: float) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(sigma))


def darkened(image: Image.Image, factor: float = 0.15) -> Image.Image:
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) * factor, 0, 255).astype(np.uint8))


def overexposed(image: Image.Image, gain: float = 3.0) -> Image.Image:
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) * gain, 0, 255).astype(np.uint8))


def _simulated(conditions: CameraConditions) -> Callable[[Image.Image, int], Image.Image]:
    return lambda image, seed: camera_like(image, seed=seed, conditions=conditions)


LESION_VARIANTS: dict[str, tuple[Callable[[Image.Image, int], Image.Image], tuple[str, ...]]] = {
    "blur4": (lambda image, _seed: blurred(image, 4.0), (QualityIssue.BLURRY.value,)),
    "blur6": (lambda image, _seed: blurred(image, 6.0), (QualityIssue.BLURRY.value,)),
    "dark": (lambda image, _seed: darkened(image), (QualityIssue.TOO_DARK.value,)),
    "bright": (
        lambda image, _seed: overexposed(image),
        (QualityIssue.TOO_BRIGHT.value, QualityIssue.GLARE.value),
    ),
    # Every simulated phone close-up must pass, a flash's reflection over 1 % of the frame (`camera_glare`)
    # included: the model scores those (its camera view has glare); only one that hides the lesion is `glare`.
    **{name: (_simulated(conditions), ("pass",)) for name, conditions in SIMULATIONS.items()},
}


# --- collecting and scoring ---------------------------------------------------------------------------------


def _non_lesions() -> Iterator[tuple[Sample, Image.Image]]:
    """The scikit-image photos, the generated scenes and a 1536 x 1 strip, each with what counts as right."""
    expected = (QualityIssue.NOT_A_LESION.value, "any_issue")
    for part, name, image in skimage_photos():
        yield Sample("skimage", part, "as_is", name, expected), image
    for part, seeds in ((DEV, DEV_SCENE_SEEDS), (HELD_OUT, HELD_OUT_SCENE_SEEDS)):
        for kind in SCENE_KINDS:
            for seed in seeds:
                yield Sample("scenes", part, kind, f"{kind}-{seed}", expected), scene(kind, seed)
    # A 1536 x 1 strip (issue 12): measured from its real shape, not a working-size square.
    strip = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1, 1536, 3), dtype=np.uint8))
    yield Sample("scenes", HELD_OUT, "strip", "strip-1536x1", ("not_a_lesion",)), strip


def _distance(scorer: MelanomaScorer | None, image: Image.Image) -> float | None:
    """The feature distance the worker computes after the pixel checks (classifier.inference), or None."""
    if scorer is None:
        return None
    square = image.convert("RGB").resize((scorer.input_size, scorer.input_size), Image.Resampling.BILINEAR)
    return scorer.analyse_array(to_model_input(square, scorer.normalisation)).distance


def collect(
    *, per_source: int | None = None, variants_per_source: int = 150, scorer: MelanomaScorer | None = None
) -> list[Measured]:
    """Measure every sample once; thresholds can then be tried on the stored measures without decoding again.
    With a scorer, each sample also gets the model's feature distance (one run of the graph each)."""
    measured: list[Measured] = []
    counts: Counter[tuple[str, str]] = Counter()

    def add(sample: Sample, image: Image.Image) -> None:
        measured.append(Measured(sample, measure(image), _distance(scorer, image)))

    for source, part, path in lesion_files():
        key = (source, part)
        if per_source is not None and counts[key] >= per_source:
            continue
        image = _load(path)
        if image is None:
            continue
        index = counts[key]
        counts[key] += 1
        add(Sample(source, part, "as_is", path.stem, ("pass",)), image)
        if index < variants_per_source:
            for variant, (transform, expected) in LESION_VARIANTS.items():
                add(Sample(source, part, variant, path.stem, expected), transform(image, index))
    for sample, image in _non_lesions():
        add(sample, image)
    return measured


def outcome(
    measures: PhotoMeasures,
    thresholds: Thresholds | None = None,
    *,
    distance: float | None = None,
    unfamiliar_above: float | None = None,
) -> str:
    """The check's answer as the worker gives it: the pixel checks, then (with a distance) `unfamiliar`."""
    issue = run_checks(measures, thresholds=thresholds)
    if issue is not None:
        return issue.value
    if distance is not None and unfamiliar_above is not None and distance > unfamiliar_above:
        return QualityIssue.UNFAMILIAR.value
    return "pass"


def is_right(sample: Sample, result: str) -> bool:
    if "any_issue" in sample.expected:
        return result != "pass"
    return result in sample.expected


def figures(
    measured: list[Measured], thresholds: Thresholds | None = None, *, unfamiliar_above: float | None = None
) -> dict[str, Any]:
    """The figures README and the model card report, per part, group and variant (with `unfamiliar_above`: the
    whole check, the feature distance included)."""
    groups: dict[tuple[str, str, str], list[tuple[Sample, str]]] = defaultdict(list)
    for item in measured:
        sample = item.sample
        group = "lesions" if sample.source not in {"skimage", "scenes"} else sample.source
        result = outcome(item.measures, thresholds, distance=item.distance, unfamiliar_above=unfamiliar_above)
        groups[(sample.part, group, sample.variant)].append((sample, result))
        if group == "lesions":
            groups[(sample.part, f"lesions:{sample.source}", sample.variant)].append((sample, result))
        if group == "scenes":
            groups[(sample.part, "scenes", "all")].append((sample, result))
        if group != "lesions":
            # The issue's target is on both together: real non-lesion photos "and your own generated scenes".
            groups[(sample.part, "non_lesions", "all")].append((sample, result))
    rows = []
    for (part, group, variant), results in sorted(groups.items()):
        right = sum(is_right(sample, result) for sample, result in results)
        refused = sum(result != "pass" for _, result in results)
        reasons = Counter(result for _, result in results if result != "pass")
        rows.append(
            {
                "part": part,
                "group": group,
                "variant": variant,
                "n": len(results),
                "refused": refused / len(results),
                "right": right / len(results),
                "reasons": dict(reasons.most_common()),
                "expected": "/".join(results[0][0].expected),
            }
        )
    return {"thresholds": (thresholds or Thresholds()).__dict__, "unfamiliar_above": unfamiliar_above, "rows": rows}


def photo_check_figures(*, per_source: int | None = None, model_dir: Path | None = None) -> dict[str, Any]:
    """Collect and score in one call: the figures as `--json` prints them (for the model card). With a model folder:
    the whole check as the worker runs it, its `unfamiliar` threshold (the card's) included."""
    scorer = MelanomaScorer(model_dir) if model_dir is not None else None
    threshold = scorer.familiarity.threshold if scorer is not None and scorer.familiarity is not None else None
    return figures(collect(per_source=per_source, scorer=scorer), unfamiliar_above=threshold)


# (card key, group, variant): the figures the issue sets targets for, as the card's photo_check section keeps them.
CARD_FIGURES = (
    ("lesions_refused", "lesions", "as_is", "refused"),
    ("non_lesions_refused", "non_lesions", "all", "refused"),
    ("skimage_refused", "skimage", "as_is", "refused"),
    ("scenes_refused", "scenes", "all", "refused"),
    ("blur4_right_reason", "lesions", "blur4", "right"),
    ("blur6_right_reason", "lesions", "blur6", "right"),
    ("dark_right_reason", "lesions", "dark", "right"),
    ("bright_right_reason", "lesions", "bright", "right"),
    ("camera_refused", "lesions", "camera", "refused"),
    ("camera_far_refused", "lesions", "camera_far", "refused"),
    ("camera_glare_refused", "lesions", "camera_glare", "refused"),
)


def card_section(result: dict[str, Any]) -> dict[str, Any]:
    """The model card's photo_check section: per part, the shares the issue sets targets for and how many images
    each is of, with the thresholds and the `unfamiliar` distance they were measured at."""
    rows = {(row["part"], row["group"], row["variant"]): row for row in result["rows"]}
    parts: dict[str, dict[str, Any]] = {}
    for part in (HELD_OUT, DEV):
        figures_of_part: dict[str, Any] = {}
        for key, group, variant, share in CARD_FIGURES:
            row = rows.get((part, group, variant))
            if row is not None:
                figures_of_part[key] = {"share": round(float(row[share]), 4), "images": row["n"]}
        parts[part] = figures_of_part
    return {
        "command": "python -m bench.photo_check --model-dir <this folder> --record",
        "thresholds": result["thresholds"],
        "unfamiliar_above": result["unfamiliar_above"],
        "held_out": parts[HELD_OUT],
        "development": parts[DEV],
    }


def record(model_dir: Path, result: dict[str, Any]) -> None:
    """Write card_section(result) into the model card (documentation: serving reads none of it)."""
    from lesion_model.model_card import read_model_card  # noqa: PLC0415
    from training.model_card import write_model_card  # noqa: PLC0415

    card = read_model_card(model_dir)
    card["photo_check"] = card_section(result)
    write_model_card(model_dir, card)


def print_table(result: dict[str, Any]) -> None:
    header = ("part", "group", "variant", "n", "refused", "right", "expected", "reasons")
    lines = [header]
    for row in result["rows"]:
        reasons = ", ".join(f"{name} {count}" for name, count in row["reasons"].items())
        lines.append(
            (
                row["part"],
                row["group"],
                row["variant"],
                str(row["n"]),
                f"{100 * row['refused']:.1f}%",
                f"{100 * row['right']:.1f}%",
                row["expected"],
                reasons,
            )
        )
    widths = [max(len(line[index]) for line in lines) for index in range(len(header) - 1)]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)) + "  " + line[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.photo_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--per-source", type=int, help="at most N lesion images per source and part")
    parser.add_argument("--model-dir", type=Path, help="also run the model's `unfamiliar` step (a model folder)")
    parser.add_argument("--record", action="store_true", help="with --model-dir: store the figures in its card")
    args = parser.parse_args(argv)
    if args.record and (args.model_dir is None or args.per_source is not None):
        parser.error("--record needs --model-dir, and every image (no --per-source)")
    if not SHARED_DERM.is_dir():
        print(f"note: {SHARED_DERM} not found: only non-lesion rows", file=sys.stderr)
    result = photo_check_figures(per_source=args.per_source, model_dir=args.model_dir)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    if args.record:
        record(args.model_dir, result)
        print(f"Recorded in {args.model_dir}/model_card.json as photo_check.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
