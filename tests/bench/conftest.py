"""Two tiny generated sources and a feature cache filled from them, for the bench tools that read a cache."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest

from tests.derm_fixtures import make_ham10000, make_isic2017


@pytest.fixture
def two_sources(tmp_path) -> list[str]:
    """The --data and split arguments every run on these two sources shares."""
    ham = make_ham10000(tmp_path / "ham", n_lesions=15, images_per_lesion=1)
    isic = make_isic2017(tmp_path / "isic2017", parts={"train": 12, "valid": 6})
    return ["--data", str(ham), "--data", str(isic), "--image-size", "64", "--val-fraction", "0.34"]


@pytest.fixture
def filled_cache(two_sources, tmp_path, db) -> tuple[str, dict[str, Any]]:
    """(cache folder, card) of `train_model --cross-source --feature-cache` on the two sources."""
    pytest.importorskip("tensorflow")
    from django.core.management import call_command

    cache = str(tmp_path / "features")
    call_command(
        "train_model", *two_sources, "--cross-source", "--feature-cache", cache, "--out", str(tmp_path / "models"),
        "--version", "filled", stdout=StringIO(),
    )  # fmt: skip
    return cache, json.loads((tmp_path / "models" / "filled" / "model_card.json").read_text())
