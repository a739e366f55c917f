"""Hand-made dermoscopic features (the ABCD rule's shape and colour measures) for every image and training view.

    python -m bench.lesion_features --data ../shared/derm/ham10000 --data ../shared/derm/isic2017:train,valid \\
        --data ../shared/derm/ph2 --image-size 320 --out var/lesion-features.npz
    python -m bench.head_variants --feature-cache DIR --extra-features var/lesion-features.npz ... extra late:0.5

Dermatologists' checklists read asymmetry, border, colours and structure, and a clinic's camera moves those less,
perhaps, than it moves a network's features: a question worth measuring for issue 10. Each image is decoded as
served, put through the served half-strength colour constancy, and its lesion found by Otsu's split of the green +
blue channel (lesions are darker and browner than skin; against PH2's expert masks, median IoU 0.88 on every tenth
image). Then per image and view, the measures in FEATURE_NAMES. Views are drawn as training.features.extract draws
them (the same seeds), so `head_variants --extra-features` can set these beside the cached network features.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SIZE = 128  # the mask and measures are read at this side: a lesion's shape and colours need no more
# Dermoscopic colours in CIELAB (after Seidenari et al.'s colour classes), and skin-pink, so that skin pixels left
# inside the mask are not counted as one of the others.
COLOURS = {
    "white": (85.0, 0.0, 5.0),
    "red": (50.0, 45.0, 25.0),
    "light_brown": (60.0, 15.0, 30.0),
    "dark_brown": (35.0, 15.0, 20.0),
    "blue_grey": (45.0, -5.0, -10.0),
    "black": (12.0, 2.0, 2.0),
    "skin": (70.0, 12.0, 15.0),
}
LESION_COLOURS = tuple(name for name in COLOURS if name != "skin")
FEATURE_NAMES = (
    "area", "compactness", "eccentricity", "solidity", "asymmetry_major", "asymmetry_minor",
    "lesion_L", "lesion_a", "lesion_b", "lesion_L_sd", "lesion_a_sd", "lesion_b_sd", "lesion_L_p10", "lesion_L_p90",
    "skin_L", "skin_a", "skin_b", "contrast_L", "contrast_a", "contrast_b",
    *(f"share_{name}" for name in LESION_COLOURS), "colour_count", "border_sharpness", "texture",
    "core_minus_rim_L", "core_minus_rim_a", "core_minus_rim_b",
)  # fmt: skip
# The shipped training views and the fixed simulation the folds score as phone close-ups.
DEFAULT_VIEWS = ("identity", "shades_of_gray", "flip_horizontal", "camera", "rotate_180", "simulated_camera")

_GRID = (np.mgrid[0:SIZE, 0:SIZE] + 0.5) / SIZE - 0.5
_RADIUS = np.hypot(_GRID[0], _GRID[1])
_FALLBACK = _RADIUS < 0.25  # no lesion found: the middle of the frame, where a dermoscopic lesion sits


def lesion_mask(rgb: np.ndarray) -> np.ndarray:
    """The lesion in a SIZE x SIZE x 3 float image: Otsu's darker class of green + blue, the connected part that
    lies most in the middle, holes filled. Clipped glare and a dermatoscope's dark corners are left out of the
    split."""
    from scipy import ndimage  # noqa: PLC0415
    from skimage.filters import threshold_otsu  # noqa: PLC0415

    channel = 0.5 * (rgb[..., 1] + rgb[..., 2])
    usable = (rgb.min(axis=2) < 250) & ~((_RADIUS > 0.5) & (channel < 0.5 * np.median(channel)))
    values = channel[usable]
    if values.size < 30 or values.min() == values.max():
        return _FALLBACK
    mask = ndimage.binary_opening(usable & (channel <= threshold_otsu(values)), iterations=2)
    labels, count = ndimage.label(mask)
    if count == 0:
        return _FALLBACK
    centrality = ndimage.sum(1.0 - np.clip(_RADIUS, 0.0, 0.7), labels, index=np.arange(1, count + 1))
    mask = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(centrality)))
    return mask if mask.sum() >= 30 else _FALLBACK


def _asymmetry(mask: np.ndarray, centroid: tuple[float, float], orientation: float) -> tuple[float, float]:
    """The share of the lesion that its mirror image about each principal axis does not cover (0: symmetric)."""
    cos, sin = np.cos(orientation), np.sin(orientation)
    rotation = np.array([[cos, -sin], [sin, cos]])
    along_axes = (np.argwhere(mask) - centroid) @ rotation
    shares = []
    for axis in (0, 1):
        mirrored = along_axes.copy()
        mirrored[:, axis] *= -1
        back = np.rint(mirrored @ rotation.T + centroid).astype(int)
        inside = (back >= 0).all(axis=1) & (back < mask.shape[0]).all(axis=1)
        covered = np.zeros(len(back), dtype=bool)
        covered[inside] = mask[back[inside, 0], back[inside, 1]]
        shares.append(1.0 - float(covered.mean()))
    return shares[0], shares[1]


def served_colour_constancy() -> float | None:
    """The shades-of-gray strength train_model's recipe serves with (None: no colour constancy)."""
    from training.train import TrainConfig, serving_normalisation  # noqa: PLC0415

    normalisation = serving_normalisation(TrainConfig(data_dirs=[]))
    return normalisation.colour_constancy_strength if normalisation.colour_constancy == "shades_of_gray" else None


def measure(pixels: np.ndarray, colour_constancy: float | None = None) -> np.ndarray:
    """FEATURE_NAMES for one HxWx3 uint8 image, as served (before the served colour constancy).

    `colour_constancy`: the shades-of-gray strength to apply first (default: served_colour_constancy())."""
    from PIL import Image  # noqa: PLC0415
    from scipy import ndimage  # noqa: PLC0415
    from skimage import color  # noqa: PLC0415
    from skimage.measure import regionprops  # noqa: PLC0415

    from lesion_model.preprocessing import shades_of_gray  # noqa: PLC0415

    strength = served_colour_constancy() if colour_constancy is None else colour_constancy
    if strength is not None:
        pixels = np.rint(np.clip(shades_of_gray(pixels.astype(np.float32), strength=strength), 0, 255))
    small = np.asarray(Image.fromarray(pixels.astype(np.uint8)).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    mask = lesion_mask(small.astype(np.float32))
    lab = color.rgb2lab(small)
    lesion, skin = lab[mask], lab[~mask] if (~mask).sum() >= 10 else lab.reshape(-1, 3)
    region = regionprops(mask.astype(np.uint8))[0]
    asymmetry = _asymmetry(mask, region.centroid, region.orientation)

    nearest = np.argmin(np.linalg.norm(lesion[:, None, :] - np.array(list(COLOURS.values()))[None], axis=2), axis=1)
    shares = np.bincount(nearest, minlength=len(COLOURS))[: len(LESION_COLOURS)] / len(nearest)
    # A melanoma's border ends abruptly; a nevus fades into skin. The lightness gradient on the mask's edge, per
    # unit of lesion-skin contrast, so that a darker lesion does not read as a sharper one.
    gradient = np.hypot(*np.gradient(lab[..., 0]))
    edge = mask ^ ndimage.binary_erosion(mask)
    contrast = skin.mean(axis=0) - lesion.mean(axis=0)
    sharpness = gradient[edge].mean() / (abs(contrast[0]) + 1.0) if edge.any() else 0.0
    # Inhomogeneity: the lesion's inner half (by distance from its border) against its outer half.
    depth = ndimage.distance_transform_edt(mask)
    core = mask & (depth > np.median(depth[mask]))
    rim = mask & ~core
    core_minus_rim = lab[core].mean(axis=0) - lab[rim].mean(axis=0) if core.any() and rim.any() else np.zeros(3)
    return np.concatenate(
        [
            [mask.mean(), region.perimeter**2 / (4 * np.pi * region.area), region.eccentricity, region.solidity],
            asymmetry, lesion.mean(axis=0), lesion.std(axis=0), np.percentile(lesion[:, 0], [10, 90]),
            skin.mean(axis=0), -contrast, shares, [float((shares > 0.05).sum()), sharpness],
            [float(np.abs(ndimage.laplace(lab[..., 0])[mask]).mean())], core_minus_rim,
        ]
    ).astype(np.float32)  # fmt: skip


def image_features(path: Path, image_size: int, views: Sequence[str], seed: int = 0) -> np.ndarray:
    """(len(views), len(FEATURE_NAMES)) for one image, each view drawn as training.features.extract draws it:
    a generator seeded by the image's path, shared by the views of one call; "simulated_camera", which
    train_model extracts in a call of its own, from a fresh one."""
    from lesion_model.preprocessing import load_image  # noqa: PLC0415
    from training.features import apply_view  # noqa: PLC0415
    from training.seeds import image_seed  # noqa: PLC0415

    pixels = np.asarray(load_image(path, image_size))
    shared = np.random.default_rng(image_seed(path, seed))
    strength = served_colour_constancy()
    rows = []
    for view in views:
        rng = np.random.default_rng(image_seed(path, seed)) if view == "simulated_camera" else shared
        rows.append(measure(apply_view(pixels, view, rng), strength))
    return np.stack(rows)


def _one(job: tuple[Path, int, tuple[str, ...]]) -> np.ndarray:
    return image_features(*job)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lesion_features", description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", required=True, metavar="DIR[:PARTS]")
    parser.add_argument(
        "--image-size", type=_positive, default=320, help="decoded as the model is served (default 320)"
    )
    parser.add_argument("--views", default=",".join(DEFAULT_VIEWS), help="default: %(default)s")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.npz")
    parser.add_argument("--workers", type=_positive, default=1, help="processes (default 1)")
    args = parser.parse_args(argv)

    from training.datasets import DataFolder, DatasetError, load_datasets  # noqa: PLC0415
    from training.features import VIEWS  # noqa: PLC0415

    views = tuple(view.strip() for view in args.views.split(",") if view.strip())
    if unknown := [view for view in views if view not in VIEWS]:
        parser.error(f"unknown view {', '.join(unknown)}: use {', '.join(VIEWS)}")
    try:
        samples = load_datasets([DataFolder.parse(text) for text in args.data]).samples
    except DatasetError as error:
        print(str(error), file=sys.stderr)
        return 2
    start = time.monotonic()
    jobs = [(sample.path, args.image_size, views) for sample in samples]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        features = np.stack(list(pool.map(_one, jobs, chunksize=16)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.out, paths=np.array([str(sample.path) for sample in samples]), views=np.array(views),
        names=np.array(FEATURE_NAMES), features=features,
    )  # fmt: skip
    seconds = time.monotonic() - start
    print(f"{len(samples)} images x {len(views)} views in {seconds:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
