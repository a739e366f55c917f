"""The model card as training writes it: a typed dataclass, turned into model_card.json in one place.

Serving reads the JSON as a plain dict (training.model_card.read_model_card) and needs only version,
input_size, threshold, normalisation, melanoma_indices/melanoma_index and metrics; `evaluate_model` also
reads data.sources and data.split; registration reads created. Every other field documents the model for
a person. `ModelCard.from_dict(card).to_dict() == card` for every card training writes, the shipped one
included (tests/training/test_card.py), so the JSON keys cannot drift from what readers expect.

The threshold lives here and only here: the ModelVersion row copies it at registration
(classifier.services.model_versions.model_version_register) and nothing edits the copy. To change a
version's threshold, write a new card (retrain, or rewrite the card's threshold) and register it again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from lesion_model.preprocessing import Normalisation
from training.model_card import write_model_card

DATA_LICENCES = {
    "ham10000": "HAM10000 (Tschandl et al. 2018, doi:10.7910/DVN/DBW86T): CC BY-NC 4.0 - non-commercial use only",
    "isic2017": (
        "ISIC 2017 challenge data (Codella et al. 2017, arXiv:1710.05006): non-commercial research use "
        "(treated like CC BY-NC 4.0)"
    ),
    "ph2": (
        "PH2 dermoscopic database (Mendonca et al. 2013, doi:10.1109/EMBC.2013.6610779): free for research and "
        "benchmarking, cite the paper"
    ),
    "isic-sample": "ISIC Archive UDA-1 (International Skin Imaging Collaboration): CC0 1.0",
}
UNKNOWN_LICENCE = "see source"
WEIGHTS_LICENCE = "torchvision MobileNetV2 ImageNet weights (BSD-3-Clause torchvision; package MIT)"
MODEL_LICENCE = (
    "inherits the most restrictive data licence: non-commercial research use (HAM10000 CC BY-NC 4.0; ISIC 2017 "
    "non-commercial research; PH2 research and benchmarking)"
)
INTENDED_USE = (
    "A screening aid that flags skin lesions for a dermatologist's examination; not a diagnosis. "
    "Trained on dermoscopic images; photographs taken without a dermatoscope are outside its training data."
)
PREPROCESSING = "lesion_model.preprocessing.load_image: upright, RGB, sRGB, squash-resize to input_size"
OUTPUT = (
    "softmax over class_names; raw melanoma score = sum over melanoma_indices (threshold and ROC figures are on "
    "it); melanoma_probability = calibration applied to the score; risk level from risk_levels.boundaries"
)


def data_licence(source: str) -> str:
    return next((text for key, text in DATA_LICENCES.items() if key in source.lower()), UNKNOWN_LICENCE)


def camera_photos_section(
    simulated: dict[str, Any], dermoscopic: dict[str, Any], *, simulation: str, data: str
) -> dict[str, Any]:
    """The card's camera_photos figures (classifier.photo_advice quotes them on the result page): the same images
    scored as simulated phone close-ups and as they are, at the same threshold."""
    section: dict[str, Any] = {"simulation": simulation, "data": data}
    for key in ("roc_auc", "sensitivity", "specificity"):
        section[key] = None if simulated.get(key) is None else round(float(simulated[key]), 4)
        section[f"dermoscopic_{key}"] = None if dermoscopic.get(key) is None else round(float(dermoscopic[key]), 4)
    return section


def threshold_rule(confidence: float | None, *, per_source: bool = False) -> str:
    pooled = "highest threshold whose validation sensitivity reaches target_sensitivity" + (
        f" as a one-sided {confidence:.0%} Wilson lower confidence bound"
        if confidence is not None
        else " (point estimate)"
    )
    if not per_source:
        return pooled
    return (
        f"the lowest (most conservative) of: the {pooled} on the pooled validation split, and for every "
        "validation source the highest threshold whose sensitivity on that source alone reaches "
        "target_sensitivity (point estimate); so the target holds on each source, not only pooled"
    )


@dataclass(frozen=True)
class SourceMetrics:
    """training.metrics.compute_metrics on one data source, at `threshold`; None where undefined."""

    roc_auc: float | None
    pr_auc: float | None
    sensitivity: float | None
    specificity: float | None
    balanced_accuracy: float | None
    ppv: float | None
    npv: float | None
    accuracy: float
    tn: int
    fp: int
    fn: int
    tp: int
    brier: float
    ece: float
    n_images: int
    n_melanoma: int
    threshold: float
    skipped_images: int | None = None  # external folders only (images the dataset checks left out)
    # Two-sided 95 % intervals (training.metrics.confidence_intervals); absent from cards written before them.
    roc_auc_ci: list[float] | None = None
    sensitivity_ci: list[float] | None = None
    specificity_ci: list[float] | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SourceMetrics:
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        for optional in ("skipped_images", "roc_auc_ci", "sensitivity_ci", "specificity_ci"):
            if values[optional] is None:
                del values[optional]
        return values


_METRIC_TABLES = ("validation_by_source", "cross_source", "external", "test")


@dataclass(frozen=True)
class CardMetrics:
    validation: SourceMetrics  # the validation split the threshold was chosen on, all sources pooled
    # Each table: name -> metrics, absent (not empty) in the JSON when there is nothing in it.
    validation_by_source: dict[str, SourceMetrics] = field(default_factory=dict)  # the same split, per source
    # train_model --cross-source: each source left out, the recipe trained on the others (threshold chosen by
    # the recipe's rule on their validation split), scored on all of the left-out source's images.
    cross_source: dict[str, SourceMetrics] = field(default_factory=dict)
    external: dict[str, SourceMetrics] = field(default_factory=dict)  # folder name -> metrics; never trained on
    # Test sets (isic2017 part test, isic-sample) scored once for the final model, never used for a choice.
    test: dict[str, SourceMetrics] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CardMetrics:
        tables = {
            name: {key: SourceMetrics.from_dict(metrics) for key, metrics in values.get(name, {}).items()}
            for name in _METRIC_TABLES
        }
        return cls(validation=SourceMetrics.from_dict(values["validation"]), **tables)

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"validation": self.validation.to_dict()}
        for name in _METRIC_TABLES:
            table = getattr(self, name)
            if table:  # absent, not empty, when there is nothing in it
                values[name] = {key: metrics.to_dict() for key, metrics in table.items()}
        return values


@dataclass(frozen=True)
class DataSource:
    folder: str  # evaluate_model finds the training data again from here
    layout: str | None
    images: int
    melanoma: int
    licence: str
    parts: list[str] | None = None  # the parts of the folder's split column used (e.g. train, valid); None: all

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        if self.parts is None:
            del values["parts"]
        return values


@dataclass(frozen=True)
class DataSummary:
    sources: dict[str, DataSource]
    train_images: int
    validation_images: int
    train_diagnoses: dict[str, int]
    validation_diagnoses: dict[str, int]
    split: str  # "..., val_fraction 0.2, seed 0": evaluate_model reproduces the split from it
    skipped_images: int
    # How sources were weighted in training (training.weighting) and each one's share of the total weight.
    source_weighting: str | None = None
    source_weight_shares: dict[str, float] | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataSummary:
        sources = {name: DataSource(**source) for name, source in values["sources"].items()}
        return cls(**{**values, "sources": sources})

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["sources"] = {name: source.to_dict() for name, source in self.sources.items()}
        for key in ("source_weighting", "source_weight_shares"):
            if values[key] is None:
                del values[key]
        return values


@dataclass(frozen=True)
class Licences:
    data: list[str]
    weights: str = WEIGHTS_LICENCE
    model: str = MODEL_LICENCE


@dataclass(frozen=True)
class ModelCard:
    version: str
    created: str  # ISO 8601, UTC; registration activates the newest shipped card by it
    architecture: str
    backbone_origin: str
    input_size: int
    normalisation: Normalisation
    class_names: list[str]
    melanoma_indices: list[int]  # melanoma probability = sum of these outputs
    threshold: float  # melanoma probability at or above which the verdict is "refer"
    target_sensitivity: float
    threshold_rule: str
    metrics: CardMetrics
    data: DataSummary
    recipe: dict[str, Any]  # "head", "seed" and the recipe's own settings (training.recipes)
    training_time_s: float
    timings_s: dict[str, float]
    training_machine: str
    litert_max_abs_diff: float
    licences: Licences
    # lesion_model.calibration: Calibration.to_card() and RiskLevels.to_card(); None on older cards.
    calibration: dict[str, Any] | None = None
    risk_levels: dict[str, Any] | None = None
    # Each candidate of the per-source threshold rule ("pooled" and one per validation source); the lowest won.
    threshold_candidates: dict[str, float] | None = None
    # The graph's extra outputs (training.explain_heads); None on older cards.
    heatmap: dict[str, Any] | None = None
    differential: dict[str, Any] | None = None
    familiarity: dict[str, Any] | None = None
    # Figures on simulated phone close-ups against dermoscopic ones (evaluate_model --split val --simulate camera
    # --record-camera); the result page quotes them (classifier.photo_advice). None until measured.
    camera_photos: dict[str, Any] | None = None
    # The photo check's figures with this model's `unfamiliar` step (python -m bench.photo_check --record).
    photo_check: dict[str, Any] | None = None
    intended_use: str = INTENDED_USE
    preprocessing: str = PREPROCESSING
    output: str = OUTPUT

    @classmethod
    def from_dict(cls, card: dict[str, Any]) -> ModelCard:
        """A card training wrote (the shipped one included); raises KeyError/TypeError on another shape."""
        names = {item.name for item in fields(cls)}
        unknown = set(card) - names - {"melanoma_index"}
        if unknown:
            raise TypeError(f"Model card fields this version does not know: {', '.join(sorted(unknown))}.")
        return cls(
            **{
                **{key: value for key, value in card.items() if key in names},
                "normalisation": Normalisation.from_card(card["normalisation"]),
                "metrics": CardMetrics.from_dict(card["metrics"]),
                "data": DataSummary.from_dict(card["data"]),
                "licences": Licences(**card["licences"]),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        card = {item.name: getattr(self, item.name) for item in fields(self)}
        card.update(
            normalisation=self.normalisation.to_card(),
            metrics=self.metrics.to_dict(),
            data=self.data.to_dict(),
            licences=asdict(self.licences),
            # Redundant with melanoma_indices, but serving falls back to it and readers know the key.
            melanoma_index=self.melanoma_indices[0],
        )
        optional = ("calibration", "risk_levels", "threshold_candidates", "heatmap", "differential", "familiarity",
                    "camera_photos", "photo_check")  # fmt: skip
        for key in optional:
            if card[key] is None:  # older cards have neither key: their round trip stays exact
                del card[key]
        return card

    def write(self, model_dir: Path) -> Path:
        return write_model_card(model_dir, self.to_dict())
