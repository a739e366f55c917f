"""Helpers shared by the page, account, admin and browser tests (fixtures live in conftest.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

PASSWORD = "correct-horse-battery-staple-42"


def lesion_jpeg(*, width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A photo-like JPEG: skin-toned noise with a dark, irregular blob in the middle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    skin = np.array([214, 168, 140], dtype=np.float32)
    mole = np.array([92, 58, 44], dtype=np.float32)
    radius = min(width, height) * (0.25 + 0.05 * np.sin(np.arctan2(yy - height / 2, xx - width / 2) * 5))
    inside = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) < radius**2
    pixels = np.where(inside[..., None], mole, skin) + rng.normal(0, 8, size=(height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def stored_files(media_root: Path) -> list[Path]:
    return sorted(path for path in Path(media_root).rglob("*") if path.is_file())
