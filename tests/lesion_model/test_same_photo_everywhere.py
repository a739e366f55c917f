"""One photo, the model inputs of production and of training: they must match.

Production: the upload service checks the photo and stores it (classifier.images): a JPEG up to the keep limit
as taken, its metadata stripped without decoding, anything else as a clean re-encoded JPEG; the worker
preprocesses that stored file with the active model's settings (MelanomaScorer.preprocess, which
classifier.inference calls). Training: the dataset loader reads the original file (training.datasets) and the
shipped recipe's feature extraction turns it into model inputs (training.features.extract).

A photo kept as taken gives bit-identical inputs. A re-encoded one cannot: the stored copy is a re-encoded JPEG
(quality 85) of a LANCZOS-downscaled picture, which the worker decodes at its own JPEG draft scale, while
training decodes the original at another.
Measured on the six ../shared/derm/uploads photos: mean |difference| 0.45-0.6 of an 8-bit level, 99th
percentile ~2 levels, worst pixel 4-11 levels (hair edges); on the generated photos 0.5-0.65, 2.2-2.3, and
17 at the red corner's sharp edge. The tolerances below (mean 1, 99th percentile 4)
hold that with margin, yet fail on any real divergence: a missed EXIF rotation, an ICC profile converted on
one side only or 16-bit scaled differently moves the mean by tens of levels.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import ExifTags, Image

from classifier.images import image_prepare_upload
from lesion_model.decode import decode_image
from lesion_model.preprocessing import IMAGENET_STD, load_image
from lesion_model.scorer import MelanomaScorer
from tests.conftest import SHARED_UPLOADS, encode_image, lesion_pixels
from tests.lesion_model.icc import swapped_primaries_profile
from training.datasets import load_dataset
from training.features import extract

MEAN_LEVELS_TOLERANCE = 1.0
P99_LEVELS_TOLERANCE = 4.0


def _real_or_generated_photo() -> bytes:
    photos = sorted(SHARED_UPLOADS.glob("*.jpg")) if SHARED_UPLOADS.is_dir() else []
    if photos:
        return photos[0].read_bytes()
    return encode_image(Image.fromarray(lesion_pixels(3072, 2304)), "JPEG", quality=92)


def _phone_tagged_photo() -> bytes:
    """What a phone writes: stored sideways with an EXIF rotation, and tagged with a non-sRGB ICC profile."""
    upright = lesion_pixels(1200, 1600, seed=3)
    upright[:400, :300] = (230, 40, 40)  # a red corner: shows which way is up and which colour space
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # orientation 6 undoes this
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    return encode_image(stored, "JPEG", quality=92, exif=exif, icc_profile=swapped_primaries_profile())


def _levels(difference: np.ndarray) -> np.ndarray:
    """A model-input difference in 8-bit levels (torch normalisation divides x/255 by the channel's std)."""
    return np.abs(difference) * 255.0 * np.asarray(IMAGENET_STD, dtype=np.float32)


@pytest.mark.parametrize("kept", [True, False], ids=["kept-as-taken", "re-encoded"])
@pytest.mark.parametrize("make_photo", [_real_or_generated_photo, _phone_tagged_photo], ids=["photo", "phone-tagged"])
def test_upload_and_worker_see_what_training_sees(make_photo, kept, model_dir, tmp_path, settings):
    photo = make_photo()
    scorer = MelanomaScorer(model_dir)  # the served model's input size and normalisation
    assert scorer.normalisation.name == "imagenet_torch"
    if not kept:
        settings.MELANOMA_KEEP_ORIGINAL_MAX_BYTES = 0

    prepared = image_prepare_upload(photo)
    assert (prepared.thumbnail is None) == kept
    stored_copy = prepared.jpeg
    served = scorer.preprocess(stored_copy)

    original = tmp_path / "data" / "melanoma" / "photo.jpg"
    original.parent.mkdir(parents=True)
    original.write_bytes(photo)
    samples = load_dataset(tmp_path / "data").samples
    flattened = extract(
        lambda model_input: model_input.reshape(-1),
        samples,
        image_size=scorer.input_size,
        normalisation=scorer.normalisation,
    )
    trained = flattened[0, 0].reshape(served.shape)

    if kept:
        np.testing.assert_array_equal(served, trained)
    levels = _levels(served - trained)
    assert levels.mean() < MEAN_LEVELS_TOLERANCE
    assert np.percentile(levels, 99) < P99_LEVELS_TOLERANCE
    # Training reads the original file exactly as the worker would read it.
    np.testing.assert_array_equal(trained, scorer.preprocess(original))


def test_phone_photo_is_upright_and_srgb_on_both_sides(tmp_path):
    """The comparison above would pass if both sides forgot the rotation or the profile; this one would not."""
    photo = _phone_tagged_photo()
    path = tmp_path / "photo.jpg"
    path.write_bytes(photo)
    # Kept as taken, with its orientation and colour profile (and nothing else): browsers and the worker's decode
    # turn it upright and into sRGB.
    stored_bytes = image_prepare_upload(photo).jpeg
    with Image.open(io.BytesIO(stored_bytes)) as kept:
        assert kept.info["icc_profile"] == swapped_primaries_profile()
        assert dict(kept.getexif()) == {ExifTags.Base.Orientation: 6}
    stored = decode_image(stored_bytes)
    assert stored.height > stored.width  # upright: portrait, as the picture was taken
    for image in (stored, load_image(path, 64)):  # the stored photo as shown; training's (and the worker's) decode
        corner = np.asarray(image.convert("RGB"), dtype=np.float64)[: image.height // 8, : image.width // 8]
        red, _, blue = corner.reshape(-1, 3).mean(axis=0)
        assert blue > 150 > red  # stored red under a red<->blue profile is blue in sRGB
