"""bench.lesion_features: the hand-made measures read what they claim on drawn lesions, views are drawn as
training.features.extract draws them, and the command writes one row per image and view."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("skimage")
pytest.importorskip("scipy")

from bench.lesion_features import FEATURE_NAMES, image_features, main, measure  # noqa: E402
from tests.derm_fixtures import make_isic2017  # noqa: E402

SKIN = (214, 170, 150)


def lesion(shape: str, colour: tuple[int, int, int] = (90, 55, 40), side: int = 256) -> np.ndarray:
    image = Image.new("RGB", (side, side), SKIN)
    draw = ImageDraw.Draw(image)
    if shape == "disc":  # radius a quarter of the side: pi / 16 of the frame
        draw.ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill=colour)
    else:  # a disc with a long lobe on one side only
        draw.ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill=colour)
        draw.polygon([(side // 2, side // 3), (side - 12, side // 2 - 10), (side // 2, 2 * side // 3)], fill=colour)
    return np.asarray(image)


def named(values: np.ndarray) -> dict[str, float]:
    assert values.shape == (len(FEATURE_NAMES),)
    assert np.isfinite(values).all()
    return dict(zip(FEATURE_NAMES, values.tolist(), strict=True))


def test_a_round_lesion_is_found_whole_and_reads_as_symmetric():
    disc = named(measure(lesion("disc")))
    assert disc["area"] == pytest.approx(np.pi / 16, abs=0.02)
    assert disc["asymmetry_major"] < 0.05
    assert disc["asymmetry_minor"] < 0.05
    assert disc["compactness"] < 1.3
    assert disc["contrast_L"] < -20  # darker than the skin around it
    assert disc["share_dark_brown"] + disc["share_light_brown"] > 0.9


def test_a_lobed_lesion_reads_as_asymmetric_and_irregular():
    disc, lobed = named(measure(lesion("disc"))), named(measure(lesion("lobed")))
    assert lobed["area"] > disc["area"]
    # the lobe lies along the major axis: its mirror image across the minor axis misses it
    assert max(lobed["asymmetry_major"], lobed["asymmetry_minor"]) > 0.08
    assert max(lobed["asymmetry_major"], lobed["asymmetry_minor"]) > 2 * max(
        disc["asymmetry_major"], disc["asymmetry_minor"]
    )
    assert lobed["compactness"] > disc["compactness"]


def test_colours_are_counted_by_their_dermoscopic_class():
    blue = named(measure(lesion("disc", colour=(95, 105, 120))))
    brown = named(measure(lesion("disc")))
    assert blue["share_blue_grey"] > 0.8 > brown["share_blue_grey"]


def test_a_frame_without_a_lesion_falls_back_to_its_middle():
    plain = named(measure(np.full((200, 200, 3), SKIN, dtype=np.uint8)))
    assert plain["area"] == pytest.approx(np.pi * 0.25**2, abs=0.01)


def test_views_are_drawn_as_the_feature_extraction_draws_them(tmp_path):
    path = tmp_path / "lesion.jpg"
    Image.fromarray(lesion("lobed")).save(path)
    both = image_features(path, 128, ("identity", "flip_horizontal", "camera", "simulated_camera"))
    assert both.shape == (4, len(FEATURE_NAMES))
    # a fixed view is a plain transform of the image; a mirror image is as asymmetric as the original
    assert both[1][FEATURE_NAMES.index("area")] == pytest.approx(both[0][FEATURE_NAMES.index("area")], abs=0.01)
    # the camera view draws from the image's own generator: the same image gives the same view every time
    again = image_features(path, 128, ("identity", "flip_horizontal", "camera"))
    np.testing.assert_array_equal(both[:3], again)
    # "simulated_camera" is extracted in a call of its own by train_model: a fresh generator, whatever came before
    alone = image_features(path, 128, ("simulated_camera",))
    np.testing.assert_array_equal(both[3], alone[0])
    assert not np.array_equal(both[2], both[3])


def test_the_command_writes_a_row_per_image_and_view(tmp_path, capsys):
    data = make_isic2017(tmp_path / "isic2017", parts={"train": 4, "valid": 2, "test": 3})
    out = tmp_path / "features" / "lesions.npz"
    assert (
        main(["--data", f"{data}:train,valid", "--image-size", "64", "--views", "identity,camera", "--out", str(out)])
        == 0
    )
    with np.load(out) as saved:
        assert saved["features"].shape == (6, 2, len(FEATURE_NAMES))
        assert [str(v) for v in saved["views"]] == ["identity", "camera"]
        assert [str(n) for n in saved["names"]] == list(FEATURE_NAMES)
        assert len(set(saved["paths"].tolist())) == 6  # the train and valid parts only, as asked
    assert "6 images x 2 views" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--views", "identity,sepia"], "unknown view sepia"),
        (["--image-size", "0"], "--image-size: must be at least 1, not 0"),
        (["--workers", "-2"], "--workers: must be at least 1, not -2"),
    ],
)
def test_bad_arguments_are_refused_before_any_image_is_read(arguments, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--data", str(tmp_path / "nowhere"), *arguments, "--out", str(tmp_path / "x.npz")])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_a_missing_data_folder_is_a_sentence(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.npz")]) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
