"""Helpers shared by the page, account, admin and browser tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from bench.synthetic import lesion_jpeg
from tests.factories import TEST_PASSWORD as PASSWORD

__all__ = ["PASSWORD", "lesion_jpeg", "stored_files"]


def stored_files(media_root: Path) -> list[Path]:
    return sorted(path for path in Path(media_root).rglob("*") if path.is_file())
