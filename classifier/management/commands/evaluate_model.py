"""`manage.py evaluate_model --data DIR [--version V] [--json]`: clinical metrics of a model on a labelled folder."""

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from classifier.management.commands._model_choice import (
    ModelCommand,
    checked_model_dir,
    model_dir_for_command,
    model_version_for_command,
)
from training.datasets import Dataset, DatasetError, load_datasets
from training.evaluation import evaluate_model_dir
from training.metrics import format_metrics_table
from training.model_card import ModelCardError, read_model_card
from training.splits import grouped_stratified_split


class Command(ModelCommand):
    help = (
        "Score a labelled folder (HAM10000, ISIC 2018/2019/2020 or class folders) with the active or a named model "
        "and print ROC AUC, PR AUC, sensitivity/specificity at the stored threshold, confusion matrix and calibration."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--data", action="append", required=True, metavar="DIR", help="labelled folder (repeatable)"
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
        parser.add_argument("--seed", type=int, help="split seed (default: the one stored in the model card)")
        parser.add_argument("--val-fraction", type=float, help="validation share (default: from the model card)")
        parser.add_argument("--threshold", type=float, help="override the stored threshold (e.g. to compare)")
        parser.add_argument("--roc-curve", metavar="PNG", help="also write the ROC curve to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["model_dir"]:
            model_dir, threshold = checked_model_dir(options["model_dir"]), None
        else:
            model_version = model_version_for_command(options["version"])
            # The row's threshold is what the workers use (an operator may retune it without retraining).
            model_dir, threshold = model_dir_for_command(model_version), model_version.threshold
        if options["threshold"] is not None:
            threshold = options["threshold"]
        card = read_model_card(model_dir)

        try:
            dataset = load_datasets([Path(path) for path in options["data"]], skip_bad=options["skip_bad"])
        except DatasetError as error:
            raise CommandError(str(error)) from error
        if dataset.skipped:
            self.stderr.write(dataset.skipped_report())
        if options["split"] != "all":
            dataset = self._split_side(dataset, card, options)

        with tqdm(total=len(dataset), desc="scoring", unit="img", file=sys.stderr, disable=None) as bar:
            try:
                metrics = evaluate_model_dir(
                    model_dir,
                    dataset,
                    threshold=threshold,
                    roc_curve_path=Path(options["roc_curve"]) if options["roc_curve"] else None,
                    progress=lambda done, total: bar.update(done - bar.n),
                )
            except (DatasetError, ModelCardError) as error:
                raise CommandError(str(error)) from error
        metrics["split"] = options["split"]

        if options["json"]:
            self.stdout.write(json.dumps(metrics, sort_keys=True))
            return
        self.stdout.write(f"Model {metrics['version']} on {dataset.summary()} (split: {options['split']})")
        self.stdout.write(format_metrics_table(metrics))
        if options["roc_curve"] and metrics["roc_auc"] is not None:
            self.stdout.write(f"ROC curve written to {options['roc_curve']}")

    def _split_side(self, dataset: Dataset, card: dict[str, Any], options: dict[str, Any]) -> Dataset:
        stored = card.get("split") if isinstance(card.get("split"), dict) else {}
        seed = options["seed"] if options["seed"] is not None else stored.get("seed", card.get("seed"))
        fraction = options["val_fraction"] or stored.get("val_fraction", card.get("val_fraction"))
        if seed is None or fraction is None:
            raise CommandError(
                "The model card does not say how its validation split was made; pass --seed and --val-fraction."
            )
        try:
            train, val = grouped_stratified_split(dataset.samples, val_fraction=float(fraction), seed=int(seed))
        except ValueError as error:
            raise CommandError(str(error)) from error
        samples = val if options["split"] == "val" else train
        return Dataset(samples=samples, layouts=dataset.layouts, roots=dataset.roots, skipped=dataset.skipped)
