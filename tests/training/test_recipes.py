"""The recipe registry: one interface, the names train_model offers, and each recipe's "auto" task."""

from pathlib import Path

import pytest

from training.datasets import Sample
from training.recipes import DEFAULT_RECIPE, RECIPES, get_recipe


def test_train_model_offers_every_recipe():
    from django.core.management import load_command_class

    command = load_command_class("classifier", "train_model")
    parser = command.create_parser("manage.py", "train_model")
    head = next(action for action in parser._actions if action.dest == "head")
    assert tuple(head.choices) == tuple(RECIPES)
    assert DEFAULT_RECIPE == "logistic"


def test_unknown_recipe_is_rejected():
    with pytest.raises(ValueError, match="Unknown head 'svm': use logistic or finetune"):
        get_recipe("svm")


def _samples(with_dx: bool) -> list[Sample]:
    return [
        Sample(
            path=Path(f"{index}.jpg"), label=int(dx == "mel"), dx=dx if with_dx else None, source="s", group=str(index)
        )
        for index, dx in enumerate(["mel", "nv", "bkl", "mel"])
    ]


@pytest.mark.parametrize(
    ("head", "with_dx", "expected"),
    [
        ("logistic", True, (["not_melanoma", "melanoma"], [1])),
        ("finetune", True, (["bkl", "mel", "nv"], [1])),
        ("finetune", False, (["not_melanoma", "melanoma"], [1])),
    ],
)
def test_auto_task_follows_the_recipe(head, with_dx, expected):
    from training.train import _class_names

    assert _class_names(_samples(with_dx), "auto", get_recipe(head)) == expected


def test_diagnosis_task_needs_diagnoses():
    from training.train import _class_names

    with pytest.raises(ValueError, match="needs a diagnosis"):
        _class_names(_samples(False), "diagnosis", get_recipe("logistic"))
    with pytest.raises(ValueError, match="Unknown task"):
        _class_names(_samples(True), "multi", get_recipe("logistic"))


def test_train_rejects_an_unknown_recipe_before_reading_data(tmp_path):
    pytest.importorskip("tensorflow")
    from training.train import TrainConfig, train

    with pytest.raises(ValueError, match="Unknown head"):
        train(TrainConfig(data_dirs=[tmp_path / "missing"], head="svm"))
