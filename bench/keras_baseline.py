"""The seed's way of serving, for comparison: a Keras MobileNetV2 loaded in process, PIL resize, and
`model.predict` on one image at a time.

Run only as a subprocess (`python -m bench.keras_baseline ...`) so that TensorFlow never enters the process
that measures our own path. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

PROCESS_STARTED = time.perf_counter()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _load_model(model_dir: Path, size: int, n_classes: int):
    """model.keras from the model folder when it ships one, else the same architecture from training/."""
    keras_file = model_dir / "model.keras"
    if keras_file.is_file():
        import keras  # noqa: PLC0415

        try:
            return keras.models.load_model(keras_file, compile=False), f"{keras_file.name} from the model folder"
        except Exception as error:  # noqa: BLE001 - fall back to building the same graph
            print(f"could not load {keras_file}: {error}; building the architecture instead", file=sys.stderr)
    from training.model import build_model  # noqa: PLC0415

    return build_model(image_size=size, n_classes=n_classes, weights=None).model, "training.model.build_model"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--image", action="append", required=True, help="LABEL=PATH, repeatable")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import numpy as np  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    card = json.loads((args.model_dir / "model_card.json").read_text(encoding="utf-8"))
    size = int(card["input_size"])
    n_classes = len(card.get("class_names") or ["not_melanoma", "melanoma"])
    model, origin = _load_model(args.model_dir, size, n_classes)

    def seed_predict(data: bytes) -> float:
        image = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size))
        pixels = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
        output = model.predict(pixels[None], verbose=0)
        # A graph with named outputs (heatmap, differential, ...) answers a dict; the verdict is "probabilities".
        probabilities = output["probabilities"] if isinstance(output, dict) else output
        return float(probabilities[0][-1])

    results: dict[str, object] = {"model": origin, "input_size": size, "images": {}}
    first_prediction_s = None
    for item in args.image:
        label, path = item.split("=", 1)
        data = Path(path).read_bytes()
        for _ in range(args.warmup):
            seed_predict(data)
            if first_prediction_s is None:
                first_prediction_s = time.perf_counter() - PROCESS_STARTED
        timings = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            seed_predict(data)
            timings.append((time.perf_counter() - started) * 1000.0)
        # The model alone, on an already-decoded input, to show where the seed's time goes.
        pixels = np.zeros((1, size, size, 3), dtype=np.float32)
        model_only = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            model.predict(pixels, verbose=0)
            model_only.append((time.perf_counter() - started) * 1000.0)
        results["images"][label] = {"ms": timings, "model_only_ms": model_only}
    results["rss_mib"] = _rss_mib()
    results["start_to_first_prediction_s"] = first_prediction_s
    print(json.dumps(results))


if __name__ == "__main__":
    main()
