"""`manage.py evaluate_model --data DIR [--version V] [--json]`: clinical metrics of a model on a labelled folder.

Needs requirements-train.txt (scikit-learn, matplotlib, tqdm): the training package is imported in handle().
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError, CommandParser

from classifier.management.commands._model_choice import (
    ModelCommand,
    checked_model_dir,
    model_dir_for_command,
    model_version_for_command,
)
from classifier.management.commands._training_dependencies import require_training_dependencies
from lesion_model.model_card import ModelCardError, read_model_card

# training.camera.SIMULATIONS' names (a test keeps them equal): this module must load on a runtime-only install,
# which has no `training` package, to say what to install (tests/classifier/test_runtime_only_commands.py).
SIMULATION_NAMES = ("camera", "camera_far", "camera_glare")

if TYPE_CHECKING:
    from training.datasets import Dataset

EVALUATION_PACKAGES = ("sklearn", "matplotlib", "tqdm")


class Command(ModelCommand):
    help = (
        "Score a labelled folder (HAM10000, ISIC 2018/2019/2020 or class folders) with the active or a named model "
        "and print ROC AUC, PR AUC, sensitivity/specificity at the stored threshold, confusion matrix and calibration."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--data",
            action="append",
            metavar="DIR",
            help="labelled folder, repeatable (with --split: default the folders the model was trained on)",
        )
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--version", help="registered model version (default: the active one)")
        which.add_argument("--model-dir", metavar="DIR", help="an unregistered model folder (model.tflite + card)")
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        parser.add_argument("--skip-bad", action="store_true", help="leave out missing/corrupt/duplicate images")
        parser.add_argument(
            "--split",
            choices=("all", "val", "train"),
            default="all",
            help="score every image (default) or one side of the lesion-grouped split the model was trained with",
        )
        parser.add_argument(
            "--subset",
            metavar="NAME",
            help="only images whose split column equals NAME (e.g. test: the ISIC 2017 test part)",
        )
        parser.add_argument(
            "--record-test",
            metavar="LABEL",
            help="store these figures in the model card's metrics.test[LABEL] (final test sets, scored once)",
        )
        parser.add_argument(
            "--masks",
            nargs="?",
            const="",
            metavar="DIR",
            help="also measure the heatmap against expert lesion masks (<image>_lesion.png; default: each "
            "data folder's masks/): heatmap_pointing and heatmap_in_lesion",
        )
        parser.add_argument(
            "--record-masks", action="store_true", help="store the --masks figures in the card's heatmap section"
        )
        parser.add_argument(
            "--simulate",
            choices=SIMULATION_NAMES,
            help="score every image as a simulated phone close-up (training/camera.py): the lesion at 55 %% "
            "(camera_far: 40 %%) of the frame in skin, uneven light, defocus, JPEG (camera_glare: with a flash's "
            "reflection over 1 %% of the frame)",
        )
        parser.add_argument(
            "--record-camera",
            action="store_true",
            help="with --simulate and --split val: store the figures in the card's camera_photos section, beside "
            "the card's own validation figures (the result page quotes them)",
        )
        parser.add_argument("--seed", type=int, help="split seed (default: the one stored in the model card)")
        parser.add_argument("--val-fraction", type=float, help="validation share (default: from the model card)")
        parser.add_argument("--threshold", type=float, help="override the stored threshold (e.g. to compare)")
        parser.add_argument("--roc-curve", metavar="PNG", help="also write the ROC curve to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        require_training_dependencies("evaluate_model", EVALUATION_PACKAGES)
        from tqdm import tqdm  # noqa: PLC0415 - training dependencies: checked just above

        from training.datasets import DatasetError  # noqa: PLC0415
        from training.evaluation import evaluate_model_dir  # noqa: PLC0415

        _check_simulation_options(options)
        model_dir, threshold = self._model_dir_and_threshold(options)
        card = read_model_card(model_dir)
        dataset = self._dataset(card, options)

        with tqdm(total=len(dataset), desc="scoring", unit="img", file=sys.stderr, disable=None) as bar:
            try:
                metrics = evaluate_model_dir(
                    model_dir,
                    dataset,
                    threshold=threshold,
                    roc_curve_path=Path(options["roc_curve"]) if options["roc_curve"] else None,
                    progress=lambda done, total: bar.update(done - bar.n),
                    simulate=options["simulate"],
                )
            except (DatasetError, ModelCardError) as error:
                raise CommandError(str(error)) from error
        if options["masks"] is not None:
            from training.evaluation import evaluate_heatmaps  # noqa: PLC0415

            mask_dirs = (
                [Path(options["masks"])]
                if options["masks"]
                else [Path(root) / "masks" for root in dataset.roots.values()]
            )
            try:
                metrics.update(evaluate_heatmaps(model_dir, dataset, mask_dirs))
            except (DatasetError, ModelCardError) as error:
                raise CommandError(str(error)) from error
            if options["record_masks"]:
                record_heatmap_metrics(model_dir, metrics, dataset.summary())
        metrics["split"] = options["split"]
        if options["subset"]:
            metrics["subset"] = options["subset"]
        if options["record_test"]:
            record_test_metrics(model_dir, options["record_test"], metrics)
        if options["record_camera"]:
            record_camera_metrics(model_dir, metrics, f"{dataset.summary()}, validation split")
        self._report(metrics, dataset, model_dir, options)

    def _dataset(self, card: dict[str, Any], options: dict[str, Any]) -> Dataset:
        """The folders named (or, for a split, the card's training folders), the subset, the split side."""
        from training.datasets import DataFolder, DatasetError, load_datasets, select_part  # noqa: PLC0415

        folders = [DataFolder.parse(path) for path in options["data"] or []]
        if not folders and options["split"] != "all":
            folders = card_training_folders(card)
        if not folders:
            raise CommandError("Name a labelled folder with --data DIR.")
        try:
            dataset = load_datasets(folders, skip_bad=options["skip_bad"])
            if options["subset"]:
                dataset = select_part(dataset, options["subset"].lower())
        except DatasetError as error:
            raise CommandError(str(error)) from error
        if dataset.skipped:
            self.stderr.write(dataset.skipped_report())
        if options["split"] != "all":
            dataset = self._split_side(dataset, card, options)
        return dataset

    def _report(self, metrics: dict[str, Any], dataset: Dataset, model_dir: Path, options: dict[str, Any]) -> None:
        from training.metrics import format_metrics_table  # noqa: PLC0415

        if options["json"]:
            self.stdout.write(json.dumps(metrics, sort_keys=True))
            return
        simulated = f", simulated: {options['simulate']}" if options["simulate"] else ""
        self.stdout.write(f"Model {metrics['version']} on {dataset.summary()} (split: {options['split']}{simulated})")
        if options["record_test"]:
            self.stdout.write(f"Recorded in {model_dir}/model_card.json as metrics.test[{options['record_test']!r}].")
        self.stdout.write(format_metrics_table(metrics))
        if options["roc_curve"] and metrics["roc_auc"] is not None:
            self.stdout.write(f"ROC curve written to {options['roc_curve']}")

    def _model_dir_and_threshold(self, options: dict[str, Any]) -> tuple[Path, float | None]:
        if options["model_dir"]:
            model_dir, threshold = checked_model_dir(options["model_dir"]), None
        else:
            model_version = model_version_for_command(options["version"])
            # The threshold the workers apply: the row's copy of the card's, made at registration.
            model_dir, threshold = model_dir_for_command(model_version), model_version.threshold
        if options["threshold"] is not None:
            threshold = options["threshold"]
        return model_dir, threshold

    def _split_side(self, dataset: Dataset, card: dict[str, Any], options: dict[str, Any]) -> Dataset:
        from training.datasets import Dataset  # noqa: PLC0415 - training dependencies, checked in handle()
        from training.splits import split_by_source  # noqa: PLC0415

        stored_seed, stored_fraction = card_split_settings(card)
        seed = options["seed"] if options["seed"] is not None else stored_seed
        fraction = options["val_fraction"] if options["val_fraction"] is not None else stored_fraction
        if seed is None or fraction is None:
            raise CommandError(
                "The model card does not say how its validation split was made; pass --seed and --val-fraction."
            )
        try:
            # The split training made: per source (a 'valid' part where the folder has one), so a single-source
            # card's pooled grouped split is reproduced unchanged.
            train, val = split_by_source(dataset.samples, val_fraction=float(fraction), seed=int(seed))
        except ValueError as error:
            raise CommandError(str(error)) from error
        samples = val if options["split"] == "val" else train
        return Dataset(samples=samples, layouts=dataset.layouts, roots=dataset.roots, skipped=dataset.skipped)


def card_split_settings(card: dict[str, Any]) -> tuple[int | None, float | None]:
    """(seed, val_fraction) the model was trained with, wherever this card generation keeps them."""
    split, recipe, data = _card_section(card, "split"), _card_section(card, "recipe"), _card_section(card, "data")
    seed = next((place["seed"] for place in (split, recipe, card) if place.get("seed") is not None), None)
    fraction = next(
        (place["val_fraction"] for place in (split, recipe, card) if place.get("val_fraction") is not None), None
    )
    if fraction is None and isinstance(data.get("split"), str):
        # Older cards describe the split in words: "grouped ..., val_fraction 0.2, seed 0".
        match = re.search(r"val_fraction\s+([0-9.]+)", data["split"])
        fraction = float(match.group(1)) if match else None
    return seed, fraction


def _card_section(card: dict[str, Any], key: str) -> dict[str, Any]:
    section = card.get(key)
    return section if isinstance(section, dict) else {}


def card_training_folders(card: dict[str, Any]) -> list[Any]:
    """The card's training folders, limited to the parts it was trained on (DataFolder)."""
    from training.datasets import DataFolder  # noqa: PLC0415 - training dependencies, checked in handle()

    sources = card.get("data", {}).get("sources", {}) if isinstance(card.get("data"), dict) else {}
    return [
        DataFolder(Path(source["folder"]), tuple(source["parts"]) if source.get("parts") else None)
        for source in sources.values()
        if isinstance(source, dict) and source.get("folder")
    ]


def record_test_metrics(model_dir: Path, label: str, metrics: dict[str, Any]) -> None:
    """Write the figures into the card's metrics.test (documentation: serving reads no test figure)."""
    from training.card import ModelCard, SourceMetrics  # noqa: PLC0415
    from training.model_card import write_model_card  # noqa: PLC0415

    card = read_model_card(model_dir)
    try:
        typed = ModelCard.from_dict(card)
    except (KeyError, TypeError) as error:
        raise CommandError(f"{model_dir}: this card's shape is not one training writes ({error}).") from error
    values = {key: metrics[key] for key in SourceMetrics.__dataclass_fields__ if key in metrics}
    test = {**typed.metrics.test, label: SourceMetrics.from_dict(values)}
    card["metrics"] = {**card["metrics"], "test": {name: item.to_dict() for name, item in test.items()}}
    write_model_card(model_dir, card)


def record_heatmap_metrics(model_dir: Path, metrics: dict[str, Any], described: str) -> None:
    """Write the pointing-game figures into the card's heatmap section (documentation only)."""
    from training.model_card import write_model_card  # noqa: PLC0415

    card = read_model_card(model_dir)
    if not isinstance(card.get("heatmap"), dict):
        raise CommandError(f"{model_dir}: this card has no heatmap section to record into.")
    figures = {key: metrics[key] for key in metrics if key.startswith("heatmap_")}
    card["heatmap"] = {**card["heatmap"], "measured": {"on": described, **figures}}
    write_model_card(model_dir, card)


def _check_simulation_options(options: dict[str, Any]) -> None:
    """Refuse, before any scoring, what would record simulated figures where real ones belong."""
    if options["simulate"] and (options["record_test"] or options["masks"] is not None):
        # The figures would describe simulated photos, and masks no longer line up with them.
        raise CommandError("--simulate cannot be combined with --record-test or --masks.")
    if options["record_camera"] and not (options["simulate"] and options["split"] == "val"):
        # The page sets these against the card's validation figures: both must come from the same images.
        raise CommandError("--record-camera needs --simulate and --split val.")
    if options["record_camera"] and options["threshold"] is not None:
        raise CommandError("--record-camera records at the model's own threshold: leave out --threshold.")


def record_camera_metrics(model_dir: Path, metrics: dict[str, Any], described: str) -> None:
    """Write the simulated-camera figures, and the card's validation figures on the same images, into the card's
    camera_photos section (classifier.photo_advice reads it for the result page)."""
    from training.card import camera_photos_section  # noqa: PLC0415
    from training.model_card import write_model_card  # noqa: PLC0415

    card = read_model_card(model_dir)
    validation = (card.get("metrics") or {}).get("validation") or {}
    if validation.get("roc_auc") is None:
        raise CommandError(f"{model_dir}: this card has no validation figures to set the camera figures against.")
    section = camera_photos_section(
        metrics,
        validation,
        simulation=metrics["simulate"],
        data=f"{described}, every image as a simulated phone close-up (training/camera.py)",
    )
    # A training run's cross_source table stays.
    card["camera_photos"] = {**(card.get("camera_photos") or {}), **section}
    write_model_card(model_dir, card)
