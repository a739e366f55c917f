"""Reading the model card: the JSON file that travels with every trained model folder.

Serving reads only this file and `model.tflite`, so everything needed to score an image (input size,
normalisation, threshold) must be here. Training writes it (training/model_card.py).
"""

import json
from pathlib import Path
from typing import Any

CARD_FILENAME = "model_card.json"
TFLITE_FILENAME = "model.tflite"
REQUIRED_KEYS = ("version", "input_size", "threshold", "normalisation", "metrics")


class ModelCardError(ValueError):
    """A model folder that cannot be served: missing files, an incomplete card or an unloadable model file."""


def read_model_card(model_dir: Path) -> dict[str, Any]:
    model_dir = Path(model_dir)
    card_path = model_dir / CARD_FILENAME
    if not model_dir.is_dir():
        raise ModelCardError(f"Model folder {model_dir} does not exist.")
    if not card_path.is_file():
        raise ModelCardError(f"Model folder {model_dir} has no {CARD_FILENAME}.")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelCardError(f"{card_path} is not valid JSON: {error}") from error
    if not isinstance(card, dict):
        raise ModelCardError(f"{card_path} must hold a JSON object.")
    missing = [key for key in REQUIRED_KEYS if key not in card]
    if missing:
        raise ModelCardError(f"{card_path} lacks {', '.join(missing)}.")
    if not (model_dir / TFLITE_FILENAME).is_file():
        raise ModelCardError(f"Model folder {model_dir} has no {TFLITE_FILENAME}.")
    return card
