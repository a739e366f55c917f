"""Reading a model card's stored metrics for people: one table per data source, rounded figures.

The card nests its figures by data source ("validation", "external" → "isic-sample", and whatever a recipe
adds: per source, cross source, test). Nothing here knows those names: any dict holding a headline figure is a
table, named by where it sits, so a new kind of evaluation shows up without a code change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

HEADLINE_KEYS = ("roc_auc", "sensitivity", "specificity")
# Which table the list of versions shows, when several exist: an untouched test set beats validation.
HEADLINE_PREFERENCE = ("test", "validation", "val")
LABELS = {
    "n_images": "Images",
    "n_melanoma": "Melanomas",
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "balanced_accuracy": "Balanced accuracy",
    "accuracy": "Accuracy",
    "ppv": "PPV (precision)",
    "npv": "NPV",
    "brier": "Brier score",
    "ece": "Calibration error (ECE)",
    "threshold": "Threshold",
    "tp": "True positives",
    "fn": "False negatives (missed melanomas)",
    "fp": "False positives",
    "tn": "True negatives",
    "skipped_images": "Skipped images",
}


@dataclass(frozen=True)
class MetricsTable:
    source: str  # "validation", "external / isic-sample"; "all data" for a flat metrics dict
    rows: list[tuple[str, str]]  # (label, formatted value), in the order the card lists them
    values: dict[str, object]


def format_metric(key: str, value: object) -> str:
    """Counts as integers, times with their unit (ms to 1 decimal), everything else to 3 decimals."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if key.endswith("_ms"):
            return f"{value:.1f} ms"
        if key.endswith("_s"):
            return f"{value:.1f} s"
        return f"{value:.3f}"
    return str(value)


def label_for(key: str) -> str:
    return LABELS.get(key) or key.replace("_", " ").capitalize()


def _walk(metrics: dict, path: tuple[str, ...]) -> Iterator[MetricsTable]:
    if any(isinstance(metrics.get(key), int | float) for key in HEADLINE_KEYS):
        scalars = {key: value for key, value in metrics.items() if not isinstance(value, dict | list)}
        rows = [(label_for(key), format_metric(key, value)) for key, value in scalars.items()]
        yield MetricsTable(source=" / ".join(path) or "all data", rows=rows, values=scalars)
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from _walk(value, (*path, str(key)))


def metrics_tables(metrics: dict | None) -> list[MetricsTable]:
    return list(_walk(metrics, ())) if isinstance(metrics, dict) else []


def headline_table(metrics: dict | None) -> MetricsTable | None:
    tables = metrics_tables(metrics)
    for preferred in HEADLINE_PREFERENCE:
        for table in tables:
            if preferred in table.source.split(" / "):
                return table
    return tables[0] if tables else None


def headline_figure(metrics: dict | None, key: str) -> str:
    table = headline_table(metrics)
    value = table.values.get(key) if table else None
    return format_metric(key, value) if isinstance(value, int | float) else "—"
