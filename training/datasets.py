"""Labelled dermoscopy datasets, read from a folder whose layout is detected.

Supported layouts (images may sit anywhere below the folder; they are found by file name):

- HAM10000: `HAM10000_metadata.csv` (lesion_id, image_id, dx, ...). Melanoma = dx == "mel"; group = lesion_id.
- ISIC 2018 / 2019 Task 3: `*GroundTruth.csv` with `image` and one-hot MEL, NV, BCC, AKIEC, BKL, DF, VASC
  (2019 adds SCC, UNK), images in a `*_Input/` folder. Melanoma = MEL == 1; dx = the hot column, lower-cased.
  A CSV with `image` and `lesion_id` columns (ISIC 2018's LesionGroupings, 2019's Metadata) supplies groups.
- ISIC 2020: `train.csv` (image_name, patient_id, ..., diagnosis, benign_malignant, target), images in
  `jpeg/` or `train/`. Melanoma = target == 1; group = patient_id when present. An optional `split` column
  (ISIC 2017's own train / valid / test parts) becomes `Sample.part`.
- Class folders: ROOT/<class>/*.jpg, optionally under train/, test/ or val/. Folders named melanoma,
  malignant or mel are positive.

A folder may be limited to some parts of its `split` column: `DataFolder.parse("DIR:train,valid")` (what
`train_model --data` accepts). A part filter on a folder without a split column is an error, never ignored.

Every image is checked (present, opens with Pillow, not a duplicate by name or by content). Problems raise a
`DatasetError` that lists them, or with `skip_bad=True` the bad images are left out and listed in
`Dataset.skipped` — never silently dropped. Images are opened here, and decoded for training, through
`lesion_model.decode`: the path uploads and the worker use.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lesion_model.decode import ImageError, open_image
from lesion_model.files import IMAGE_SUFFIXES

POSITIVE_CLASS_FOLDERS = frozenset({"melanoma", "malignant", "mel"})
SPLIT_FOLDERS = frozenset({"train", "training", "test", "val", "valid", "validation"})
ISIC_TASK3_COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC", "SCC", "UNK")
# ISIC 2020 spells diagnoses out; HAM10000 / ISIC 2018-19 codes let sources share one vocabulary.
ISIC2020_DX_CODES = {
    "melanoma": "mel",
    "nevus": "nv",
    "seborrheic keratosis": "bkl",
    "lentigo nos": "bkl",
    "lichenoid keratosis": "bkl",
    "solar lentigo": "bkl",
    "basal cell carcinoma": "bcc",
    "actinic keratosis": "akiec",
    "dermatofibroma": "df",
    "vascular lesion": "vasc",
    "squamous cell carcinoma": "scc",
    "unknown": "unk",
}
SUPPORTED_LAYOUTS = (
    "HAM10000 (HAM10000_metadata.csv + images)",
    "ISIC 2018/2019 Task 3 (*GroundTruth.csv + *_Input/ images)",
    "ISIC 2020 (train.csv with image_name,target + jpeg/ or train/ images)",
    "class folders (ROOT/<class>/*.jpg, optionally under train/ and test/; melanoma, malignant and mel are positive)",
)
MAX_LISTED_PROBLEMS = 10
VERIFY_THREADS = 8


class DatasetError(ValueError):
    """A folder that cannot be read as a labelled dataset; the message says what and where."""

    def __init__(self, message: str, problems: Sequence[BadImage] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 1 melanoma, 0 anything else
    dx: str | None  # diagnosis code when the layout has one ("mel", "nv", ...)
    group: str  # lesion / patient id, prefixed with the source so groups never collide across datasets
    source: str
    part: str | None = None  # the dataset's own split column ("train", "valid", "test"), when it has one


@dataclass(frozen=True)
class DataFolder:
    """A labelled folder, optionally limited to some parts of its `split` column."""

    root: Path
    parts: tuple[str, ...] | None = None  # None: every image

    @classmethod
    def parse(cls, text: str | Path) -> DataFolder:
        """ "DIR" or "DIR:part,part" (e.g. "../shared/derm/isic2017:train,valid")."""
        text = str(text)
        folder, sep, suffix = text.rpartition(":")
        # Only a suffix that looks like part names is one: "C:/data" or a folder named "a:b/c" stays a path.
        if sep and folder and re.fullmatch(r"[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*", suffix) and not Path(text).exists():
            return cls(Path(folder), tuple(part.strip().lower() for part in suffix.split(",")))
        return cls(Path(text))

    def __str__(self) -> str:
        return f"{self.root}:{','.join(self.parts)}" if self.parts else str(self.root)


@dataclass(frozen=True)
class BadImage:
    image: str  # the image id or path as the dataset names it
    reason: str

    def __str__(self) -> str:
        return f"{self.image}: {self.reason}"


@dataclass
class Dataset:
    samples: list[Sample]
    layouts: dict[str, str] = field(default_factory=dict)  # source name -> layout
    roots: dict[str, Path] = field(default_factory=dict)  # source name -> folder
    skipped: list[BadImage] = field(default_factory=list)
    parts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source name -> parts kept (when limited)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def n_melanoma(self) -> int:
        return sum(sample.label for sample in self.samples)

    @property
    def labels(self) -> list[int]:
        return [sample.label for sample in self.samples]

    def summary(self) -> str:
        parts = [
            f"{source}{':' + ','.join(self.parts[source]) if source in self.parts else ''} "
            f"({self.layouts[source]}): {count} images, "
            f"{sum(s.label for s in self.samples if s.source == source)} melanoma"
            for source, count in Counter(sample.source for sample in self.samples).items()
        ]
        text = "; ".join(parts) or "no images"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} bad images"
        return text

    def skipped_report(self) -> str:
        return format_problems(self.skipped, heading=f"Skipped {len(self.skipped)} bad images")


def format_problems(problems: Sequence[BadImage], *, heading: str, limit: int = MAX_LISTED_PROBLEMS) -> str:
    lines = [f"{heading}:"] + [f"  - {problem}" for problem in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Entry:
    """One labelled image as the layout lists it, before its file has been found and checked."""

    image: str
    label: int
    dx: str | None
    group: str
    path: Path | None = None  # known up front for class folders
    part: str | None = None


class _ImageIndex:
    """Every image file below a folder, by file stem (the image id the CSV layouts use)."""

    def __init__(self, root: Path) -> None:
        self.by_stem: dict[str, list[Path]] = defaultdict(list)
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                    self.by_stem[os.path.splitext(name)[0]].append(Path(directory) / name)


def load_dataset(root: Path | DataFolder, *, skip_bad: bool = False) -> Dataset:
    """Read one labelled folder in any supported layout."""
    return load_datasets([root], skip_bad=skip_bad)


def load_datasets(roots: Iterable[Path | DataFolder], *, skip_bad: bool = False) -> Dataset:
    """Read several labelled folders into one dataset; duplicates are also checked across folders."""
    folders = [root if isinstance(root, DataFolder) else DataFolder(Path(root)) for root in roots]
    roots = [folder.root for folder in folders]
    if not roots:
        raise DatasetError("No dataset folder given.")
    per_source: list[tuple[str, str, Path, list[_Entry], _ImageIndex]] = []
    used_names: set[str] = set()
    parts_of: dict[str, tuple[str, ...]] = {}
    for folder in folders:
        layout, entries, index = _read_layout(folder.root)
        source = _unique_source_name(folder.root, used_names)
        if folder.parts is not None:
            entries = _select_parts(folder, entries)
            parts_of[source] = folder.parts
        per_source.append((source, layout, folder.root, entries, index))

    problems: list[BadImage] = []
    located: list[tuple[str, _Entry, Path]] = []
    for source, _layout, root, entries, index in per_source:
        _locate_entries(source, root, entries, index, located=located, problems=problems)

    with ThreadPoolExecutor(max_workers=VERIFY_THREADS) as pool:
        checks = list(pool.map(_check_image, [path for _, _, path in located]))

    samples: list[Sample] = []
    first_with_digest: dict[str, Path] = {}
    for (source, entry, path), (digest, error) in zip(located, checks, strict=True):
        if error is not None:
            problems.append(BadImage(str(path), error))
            continue
        if digest in first_with_digest:
            problems.append(BadImage(str(path), f"duplicate: same content as {first_with_digest[digest]}"))
            continue
        first_with_digest[digest] = path
        samples.append(
            Sample(
                path=path,
                label=entry.label,
                dx=entry.dx,
                group=f"{source}/{entry.group}",
                source=source,
                part=entry.part,
            )
        )

    layouts = {source: layout for source, layout, *_ in per_source}
    folders = {source: root for source, _, root, *_ in per_source}
    if problems and not skip_bad:
        where = ", ".join(str(root) for root in roots)
        raise DatasetError(
            format_problems(problems, heading=f"{len(problems)} bad images in {where}")
            + "\nFix or remove them, or skip them (skip_bad / --skip-bad) to leave them out.",
            problems,
        )
    if not samples:
        raise DatasetError(f"No usable images in {', '.join(str(root) for root in roots)}.", problems)
    return Dataset(samples=samples, layouts=layouts, roots=folders, skipped=problems, parts=parts_of)


def _select_parts(folder: DataFolder, entries: list[_Entry]) -> list[_Entry]:
    present = sorted({entry.part for entry in entries if entry.part is not None})
    if not present:
        raise DatasetError(f"{folder}: {folder.root} has no split column, so parts cannot be chosen; drop ':...'.")
    unknown = [part for part in folder.parts or () if part not in present]
    if unknown:
        raise DatasetError(f"{folder}: no part named {', '.join(unknown)}; this folder has {', '.join(present)}.")
    return [entry for entry in entries if entry.part in (folder.parts or ())]


def select_part(dataset: Dataset, part: str) -> Dataset:
    """Only the images whose split column equals `part` (evaluate_model --subset)."""
    present = sorted({sample.part for sample in dataset.samples if sample.part is not None})
    if not present:
        raise DatasetError(f"--subset {part}: the data has no split column to select from.")
    samples = [sample for sample in dataset.samples if sample.part == part]
    if not samples:
        raise DatasetError(f"--subset {part}: no image is in that part; the data has {', '.join(present)}.")
    return Dataset(
        samples=samples,
        layouts=dataset.layouts,
        roots=dataset.roots,
        skipped=dataset.skipped,
        parts={source: (part,) for source in dataset.roots},
    )


def _locate_entries(
    source: str,
    root: Path,
    entries: list[_Entry],
    index: _ImageIndex,
    *,
    located: list[tuple[str, _Entry, Path]],
    problems: list[BadImage],
) -> None:
    """Find each listed image's file; what is listed twice, missing or ambiguous goes to `problems`."""
    seen_ids: set[str] = set()
    for entry in entries:
        if entry.image in seen_ids:
            problems.append(BadImage(f"{source}/{entry.image}", "listed twice"))
            continue
        seen_ids.add(entry.image)
        if entry.path is not None:
            located.append((source, entry, entry.path))
            continue
        candidates = index.by_stem.get(entry.image, [])
        if not candidates:
            problems.append(BadImage(f"{source}/{entry.image}", f"missing: no image file named so below {root}"))
        elif len(candidates) > 1:
            places = ", ".join(str(path.relative_to(root)) for path in candidates[:3])
            problems.append(BadImage(f"{source}/{entry.image}", f"duplicate: {len(candidates)} files ({places})"))
        else:
            located.append((source, entry, candidates[0]))


def _unique_source_name(root: Path, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name) or "data"
    name, counter = base, 2
    while name in used:
        name, counter = f"{base}-{counter}", counter + 1
    used.add(name)
    return name


def _check_image(path: Path) -> tuple[str, str | None]:
    """Content digest (for duplicate detection) and, if the file is unusable, why."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return "", f"unreadable: {error.strerror or error}"
    if not data:
        return "", "unreadable: empty file"
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        # Opened as training will decode it (lesion_model.decode): an animation or an absurd size is caught here,
        # not halfway through training. verify() checks the data without decoding the pixels.
        with open_image(data) as image:
            image.verify()
    except (ImageError, OSError, SyntaxError, ValueError) as error:
        return digest, f"unreadable: not a valid image ({error})"
    return digest, None


# Layout detection -----------------------------------------------------------------------------------------------


def _read_layout(root: Path) -> tuple[str, list[_Entry], _ImageIndex]:
    if not root.exists():
        raise DatasetError(f"Dataset folder {root} does not exist.")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder.")
    if not any(True for _ in root.iterdir()):
        raise DatasetError(f"Dataset folder {root} is empty.")

    csv_files = _find_csv_files(root)
    by_name = {path.name: path for path in reversed(csv_files)}  # shallowest wins
    if "HAM10000_metadata.csv" in by_name:
        return "ham10000", _read_ham10000(by_name["HAM10000_metadata.csv"]), _ImageIndex(root)
    ground_truths = [path for path in csv_files if path.name.endswith("GroundTruth.csv")]
    if ground_truths:
        return "isic-task3", _read_isic_task3(ground_truths, csv_files), _ImageIndex(root)
    if "train.csv" in by_name and "image_name" in _csv_header(by_name["train.csv"]):
        return "isic-2020", _read_isic2020(by_name["train.csv"]), _ImageIndex(root)
    entries = _read_class_folders(root)
    if entries:
        return "class-folders", entries, _ImageIndex(root)
    raise DatasetError(
        f"Unknown dataset layout in {root}. Supported layouts:\n"
        + "\n".join(f"  - {name}" for name in SUPPORTED_LAYOUTS)
    )


def _find_csv_files(root: Path, max_depth: int = 2) -> list[Path]:
    """CSV files at most `max_depth` folders down, shallowest first (a dataset may be unpacked one level deep)."""
    found: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        depth = len(Path(directory).relative_to(root).parts)
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")) if depth < max_depth else []
        found.extend(Path(directory) / name for name in sorted(files) if name.lower().endswith(".csv"))
    return sorted(found, key=lambda path: (len(path.relative_to(root).parts), str(path)))


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [column.strip() for column in next(csv.reader(handle), [])]


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [column.strip() for column in reader.fieldnames or []]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"Cannot read {path}: {error}") from error
    missing = [column for column in required if column not in header]
    if missing:
        raise DatasetError(f"{path} lacks the column(s) {', '.join(missing)} (has: {', '.join(header) or 'nothing'}).")
    if not rows:
        raise DatasetError(f"{path} lists no images.")
    return rows


def _read_ham10000(metadata: Path) -> list[_Entry]:
    rows = _read_csv(metadata, ("lesion_id", "image_id", "dx"))
    return [
        _Entry(
            image=row["image_id"],
            label=int(row["dx"].lower() == "mel"),
            dx=row["dx"].lower() or None,
            group=row["lesion_id"] or row["image_id"],
        )
        for row in rows
    ]


def _read_isic_task3(ground_truths: list[Path], csv_files: list[Path]) -> list[_Entry]:
    # ISIC 2018 ships LesionGroupings.csv, 2019 Metadata.csv: both map image -> lesion_id.
    lesion_of: dict[str, str] = {}
    for path in csv_files:
        header = _csv_header(path)
        if path not in ground_truths and "image" in header and "lesion_id" in header:
            lesion_of.update({row["image"]: row["lesion_id"] for row in _read_csv(path, ("image", "lesion_id"))})
    entries: list[_Entry] = []
    for path in ground_truths:
        rows = _read_csv(path, ("image", "MEL"))
        columns = [column for column in ISIC_TASK3_COLUMNS if column in rows[0]]
        for row in rows:
            try:
                hot = [column for column in columns if float(row[column] or 0) >= 0.5]
            except ValueError as error:
                raise DatasetError(f"{path}: image {row['image']} has a non-numeric label ({error}).") from error
            if len(hot) != 1:
                raise DatasetError(f"{path}: image {row['image']} must have exactly one diagnosis column set to 1.")
            entries.append(
                _Entry(
                    image=row["image"],
                    label=int(hot[0] == "MEL"),
                    dx=hot[0].lower(),
                    group=lesion_of.get(row["image"]) or row["image"],
                )
            )
    return entries


def _read_isic2020(train_csv: Path) -> list[_Entry]:
    header = _csv_header(train_csv)
    label_column = next((c for c in ("target", "benign_malignant", "diagnosis") if c in header), None)
    if label_column is None:
        raise DatasetError(f"{train_csv} has no label column (target, benign_malignant or diagnosis).")
    entries: list[_Entry] = []
    for row in _read_csv(train_csv, ("image_name", label_column)):
        value = row[label_column].lower()
        if label_column == "target":
            if value not in {"0", "1", "0.0", "1.0"}:
                raise DatasetError(f"{train_csv}: image {row['image_name']} has target {value!r}, expected 0 or 1.")
            label = int(float(value))
        else:
            label = int(value in {"malignant", "melanoma"})
        diagnosis = row.get("diagnosis", "").lower()
        entries.append(
            _Entry(
                image=row["image_name"],
                label=label,
                dx=ISIC2020_DX_CODES.get(diagnosis, diagnosis) or None,
                group=row.get("patient_id") or row["image_name"],
                part=row.get("split", "").lower() or None,
            )
        )
    return entries


def _read_class_folders(root: Path) -> list[_Entry]:
    subfolders = [path for path in sorted(root.iterdir()) if path.is_dir() and not path.name.startswith(".")]
    split_folders = [path for path in subfolders if path.name.lower() in SPLIT_FOLDERS]
    class_parents = split_folders or [root]
    entries: list[_Entry] = []
    for parent in class_parents:
        for class_dir in sorted(parent.iterdir()):
            if not class_dir.is_dir() or class_dir.name.startswith(".") or class_dir.name.lower() in SPLIT_FOLDERS:
                continue
            class_name = class_dir.name.lower()
            for path in sorted(class_dir.rglob("*")):
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file() and not path.name.startswith("."):
                    image_id = str(path.relative_to(root))
                    entries.append(
                        _Entry(
                            image=image_id,
                            label=int(class_name in POSITIVE_CLASS_FOLDERS),
                            dx=class_name,
                            group=image_id,
                            path=path,
                        )
                    )
    return entries
