"""Finding image files below folders named on the command line (`predict_images`) or in a dataset."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from lesion_model.decode import AnimatedImage, ImageError, ImageTooLarge, open_image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def collect_image_files(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Files named directly, plus every image below named folders (recognised by content, not by name).

    Inside a folder, a file that is neither an image by content nor by suffix (a CSV, a README) is left out;
    a file with an image suffix that does not open is kept, so scoring reports it as bad.
    Returns (files to score, paths that do not exist).
    """
    files: list[Path] = []
    missing: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        path = Path(path)
        if path.is_dir():
            candidates = [found for found in _walk_files(path) if _looks_like_image(found)]
        elif path.exists():
            candidates = [path]
        else:
            missing.append(path)
            continue
        for candidate in candidates:
            if candidate.resolve() not in seen:
                seen.add(candidate.resolve())
                files.append(candidate)
    return files, missing


def _walk_files(folder: Path) -> Iterator[Path]:
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        yield from (Path(directory) / name for name in sorted(names) if not name.startswith("."))


def _looks_like_image(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        open_image(path).close()  # reads the header only
    except (AnimatedImage, ImageTooLarge):
        return True  # an image all the same: scoring reports why it cannot be used
    except ImageError:
        return False
    return True
