"""Seeds tied to an image, so a random view or simulation of it is the same in every run that asks for it."""

from __future__ import annotations

import zlib
from pathlib import Path


def image_seed(path: Path, seed: int) -> int:
    """A 32-bit seed from the image's path and a run's seed (CRC-32: stable across processes, unlike hash()).

    The path as the dataset gives it, i.e. as named on the command line: `make train` and the README's commands
    name ../shared/derm/..., so their views and simulations are the same on every machine; naming the same folder
    by another path draws other (equally random) ones."""
    return zlib.crc32(str(path).encode()) ^ (seed & 0xFFFFFFFF)
