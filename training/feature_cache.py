"""Backbone features kept on disk between train_model runs (`--feature-cache DIR`).

Extracting every image and view (~14 ms each at 320 px on the 2-core machine) takes about a third of a
cross-source run (measured 2026-12-06 with the four views then shipped: ~8 of ~20 minutes); the head fits take the
rest. A run that changes only the head (C, source weighting, which of the cached views it trains on) can reuse the
features of an earlier one instead of extracting them again: 8.3 minutes from the cache with the same card figures.

A cached vector is only reused when everything that made it is unchanged. The run's settings that reach the
pixels (input size, weights, normalisation, seed of the random views, feature layers) and the source of every
module on that path, with the versions of the libraries that decode, resize and run the graph, form one
fingerprint: a folder of its own. Inside it, an image is named by its path as the dataset gives it (the random
views are seeded by that string: training.seeds), its size and its modification time, so an image replaced in
place is extracted again. Files are written whole or not at all (a temporary name, then an atomic rename), so an
interrupted run leaves no half vector that a later one would read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from lesion_model.preprocessing import Normalisation

# Modules whose code decides what a feature vector holds: decoding and normalisation, the views and their
# randomness, the pooled layers, the backbone's graph and weights.
_SOURCE_MODULES = (
    "lesion_model/preprocessing.py",
    "training/augment.py",
    "training/camera.py",
    "training/features.py",
    "training/seeds.py",
    "training/weights.py",
)
_LIBRARIES = ("numpy", "pillow", "ai-edge-litert", "tensorflow", "tensorflow-cpu", "keras")
_REPO_ROOT = Path(__file__).resolve().parent.parent


def fingerprint(
    *,
    image_size: int,
    weights: str | Path,
    normalisation: Normalisation,
    seed: int,
    layers: Sequence[tuple[str, str]],
    centre_fraction: float,
) -> str:
    """Hex digest of everything, besides the image itself, that a cached feature vector depends on."""
    weights_id = str(weights)
    if Path(weights_id).is_file():  # a user-supplied weights file: its contents, not its name
        weights_id = hashlib.sha256(Path(weights_id).read_bytes()).hexdigest()
    described = {
        "image_size": image_size,
        "weights": weights_id,
        "normalisation": asdict(normalisation),
        "seed": seed,
        "layers": [list(layer) for layer in layers],
        "centre_fraction": centre_fraction,
        "sources": {name: _sha256(_REPO_ROOT / name) for name in _SOURCE_MODULES},
        "libraries": {name: _version(name) for name in _LIBRARIES},
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:20]


class FeatureCache:
    """Feature vectors of (image, view) pairs under root/<fingerprint>/, one .npy file each."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.folder = Path(root) / fingerprint
        self.hits = 0
        self.stored = 0

    def get(self, path: Path, view: str) -> np.ndarray | None:
        """The cached vector, or None when it was never stored or the image changed since."""
        file = self._file(path, view)
        if file is None or not file.is_file():
            return None
        try:
            vector = np.load(file, allow_pickle=False)
        except (OSError, ValueError):  # unreadable (a disk error, a foreign file): extract it again
            return None
        self.hits += 1
        return vector

    def put(self, path: Path, view: str, vector: np.ndarray) -> None:
        file = self._file(path, view)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=file.parent, suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, np.asarray(vector, dtype=np.float32), allow_pickle=False)
            os.replace(partial, file)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        self.stored += 1

    def _file(self, path: Path, view: str) -> Path | None:
        try:
            stat = Path(path).stat()
        except OSError:
            return None  # nothing to key it on; the extractor reports a missing image itself
        key = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{view}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.npy"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
