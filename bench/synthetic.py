"""Generated stand-ins for real data, shared by bench/ and tests/: one synthetic lesion photo, and model folders
(model.tflite + model_card.json) for when no trained model is shipped.

The image half needs only NumPy and Pillow. The model half needs TensorFlow, which must never load into a
process that measures serving or runs a Celery worker (a forked worker inheriting TensorFlow state hangs), so
callers use `build_model_dir_in_subprocess`, which runs this module as a program:

    python -m bench.synthetic DIR SIZE [--architecture tiny|mobilenetv2] [--version V] [--threshold T]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SKIN = np.array([214, 168, 140], dtype=np.float32)
MOLE = np.array([92, 58, 44], dtype=np.float32)

# --- images -----------------------------------------------------------------------------------------


def lesion_pixels(width: int = 320, height: int = 240, seed: int = 0, *, darkness: float = 0.0) -> np.ndarray:
    """Skin-toned sensor noise with a dark, irregular mole in the middle: photo-like (JPEG sizes and decoding
    behave as with real photos) and different for every seed. `darkness` (0..1) dims the whole picture, so
    that a labelled set can have a colour difference for a tiny model to learn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = min(width, height) * (0.25 + 0.05 * np.sin(np.arctan2(yy - height / 2, xx - width / 2) * 5))
    inside = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) < radius**2
    pixels = np.where(inside[..., None], MOLE, SKIN) + rng.normal(0, 8, size=(height, width, 3))
    return np.clip(pixels * (1.0 - darkness), 0, 255).astype(np.uint8)


def encode_image(image: Image.Image | np.ndarray, fmt: str = "JPEG", **params) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def lesion_jpeg(width: int = 320, height: int = 240, *, seed: int = 0, quality: int = 90) -> bytes:
    return encode_image(lesion_pixels(width, height, seed), "JPEG", quality=quality)


# --- model folders ----------------------------------------------------------------------------------

ARCHITECTURES = ("tiny", "mobilenetv2")


def build_model_dir(
    model_dir: Path, *, size: int, architecture: str = "tiny", version: str | None = None, threshold: float = 0.5
) -> Path:
    """Export a model folder. Imports TensorFlow: call it through `build_model_dir_in_subprocess`.

    tiny: global average pooling + a fixed 2-way softmax whose melanoma logit is -2 x (sum of the normalised
    channel means), so dark pictures score high and pale skin low (it separates `lesion_pixels(darkness=...)`
    sets perfectly). mobilenetv2: the shipped recipe's architecture with random weights (speed does not
    depend on the weights).
    """
    import keras  # noqa: PLC0415 - TensorFlow only in this process

    from lesion_model.preprocessing import Normalisation  # noqa: PLC0415
    from training.export import export_tflite  # noqa: PLC0415
    from training.model_card import write_model_card  # noqa: PLC0415

    if architecture == "tiny":
        inputs = keras.Input((size, size, 3))
        outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
        model = keras.Model(inputs, outputs)
        model.layers[-1].set_weights([np.array([[0.0, -2.0]] * 3, dtype=np.float32), np.zeros(2, dtype=np.float32)])
        note = "synthetic: dark pictures score high (tests)"
    elif architecture == "mobilenetv2":
        from training.model import build_model  # noqa: PLC0415

        model = build_model(image_size=size, n_classes=2, weights=None).model
        note = "architecture only, random weights: built by bench/ because no trained model was shipped"
    else:
        raise ValueError(f"Unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")
    export_tflite(model, model_dir, image_size=size)
    card = {
        "version": version or f"synthetic-{architecture}-{size}",
        "created": "1970-01-01T00:00:00+00:00",
        "input_size": size,
        "threshold": threshold,
        "normalisation": Normalisation().to_card(),
        "class_names": ["not_melanoma", "melanoma"],
        "melanoma_index": 1,
        "metrics": {},
        "note": note,
    }
    write_model_card(model_dir, card)
    return model_dir


def build_model_dir_in_subprocess(
    model_dir: Path, *, size: int, architecture: str = "tiny", version: str | None = None, threshold: float = 0.5
) -> Path:
    """`build_model_dir` in a fresh interpreter, so that TensorFlow never loads into the calling process.
    Raises subprocess.CalledProcessError (with the child's stderr) when the export fails."""
    command = [sys.executable, "-m", "bench.synthetic", str(model_dir), str(size), "--architecture", architecture]
    command += ["--threshold", str(threshold)] + (["--version", version] if version else [])
    subprocess.run(  # noqa: S603 - our own interpreter and module
        command,
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)},
        timeout=900,
    )
    return model_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.synthetic", description=build_model_dir.__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("size", type=int)
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="tiny")
    parser.add_argument("--version")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args(argv)
    build_model_dir(
        args.model_dir, size=args.size, architecture=args.architecture, version=args.version, threshold=args.threshold
    )


if __name__ == "__main__":
    main()
