"""`manage.py predict_images PATH [PATH ...] [--csv OUT]`: melanoma probability for image files and folders.

Runtime code only (lesion_model): it works on a `make run` install, without requirements-train.txt.
"""

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from classifier.management.commands._model_choice import (
    ModelCommand,
    model_dir_for_command,
    model_version_for_command,
)
from classifier.models import Prediction
from lesion_model.files import collect_image_files
from lesion_model.model_card import ModelCardError
from lesion_model.scorer import MelanomaScorer, score_files

CSV_COLUMNS = ("path", "melanoma_probability", "label", "error")
FAILED_LABEL = "failed"


class Command(ModelCommand):
    help = (
        "Score image files and folders (searched recursively; images recognised by content) with the active model. "
        "Prints path, melanoma_probability, label (refer / low_risk at the model's threshold); exits non-zero if "
        "any file could not be scored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="image file or folder")
        parser.add_argument("--csv", metavar="OUT", help="also write the rows to this CSV file")
        parser.add_argument("--version", help="registered model version (default: the active one)")

    def handle(self, *args: Any, **options: Any) -> None:
        model_version = model_version_for_command(options["version"])
        model_dir = model_dir_for_command(model_version)
        files, missing = collect_image_files(Path(path) for path in options["paths"])
        if not files and not missing:
            raise CommandError(f"No image files found in {', '.join(options['paths'])}.")
        try:
            scorer = MelanomaScorer(model_dir)
        except ModelCardError as error:
            raise CommandError(f"Model version {model_version.version} cannot be used: {error}") from error

        on_terminal = self.stderr.isatty()
        scored = score_files(scorer, files, progress=self._show_progress if on_terminal else None)
        if on_terminal:
            self.stderr.write("")

        # The threshold the workers apply: the row's copy of the card's, made at registration.
        threshold = model_version.threshold
        rows: list[tuple[str, float | None, str, str]] = [
            (str(path), None, FAILED_LABEL, "no such file or folder") for path in missing
        ]
        for result in scored:
            if result.melanoma_probability is None:
                rows.append((str(result.path), None, FAILED_LABEL, result.error or ""))
            else:
                verdict = Prediction.Verdict.for_score(score=result.melanoma_probability, threshold=threshold)
                rows.append((str(result.path), result.melanoma_probability, verdict.value, ""))

        width = max(len(row[0]) for row in rows)
        self.stdout.write(f"{'path':<{width}}  melanoma_probability  label")
        for path, probability, label, reason in rows:
            shown = "-" if probability is None else f"{probability:.4f}"
            self.stdout.write(f"{path:<{width}}  {shown:>20}  {label}" + (f": {reason}" if reason else ""))
        if options["csv"]:
            self._write_csv(Path(options["csv"]), rows)

        failed = sum(1 for row in rows if row[2] == FAILED_LABEL)
        referred = sum(1 for row in rows if row[2] == Prediction.Verdict.REFER)
        self.stdout.write(
            f"Model {model_version.version}, threshold {threshold:.4f}: {len(rows) - failed} scored "
            f"({referred} refer, {len(rows) - failed - referred} low_risk), {failed} failed."
        )
        if failed:
            raise CommandError(f"{failed} of {len(rows)} files could not be scored (reasons above).")

    def _show_progress(self, done: int, total: int) -> None:
        """A counter that rewrites one line of the terminal (tqdm is a training dependency)."""
        self.stderr.write(f"\rscoring {done}/{total}", ending="")
        self.stderr.flush()

    def _write_csv(self, path: Path, rows: list[tuple[str, float | None, str, str]]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(CSV_COLUMNS)
                writer.writerows(
                    (file, "" if probability is None else f"{probability:.6f}", label, error)
                    for file, probability, label, error in rows
                )
        except OSError as error:
            raise CommandError(f"Cannot write {path}: {error.strerror or error}") from error
        self.stdout.write(f"Wrote {len(rows)} rows to {path}")
