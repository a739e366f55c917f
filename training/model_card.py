"""Writing the model card. Reading it is serving's job: lesion_model/model_card.py (file names, required keys)."""

import json
from pathlib import Path
from typing import Any

from lesion_model.model_card import CARD_FILENAME


def write_model_card(model_dir: Path, card: dict[str, Any]) -> Path:
    card_path = Path(model_dir) / CARD_FILENAME
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return card_path
