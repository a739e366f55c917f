import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.derm_fixtures import (
    make_class_folders,
    make_ham10000,
    make_isic2020,
    make_isic_task3,
    write_csv,
    write_image,
)
from training.datasets import DatasetError, load_dataset, load_datasets

SHARED_DERM = Path(__file__).resolve().parents[2].parent / "shared" / "derm"


def test_ham10000_official_layout_with_two_image_parts(tmp_path):
    root = make_ham10000(tmp_path / "ham", n_lesions=10, images_per_lesion=2)

    dataset = load_dataset(root)

    assert dataset.layouts == {"ham": "ham10000"}
    assert len(dataset) == 20
    assert dataset.n_melanoma == 4  # lesions 0 and 5 are "mel", two images each
    assert {sample.path.parent.name for sample in dataset.samples} == {
        "HAM10000_images_part_1",
        "HAM10000_images_part_2",
    }
    melanoma = [sample for sample in dataset.samples if sample.label == 1]
    assert {sample.dx for sample in melanoma} == {"mel"}
    assert Counter(sample.group for sample in dataset.samples)["ham/HAM_0000000"] == 2
    assert all(sample.source == "ham" for sample in dataset.samples)
    assert dataset.skipped == []


def test_ham10000_found_one_folder_down(tmp_path):
    make_ham10000(tmp_path / "download" / "HAM10000", n_lesions=5, images_per_lesion=1)

    dataset = load_dataset(tmp_path / "download")

    assert len(dataset) == 5
    assert dataset.layouts == {"download": "ham10000"}


def test_isic_2018_task3_ground_truth(tmp_path):
    root = make_isic_task3(tmp_path / "isic2018", year=2018, n_images=9)

    dataset = load_dataset(root)

    assert dataset.layouts == {"isic2018": "isic-task3"}
    assert len(dataset) == 9
    by_name = {sample.path.stem: sample for sample in dataset.samples}
    assert by_name["ISIC_0000100"].label == 1
    assert by_name["ISIC_0000100"].dx == "mel"
    assert by_name["ISIC_0000101"].label == 0
    assert by_name["ISIC_0000101"].dx == "nv"
    assert by_name["ISIC_0000107"].dx == "mel"  # the 8th row wraps around to MEL again
    assert dataset.n_melanoma == 2
    # Without a lesion-grouping file every image is its own group.
    assert by_name["ISIC_0000103"].group == "isic2018/ISIC_0000103"
    assert all(sample.path.parent.name == "ISIC2018_Task3_Training_Input" for sample in dataset.samples)


def test_isic_2018_lesion_groupings_become_groups(tmp_path):
    root = make_isic_task3(tmp_path / "isic2018", year=2018, n_images=4, with_groupings=True)

    groups = {sample.path.stem: sample.group for sample in load_dataset(root).samples}

    assert groups["ISIC_0000100"] == groups["ISIC_0000101"] == "isic2018/IL_0000000"
    assert groups["ISIC_0000102"] == "isic2018/IL_0000001"


def test_isic_2019_float_one_hot_with_scc_and_unk(tmp_path):
    root = make_isic_task3(tmp_path / "isic2019", year=2019, n_images=9)

    dataset = load_dataset(root)

    assert len(dataset) == 9
    assert sorted(sample.dx for sample in dataset.samples) == sorted(
        ["mel", "nv", "bcc", "akiec", "bkl", "df", "vasc", "scc", "unk"]
    )
    assert dataset.n_melanoma == 1


def test_isic_2019_row_without_a_diagnosis_is_an_error(tmp_path):
    root = make_isic_task3(tmp_path / "isic2019", year=2019, n_images=2)
    gt = root / "ISIC_2019_Training_GroundTruth.csv"
    gt.write_text(gt.read_text().replace("ISIC_0000100,1.0", "ISIC_0000100,0.0"))

    with pytest.raises(DatasetError, match="ISIC_0000100 must have exactly one diagnosis"):
        load_dataset(root)


@pytest.mark.parametrize("image_folder", ["jpeg", "train"])
def test_isic_2020_layout(tmp_path, image_folder):
    root = make_isic2020(tmp_path / "isic2020", n_images=8, image_folder=image_folder)

    dataset = load_dataset(root)

    assert dataset.layouts == {"isic2020": "isic-2020"}
    assert len(dataset) == 8
    assert dataset.n_melanoma == 3  # indices 0, 3, 6
    by_name = {sample.path.stem: sample for sample in dataset.samples}
    assert by_name["ISIC_0000200"].label == 1
    assert by_name["ISIC_0000200"].dx == "mel"
    assert by_name["ISIC_0000201"].label == 0
    assert by_name["ISIC_0000201"].dx == "nv"
    assert by_name["ISIC_0000200"].group == by_name["ISIC_0000201"].group == "isic2020/IP_0000000"


def test_isic_2020_without_patient_ids_groups_by_image(tmp_path):
    root = make_isic2020(tmp_path / "isic", n_images=4, with_patients=False)

    groups = {sample.group for sample in load_dataset(root).samples}

    assert groups == {f"isic/ISIC_{200 + index:07d}" for index in range(4)}


def test_class_folders_flat(tmp_path):
    root = make_class_folders(tmp_path / "folders", classes={"melanoma": 2, "MEL": 1, "malignant": 1, "nevus": 3})

    dataset = load_dataset(root)

    assert dataset.layouts == {"folders": "class-folders"}
    assert len(dataset) == 7
    assert dataset.n_melanoma == 4
    assert {sample.dx for sample in dataset.samples if sample.label == 0} == {"nevus"}
    assert len({sample.group for sample in dataset.samples}) == 7


def test_class_folders_under_train_and_test(tmp_path):
    root = make_class_folders(tmp_path / "folders", classes={"benign": 3, "malignant": 2}, splits=("train", "test"))

    dataset = load_dataset(root)

    assert len(dataset) == 10
    assert dataset.n_melanoma == 4
    assert {sample.path.parts[-3] for sample in dataset.samples} == {"train", "test"}


def test_missing_image_is_listed(tmp_path):
    root = make_ham10000(tmp_path / "ham", n_lesions=4, images_per_lesion=1)
    (root / "HAM10000_images_part_2" / "ISIC_0000010.jpg").unlink()

    with pytest.raises(DatasetError) as error:
        load_dataset(root)

    message = str(error.value)
    assert "1 bad images" in message
    assert "ham/ISIC_0000010: missing" in message
    assert "--skip-bad" in message


def test_skip_bad_leaves_out_and_reports_missing_and_corrupt(tmp_path):
    root = make_ham10000(tmp_path / "ham", n_lesions=4, images_per_lesion=1)
    (root / "HAM10000_images_part_2" / "ISIC_0000010.jpg").unlink()
    corrupt = root / "HAM10000_images_part_1" / "ISIC_0000020.jpg"
    corrupt.write_bytes(b"this is not a jpeg")

    dataset = load_dataset(root, skip_bad=True)

    assert len(dataset) == 2
    assert {sample.path.stem for sample in dataset.samples} == {"ISIC_0000000", "ISIC_0000030"}
    reasons = {bad.image: bad.reason for bad in dataset.skipped}
    assert reasons["ham/ISIC_0000010"].startswith("missing")
    assert reasons[str(corrupt)].startswith("unreadable")
    assert "Skipped 2 bad images" in dataset.skipped_report()


def test_corrupt_and_empty_files_are_errors(tmp_path):
    root = make_class_folders(tmp_path / "folders", classes={"melanoma": 2, "nevus": 2})
    (root / "nevus" / "img_0.png").write_bytes(b"")
    (root / "melanoma" / "img_1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    with pytest.raises(DatasetError) as error:
        load_dataset(root)

    message = str(error.value)
    assert "2 bad images" in message
    assert "img_0.png: unreadable: empty file" in message
    assert "img_1.png: unreadable: not a valid image" in message


def test_duplicate_content_is_an_error(tmp_path):
    root = make_class_folders(tmp_path / "folders", classes={"melanoma": 2, "nevus": 2})
    shutil.copy(root / "nevus" / "img_0.png", root / "nevus" / "copy.png")

    with pytest.raises(DatasetError) as error:
        load_dataset(root)
    # Files are read in sorted order, so copy.png is the original and img_0.png the duplicate.
    assert "img_0.png: duplicate: same content as" in str(error.value)
    assert "copy.png" in str(error.value)
    assert len(load_dataset(root, skip_bad=True)) == 4


def test_same_image_id_in_two_folders_is_an_error(tmp_path):
    root = make_ham10000(tmp_path / "ham", n_lesions=2, images_per_lesion=1)
    write_image(root / "HAM10000_images_part_2" / "ISIC_0000000.jpg", seed=999)

    with pytest.raises(DatasetError, match="ISIC_0000000: duplicate: 2 files"):
        load_dataset(root)


def test_image_listed_twice_in_csv_is_an_error(tmp_path):
    root = make_ham10000(tmp_path / "ham", n_lesions=2, images_per_lesion=1)
    metadata = root / "HAM10000_metadata.csv"
    lines = metadata.read_text().splitlines()
    metadata.write_text("\n".join([*lines, lines[1]]) + "\n")

    with pytest.raises(DatasetError, match="ISIC_0000000: listed twice"):
        load_dataset(root)


def test_long_problem_lists_are_truncated_with_a_count(tmp_path):
    root = make_ham10000(tmp_path / "ham", n_lesions=15, images_per_lesion=1)
    for image in (root / "HAM10000_images_part_1").glob("*.jpg"):
        image.unlink()
    for image in (root / "HAM10000_images_part_2").glob("*.jpg"):
        image.unlink()

    with pytest.raises(DatasetError) as error:
        load_dataset(root)

    assert "15 bad images" in str(error.value)
    assert "... and 5 more" in str(error.value)
    assert len(error.value.problems) == 15


def test_missing_csv_column_is_named(tmp_path):
    root = tmp_path / "ham"
    write_image(root / "HAM10000_images" / "ISIC_0000001.jpg", seed=1)
    write_csv(root / "HAM10000_metadata.csv", ["lesion_id", "image_id"], [["HAM_1", "ISIC_0000001"]])

    with pytest.raises(DatasetError, match="lacks the column\\(s\\) dx"):
        load_dataset(root)


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match=f"Dataset folder {tmp_path} is empty"):
        load_dataset(tmp_path)


def test_folder_that_does_not_exist(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope")


def test_unknown_layout_names_the_supported_ones(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    write_image(tmp_path / "loose.jpg", seed=1)

    with pytest.raises(DatasetError) as error:
        load_dataset(tmp_path)

    message = str(error.value)
    assert f"Unknown dataset layout in {tmp_path}" in message
    for layout in ("HAM10000", "ISIC 2018/2019", "ISIC 2020", "class folders"):
        assert layout in message


def test_several_folders_combine_with_distinct_groups(tmp_path):
    ham = make_ham10000(tmp_path / "ham", n_lesions=3, images_per_lesion=1)
    isic = make_isic2020(tmp_path / "isic", n_images=4)

    dataset = load_datasets([ham, isic])

    assert len(dataset) == 7
    assert dataset.layouts == {"ham": "ham10000", "isic": "isic-2020"}
    assert {sample.group.split("/")[0] for sample in dataset.samples} == {"ham", "isic"}
    assert "ham (ham10000): 3 images" in dataset.summary()


def test_folders_with_the_same_name_get_distinct_sources(tmp_path):
    first = make_class_folders(tmp_path / "a" / "data", classes={"melanoma": 1, "nevus": 1})
    second = make_isic2020(tmp_path / "b" / "data", n_images=2)

    dataset = load_datasets([first, second])

    assert set(dataset.layouts) == {"data", "data-2"}


def test_duplicates_across_folders_are_caught(tmp_path):
    ham = make_ham10000(tmp_path / "ham", n_lesions=2, images_per_lesion=1)
    folders = tmp_path / "folders"
    (folders / "nevus").mkdir(parents=True)
    shutil.copy(ham / "HAM10000_images_part_1" / "ISIC_0000000.jpg", folders / "nevus" / "again.jpg")

    with pytest.raises(DatasetError, match="again.jpg: duplicate: same content"):
        load_datasets([ham, folders])


@pytest.mark.skipif(not (SHARED_DERM / "isic-sample").is_dir(), reason="../shared/derm is absent")
def test_real_isic_sample():
    dataset = load_dataset(SHARED_DERM / "isic-sample")

    assert (len(dataset), dataset.n_melanoma) == (150, 50)
