"""Tiny labelled datasets in every supported layout, generated per test (tests never need ../shared).

Each image is distinct noise (the readers reject duplicate content); melanoma images are darker so a model
trained on them has something to learn.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lesion_model.preprocessing import Normalisation
from training.model_card import write_model_card

ISIC_2018_COLUMNS = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
ISIC_2019_COLUMNS = [*ISIC_2018_COLUMNS, "SCC", "UNK"]


def write_image(path: Path, *, seed: int, melanoma: bool = False, size: int = 32) -> Path:
    """A small, unique RGB image (JPEG or PNG by suffix)."""
    rng = np.random.default_rng(seed)
    base = np.array([70, 40, 30] if melanoma else [200, 150, 130], dtype=np.int16)
    pixels = np.clip(base + rng.integers(-40, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
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


_TINY_MODEL_SCRIPT = """
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

out, size = Path(sys.argv[1]), int(sys.argv[2])
inputs = keras.Input((size, size, 3))
pooled = keras.layers.GlobalAveragePooling2D()(inputs)
outputs = keras.layers.Dense(2, activation="softmax")(pooled)
model = keras.Model(inputs, outputs)
# Melanoma logit = -2 x (sum of normalised channel means): dark lesions score high, pale skin low.
model.layers[-1].set_weights([np.array([[0.0, -2.0]] * 3, dtype=np.float32), np.zeros(2, dtype=np.float32)])
out.mkdir(parents=True, exist_ok=True)
(out / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
"""


def build_tiny_model_dir(
    model_dir: Path, *, version: str = "tiny-test", input_size: int = 32, threshold: float = 0.5
) -> Path:
    """A real LiteRT model folder (model.tflite + card) that separates the fixture images above perfectly.

    Built in a subprocess so that TensorFlow is never imported into the test process (a forked Celery worker
    inheriting TensorFlow state hangs).
    """
    subprocess.run(
        [sys.executable, "-c", _TINY_MODEL_SCRIPT, str(model_dir), str(input_size)],
        check=True,
        capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    write_model_card(
        model_dir,
        {
            "version": version,
            "created": "2026-01-01T00:00:00+00:00",
            "input_size": input_size,
            "threshold": threshold,
            "normalisation": Normalisation().to_card(),
            "metrics": {},
            "split": {"seed": 0, "val_fraction": 0.5},
        },
    )
    return model_dir


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
