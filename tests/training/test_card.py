"""The typed model card reproduces the cards training writes, the shipped one byte for byte, and the card of the
previous shipped model (HAM10000 only, no calibration; kept under tests/training/data) too."""

import json
from pathlib import Path

import pytest

from lesion_model.model_card import CARD_FILENAME, read_model_card
from training.card import CardMetrics, ModelCard, SourceMetrics, threshold_rule

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "mnv2-320-centre40-20261207"
OLD_CARD = Path(__file__).resolve().parent / "data" / "card_mnv2-224-20261126.json"


@pytest.fixture
def shipped_card() -> dict:
    return json.loads(OLD_CARD.read_text(encoding="utf-8"))


def test_the_shipped_card_round_trips_byte_for_byte(tmp_path):
    card = ModelCard.from_dict(read_model_card(SHIPPED))

    assert card.to_dict() == json.loads((SHIPPED / CARD_FILENAME).read_text(encoding="utf-8"))
    card.write(tmp_path)
    assert (tmp_path / CARD_FILENAME).read_bytes() == (SHIPPED / CARD_FILENAME).read_bytes()


def test_the_previous_card_round_trips_byte_for_byte(tmp_path):
    card = ModelCard.from_dict(json.loads(OLD_CARD.read_text(encoding="utf-8")))
    card.write(tmp_path)
    assert (tmp_path / CARD_FILENAME).read_bytes() == OLD_CARD.read_bytes()
    assert card.calibration is None
    assert card.risk_levels is None


def test_the_shipped_card_holds_issue_10s_tables():
    card = ModelCard.from_dict(read_model_card(SHIPPED))
    assert set(card.metrics.cross_source) == {"ham10000", "isic2017", "ph2"}
    assert set(card.metrics.validation_by_source) == {"ham10000", "isic2017", "ph2"}
    assert set(card.metrics.test) == {"isic2017-test", "isic-sample"}
    assert card.data.sources["isic2017"].parts == ["train", "valid"]
    assert card.data.source_weighting == "sqrt_source_class"
    assert card.risk_levels["boundaries"]["moderate_from"] == card.threshold
    assert card.threshold == min(card.threshold_candidates.values())
    assert all("see source" not in licence for licence in card.licences.data)


def test_typed_fields_read_from_the_shipped_card(shipped_card):
    card = ModelCard.from_dict(shipped_card)

    assert card.threshold == shipped_card["threshold"] == card.metrics.validation.threshold
    assert card.metrics.external["isic-sample"].skipped_images == 0
    assert card.metrics.validation.skipped_images is None
    assert card.data.sources["ham10000"].melanoma == 491
    assert card.normalisation.colour_constancy == "shades_of_gray"
    assert card.recipe["head"] == "logistic"


def test_serving_keys_are_written(shipped_card):
    card = ModelCard.from_dict(shipped_card).to_dict()
    # What lesion_model.scorer and classifier/ read from a card.
    for key in ("version", "input_size", "threshold", "normalisation", "metrics", "melanoma_index", "created"):
        assert key in card
    assert card["melanoma_index"] == card["melanoma_indices"][0]
    assert {"folder", "layout"} <= set(card["data"]["sources"]["ham10000"])
    assert "split" in card["data"]


def test_no_external_key_without_external_folders(shipped_card):
    validation = SourceMetrics.from_dict(shipped_card["metrics"]["validation"])
    assert CardMetrics(validation=validation).to_dict() == {"validation": shipped_card["metrics"]["validation"]}


def test_an_unknown_or_missing_field_is_an_error(shipped_card):
    with pytest.raises(TypeError, match="surprise"):
        ModelCard.from_dict({**shipped_card, "surprise": 1})
    with pytest.raises(TypeError):
        ModelCard.from_dict({key: value for key, value in shipped_card.items() if key != "architecture"})
    with pytest.raises(TypeError):
        SourceMetrics.from_dict({**shipped_card["metrics"]["validation"], "f1": 0.5})


def test_intervals_round_trip_and_cards_written_before_them_still_read(shipped_card):
    before = shipped_card["metrics"]["validation"]
    assert "roc_auc_ci" not in before  # the shipped card predates them

    assert SourceMetrics.from_dict(before).to_dict() == before
    with_intervals = {**before, "roc_auc_ci": [0.9, 0.93], "sensitivity_ci": [0.93, 0.99], "specificity_ci": None}
    written = SourceMetrics.from_dict(with_intervals).to_dict()
    assert written["roc_auc_ci"] == [0.9, 0.93]
    assert "specificity_ci" not in written  # an interval that could not be had is left out, like skipped_images


def test_threshold_rule_text():
    assert threshold_rule(0.95).endswith("as a one-sided 95% Wilson lower confidence bound")
    assert threshold_rule(None).endswith("(point estimate)")
