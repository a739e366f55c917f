"""`python -m bench.build_model DIR SIZE`: an untrained MobileNetV2 of the real architecture, exported to LiteRT
with its model card, for timing when no trained model is shipped (speed does not depend on the weights).

Run only as a subprocess of the benchmark (bench/common.py): TensorFlow never enters the measuring process.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lesion_model.preprocessing import Normalisation
from training.export import export_tflite
from training.model import build_model
from training.model_card import write_model_card


def main(argv: list[str]) -> None:
    model_dir, size = Path(argv[0]), int(argv[1])
    classifier = build_model(image_size=size, n_classes=2, weights=None)
    export_tflite(classifier.model, model_dir, image_size=size)
    card = {
        "version": f"bench-mobilenetv2-{size}-untrained",
        "input_size": size,
        "threshold": 0.5,
        "normalisation": Normalisation().to_card(),
        "metrics": {},
        "class_names": ["not_melanoma", "melanoma"],
        "melanoma_index": 1,
        "created": "1970-01-01T00:00:00+00:00",
        "note": "architecture only, random weights: built by bench/ because no trained model was shipped",
    }
    write_model_card(model_dir, card)


if __name__ == "__main__":
    main(sys.argv[1:])
