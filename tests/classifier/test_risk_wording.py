"""Levels in words: natural frequencies, no zero for a small share, never "benign"."""

import pytest

from classifier.risk_wording import in_100, level_meaning


@pytest.mark.parametrize(
    ("share", "words"),
    [(0.12, "about 12 in 100"), (0.0017, "fewer than 1 in 100"), (0.0, "none of 100"), (0.998, "more than 99 in 100")],
)
def test_in_100(share, words):
    assert in_100(share) == words


def test_low_says_how_many_melanomas_it_held_and_to_watch_for_change():
    text = level_meaning("low", {"melanoma_share": 0.0018, "share_of_melanomas": 0.008})
    assert text.startswith("In our tests, fewer than 1 in 100 lesions with this result were melanoma.")
    assert "About 1 in 100 melanomas also got this result" in text
    assert "watch" in text
    assert "benign" not in text
    assert "%" not in text


def test_no_measurement_is_said_plainly():
    assert "no measurement" in level_meaning("moderate", None)
    assert level_meaning(None, None) == ""
