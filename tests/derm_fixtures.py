"""Tiny labelled datasets in every supported layout, generated per test (tests never need ../shared).

Each image is a synthetic lesion with its own noise (the readers reject duplicate content); melanoma images are
darker so that a model trained on them has something to learn, and the tiny test model (`tiny_model` in
tests/conftest.py) separates them perfectly.
"""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image

from bench.synthetic import lesion_pixels

ISIC_2018_COLUMNS = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
ISIC_2019_COLUMNS = [*ISIC_2018_COLUMNS, "SCC", "UNK"]


def write_image(path: Path, *, seed: int, melanoma: bool = False, size: int = 32) -> Path:
    """A small, unique synthetic lesion photo (JPEG or PNG by suffix); melanoma ones are darker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(lesion_pixels(size, size, seed, darkness=0.6 if melanoma else 0.0)).save(path)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_ham10000(root: Path, *, n_lesions: int = 10, images_per_lesion: int = 2, seed: int = 0) -> Path:
    """Official release layout: images spread over HAM10000_images_part_1/ and _part_2/."""
    dxs = ["mel", "nv", "bkl", "bcc", "nv"]
    rows = []
    for lesion in range(n_lesions):
        dx = dxs[lesion % len(dxs)]
        for copy in range(images_per_lesion):
            image_id = f"ISIC_{lesion * 10 + copy:07d}"
            part = "HAM10000_images_part_1" if lesion % 2 == 0 else "HAM10000_images_part_2"
            write_image(root / part / f"{image_id}.jpg", seed=seed * 10_000 + lesion * 10 + copy, melanoma=dx == "mel")
            rows.append([f"HAM_{lesion:07d}", image_id, dx, "histo", 50.0, "female", "back"])
    write_csv(
        root / "HAM10000_metadata.csv", ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"], rows
    )
    return root


def make_isic_task3(root: Path, *, year: int = 2018, n_images: int = 9, with_groupings: bool = False) -> Path:
    columns = ISIC_2018_COLUMNS if year == 2018 else ISIC_2019_COLUMNS
    prefix = "ISIC2018_Task3_Training" if year == 2018 else "ISIC_2019_Training"
    rows, groupings = [], []
    for index in range(n_images):
        hot = columns[index % len(columns)]
        image = f"ISIC_{100 + index:07d}"
        write_image(root / f"{prefix}_Input" / f"{image}.jpg", seed=20_000 + index, melanoma=hot == "MEL")
        # 2019 writes floats ("1.0"), 2018 integers: both must parse.
        one_hot = [
            (1.0 if year == 2019 else 1) if column == hot else (0.0 if year == 2019 else 0) for column in columns
        ]
        rows.append([image, *one_hot])
        groupings.append([image, f"IL_{index // 2:07d}"])
    write_csv(root / f"{prefix}_GroundTruth.csv", ["image", *columns], rows)
    if with_groupings:
        write_csv(root / "ISIC2018_Task3_Training_LesionGroupings.csv", ["image", "lesion_id"], groupings)
    return root


def make_isic2020(root: Path, *, n_images: int = 8, image_folder: str = "jpeg", with_patients: bool = True) -> Path:
    header = [
        "image_name",
        "patient_id",
        "sex",
        "age_approx",
        "anatom_site_general_challenge",
        "diagnosis",
        "benign_malignant",
        "target",
    ]
    rows = []
    for index in range(n_images):
        melanoma = index % 3 == 0
        image = f"ISIC_{200 + index:07d}"
        write_image(root / image_folder / f"{image}.jpg", seed=30_000 + index, melanoma=melanoma)
        patient = f"IP_{index // 2:07d}" if with_patients else ""
        diagnosis = "melanoma" if melanoma else "nevus"
        rows.append(
            [image, patient, "male", 45, "torso", diagnosis, "malignant" if melanoma else "benign", int(melanoma)]
        )
    write_csv(root / "train.csv", header, rows)
    return root


def make_class_folders(root: Path, *, classes: dict[str, int] | None = None, splits: tuple[str, ...] = ()) -> Path:
    """ROOT/[split/]<class>/*.jpg; `classes` maps folder name -> number of images."""
    classes = classes or {"melanoma": 3, "nevus": 4}
    seed = 40_000
    for split in splits or ("",):
        for class_name, count in classes.items():
            for index in range(count):
                seed += 1
                folder = root / split / class_name if split else root / class_name
                write_image(folder / f"img_{index}.png", seed=seed, melanoma=class_name in {"melanoma", "malignant"})
    return root


def make_isic2017(root: Path, *, parts: dict[str, int] | None = None, seed: int = 50_000) -> Path:
    """ISIC 2017 as ../shared/derm/isic2017 has it: train.csv (image_name, diagnosis, target, split) + jpeg/.

    `parts` maps each split-column value to its number of images; every third image is a melanoma.
    """
    parts = parts or {"train": 9, "valid": 6, "test": 6}
    rows = []
    index = 0
    for part, count in parts.items():
        for _ in range(count):
            melanoma = index % 3 == 0
            image = f"ISIC_{seed + index:07d}"
            write_image(root / "jpeg" / f"{image}.jpg", seed=seed + index, melanoma=melanoma)
            rows.append([image, "melanoma" if melanoma else "nevus", int(melanoma), part])
            index += 1
    write_csv(root / "train.csv", ["image_name", "diagnosis", "target", "split"], rows)
    return root
