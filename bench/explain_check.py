"""Serving cost of the shipped graph's extra outputs, and how the `unfamiliar` distance splits images.

    python -m bench.explain_check [--model-dir models/V] [--repeats 40] [--json]

Speed: per 224 px JPEG, the median of `repeats` runs of what the worker does after the upload (decode, photo
check, preprocessing, the graph with every output, the heatmap overlay PNG) against the graph alone.
Familiarity: the share of images over the card's threshold for lesions the model never trained on
(isic-sample, uploads, the ISIC 2017 test part, when ../shared/derm has them) and for scikit-image's photos.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lesion_model.decode import decode_image
from lesion_model.explain import heatmap_png
from lesion_model.preprocessing import preprocess_image, to_model_input
from lesion_model.quality import WORKING_SIZE, check_photo
from lesion_model.scorer import MelanomaScorer

ROOT = Path(__file__).resolve().parents[1]
DERM = ROOT.parent / "shared" / "derm"
HELD_OUT = {"isic-sample": DERM / "isic-sample", "uploads": DERM / "uploads", "isic2017-test": DERM / "isic2017"}
SKIMAGE_PHOTOS = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
    "cat", "page", "text", "moon", "horse", "brick", "grass", "gravel",
)  # fmt: skip


def _newest_model() -> Path:
    return max((ROOT / "models").glob("*/model_card.json"), key=lambda p: json.loads(p.read_text())["created"]).parent


def speed(scorer: MelanomaScorer, jpeg: bytes, repeats: int) -> dict[str, float]:
    full: list[float] = []
    graph: list[float] = []
    size = scorer.input_size  # as the worker (classifier.inference): decode once, check, squash to the model's size
    square = Image.open(io.BytesIO(jpeg)).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    model_input = to_model_input(square, scorer.normalisation)
    for _ in range(3):
        scorer.analyse_array(model_input)
    for _ in range(repeats):
        started = time.perf_counter()
        decoded = decode_image(jpeg, draft_size=(max(WORKING_SIZE, size),) * 2)
        check_photo(decoded)
        squashed = decoded.resize((size, size), Image.Resampling.BILINEAR)
        analysis = scorer.analyse_array(to_model_input(squashed, scorer.normalisation))
        if analysis.heatmap is not None:
            heatmap_png(analysis.heatmap, (112, 84))
        full.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        scorer.analyse_array(model_input)
        graph.append((time.perf_counter() - started) * 1000)
    return {"serve_ms_median": round(statistics.median(full), 1), "graph_ms_median": round(statistics.median(graph), 1)}


def _images(folder: Path, limit: int, subset: str | None = None) -> list[Path]:
    if not folder.is_dir():
        return []
    paths = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"} and "mask" not in str(p)
    )
    if subset:  # the ISIC 2017 test part: names from its split column
        lines = (folder / "train.csv").read_text().splitlines()[1:]
        wanted = {line.split(",")[0] for line in lines if line.rstrip().endswith(f",{subset}")}
        paths = [p for p in paths if p.stem in wanted]
    step = max(1, len(paths) // limit)
    return paths[::step][:limit]


def familiarity(scorer: MelanomaScorer, limit: int) -> dict[str, Any]:
    if scorer.familiarity is None:
        return {}
    threshold = scorer.familiarity.threshold

    def share(sources: list[Any]) -> dict[str, Any]:
        distances = [
            scorer.analyse_array(
                preprocess_image(s, size=scorer.input_size, normalisation=scorer.normalisation)
            ).distance
            for s in sources
        ]
        values = np.asarray([d for d in distances if d is not None])
        return {
            "images": int(values.size),
            "unfamiliar": round(float((values > threshold).mean()), 3) if values.size else None,
        }

    out: dict[str, Any] = {"threshold": threshold}
    for name, folder in HELD_OUT.items():
        paths = _images(folder, limit, "test" if name == "isic2017-test" else None)
        if paths:
            out[name] = share(paths)
    try:
        from skimage import data  # noqa: PLC0415
    except ImportError:
        return out
    photos = []
    for name in SKIMAGE_PHOTOS:
        try:
            pixels = np.asarray(getattr(data, name)())
        except (AttributeError, OSError, ValueError):  # not shipped with this version (some need a download)
            continue
        if pixels.dtype != np.uint8:  # boolean or float images: to 0..255
            values = pixels.astype(np.float64)
            pixels = (255 * (values - values.min()) / max(1e-9, float(np.ptp(values)))).astype(np.uint8)
        image = Image.fromarray(pixels if pixels.ndim == 3 else np.stack([pixels] * 3, axis=-1)).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        photos.append(buffer.getvalue())
    out["skimage"] = share(photos)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--limit", type=int, default=150, help="images per held-out folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scorer = MelanomaScorer(args.model_dir or _newest_model())
    from bench.synthetic import lesion_pixels  # noqa: PLC0415

    buffer = io.BytesIO()
    Image.fromarray(lesion_pixels(224, 224, 1)).save(buffer, format="JPEG", quality=92)
    figures = {"version": scorer.version, **speed(scorer, buffer.getvalue(), args.repeats)}
    figures["familiarity"] = familiarity(scorer, args.limit)
    print(json.dumps(figures, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
