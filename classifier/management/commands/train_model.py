"""`manage.py train_model --data DIR [...]`: train a MobileNetV2 model folder and register it as a ModelVersion.

Needs requirements-train.txt (TensorFlow, scikit-learn, tqdm): the training package is imported in handle().
"""

import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from classifier.management.commands._model_choice import ModelCommand
from classifier.management.commands._training_dependencies import require_training_dependencies
from classifier.services.model_versions import ModelVersionUnusable, model_version_register
from lesion_model.model_card import ModelCardError

STAGE_TITLES = {
    "load": "reading data",
    "cross-source": "cross-source folds",
    "cache": "backbone features",
    "train": "training",
    "export": "LiteRT export",
    "evaluate": "external evaluation",
}


class _StageBars:
    """One tqdm bar per training stage, fed by train()'s (stage, done, total) callback."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: Any = None  # a tqdm bar

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm  # noqa: PLC0415 - a training dependency, checked in handle()

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=STAGE_TITLES.get(stage, stage), file=sys.stderr, disable=None)
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Command(ModelCommand):
    help = (
        "Train MobileNetV2 on labelled folders (HAM10000, ISIC 2018/2019/2020, class folders), choose the threshold "
        "on the lesion-grouped validation split, export LiteRT + model card, and register the ModelVersion."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--data",
            action="append",
            required=True,
            metavar="DIR[:PARTS]",
            help=(
                "labelled training folder, repeatable; DIR:train,valid keeps only those parts of the folder's split "
                "column (e.g. ../shared/derm/isic2017:train,valid, leaving its test part out). A folder with a "
                "'valid' part is validated on it; any other folder by a lesion-grouped split of its own"
            ),
        )
        parser.add_argument(
            "--cross-source",
            action="store_true",
            help="first leave each --data source out in turn, train on the others and score it; table in the card",
        )
        parser.add_argument(
            "--source-weighting",
            choices=("class", "source_class", "sqrt_source_class"),
            help="how sources and classes are weighted (default sqrt_source_class: see training/weighting.py)",
        )
        parser.add_argument(
            "--resume",
            action="store_true",
            help="finetune: continue the run named by --version from its last epoch checkpoint",
        )
        parser.add_argument(
            "--head",
            choices=("logistic", "finetune"),
            help="logistic (default): frozen backbone + logistic regression; finetune: train blocks 13-16",
        )
        parser.add_argument(
            "--views",
            help=(
                "logistic: comma-separated training views of each image (default identity,shades_of_gray,"
                "flip_horizontal,camera,rotate_180; others: flip_vertical, colour, zoom_out)"
            ),
        )
        parser.add_argument(
            "--logistic-c", type=float, help="logistic: inverse L2 strength on standardised features (default 0.00025)"
        )
        parser.add_argument(
            "--feature-cache",
            metavar="DIR",
            help=(
                "logistic: keep the backbone features under DIR and reuse them in later runs with the same input "
                "size, weights, seed and code (a run that changes only the head then skips the extraction)"
            ),
        )
        parser.add_argument("--epochs", type=int, help="finetune epochs (default: the recipe's)")
        parser.add_argument("--image-size", type=int, help="input size in pixels (default: the recipe's)")
        parser.add_argument("--batch-size", type=int, help="finetune batch size (default: the recipe's)")
        parser.add_argument("--seed", type=int, default=0, help="seed for the split, augmentation and weights init")
        parser.add_argument("--val-fraction", type=float, help="validation share of lesion groups (default 0.2)")
        parser.add_argument("--target-sensitivity", type=float, help="sensitivity the threshold must reach")
        parser.add_argument(
            "--eval-data", action="append", default=[], metavar="DIR", help="external test folder, repeatable"
        )
        parser.add_argument("--out", metavar="DIR", help="parent folder of the model folder")
        parser.add_argument("--version", help="version name (default: mnv2-<size>-<timestamp>)")
        parser.add_argument("--skip-bad", action="store_true", help="leave out missing/corrupt/duplicate images")
        parser.add_argument("--activate", action="store_true", help="make it the model the workers use")

    def handle(self, *args: Any, **options: Any) -> None:
        require_training_dependencies("train_model")
        for name in ("epochs", "image_size", "batch_size"):
            if options[name] is not None and options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be a positive number.")
        if options["logistic_c"] is not None and not options["logistic_c"] > 0:
            raise CommandError("--logistic-c must be a positive number (e.g. 0.00025).")
        # Imported here: TensorFlow loads only when a model is really trained, never for `manage.py help`.
        from training.datasets import DataFolder, DatasetError  # noqa: PLC0415
        from training.export import ExportError  # noqa: PLC0415
        from training.metrics import format_metrics_table  # noqa: PLC0415
        from training.train import TrainConfig, train  # noqa: PLC0415
        from training.weights import WeightsError  # noqa: PLC0415

        views = _views(options["views"])
        overrides = {
            "feature_views": views,
            "head": options["head"],
            "epochs": options["epochs"],
            "image_size": options["image_size"],
            "batch_size": options["batch_size"],
            "val_fraction": options["val_fraction"],
            "target_sensitivity": options["target_sensitivity"],
            "version": options["version"],
            "source_weighting": options["source_weighting"],
            "logistic_c": options["logistic_c"],
            "feature_cache": Path(options["feature_cache"]) if options["feature_cache"] else None,
        }
        if options["resume"] and not options["version"]:
            raise CommandError("--resume needs the --version of the interrupted run.")
        config = TrainConfig(
            data_dirs=[DataFolder.parse(path) for path in options["data"]],
            cross_source=options["cross_source"],
            resume=options["resume"],
            eval_dirs=[Path(path) for path in options["eval_data"]],
            out_dir=Path(options["out"]) if options["out"] else Path(settings.MELANOMA_TRAINED_MODELS_DIR),
            seed=options["seed"],
            skip_bad=options["skip_bad"],
            **{key: value for key, value in overrides.items() if value is not None},
        )
        bars = _StageBars()
        try:
            result = train(config, progress=bars)
        except (DatasetError, WeightsError, ExportError, ModelCardError, ValueError) as error:
            raise CommandError(str(error)) from error
        finally:
            bars.close()
        try:
            model_version = model_version_register(model_dir=result.model_dir, activate=options["activate"])
        except ModelVersionUnusable as error:
            raise CommandError(f"{error.message} (the folder is kept at {result.model_dir})") from error

        self.stdout.write(f"Model {result.version} written to {result.model_dir}")
        self.stdout.write(f"Validation ({result.card.data.validation_images} images, sources pooled):")
        self.stdout.write(format_metrics_table(result.metrics.validation.to_dict()))
        self.stdout.write(f"Threshold rule: {result.card.threshold_rule}")
        self.stdout.write("Validation per source, at the threshold:")
        self.stdout.write(format_source_table(result.metrics.validation_by_source))
        if result.metrics.cross_source:
            self.stdout.write("Cross-source (each source left out, trained on the others, at that fold's threshold):")
            self.stdout.write(format_source_table(result.metrics.cross_source))
        for source, metrics in result.metrics.external.items():
            self.stdout.write(f"External test: {source}")
            self.stdout.write(format_metrics_table(metrics.to_dict()))
        seconds = result.timings.get("training_total_s", 0.0)
        activation = " and activated it." if model_version.is_active else "; activate it with --activate or the admin."
        self.stdout.write(f"Trained in {seconds:.0f} s. Registered version {model_version.version}{activation}")


def format_source_table(table: dict[str, Any]) -> str:
    """One line per source: AUC, sensitivity and specificity at the threshold, counts."""

    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [f"{'source':<16} {'ROC AUC':>8} {'sens':>6} {'spec':>6} {'threshold':>9} {'images':>7} {'melanoma':>8}"]
    for source, metrics in table.items():
        lines.append(
            f"{source:<16} {shown(metrics.roc_auc):>8} {shown(metrics.sensitivity):>6} {shown(metrics.specificity):>6} "
            f"{metrics.threshold:>9.4f} {metrics.n_images:>7} {metrics.n_melanoma:>8}"
        )
    return "\n".join(lines)


def _views(text: str | None) -> tuple[str, ...] | None:
    """--views as a tuple, every name checked against training.features.VIEWS (no TensorFlow needed)."""
    if text is None:
        return None
    from training.features import VIEWS  # noqa: PLC0415

    views = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in views if name not in VIEWS]
    if unknown or not views:
        raise CommandError(f"--views: unknown view {', '.join(unknown) or '(none given)'}; use {', '.join(VIEWS)}.")
    if len(set(views)) != len(views):
        raise CommandError("--views: a view is named twice.")
    return views
