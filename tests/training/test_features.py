"""The default recipe's parts: training views, LiteRT feature extraction bookkeeping, the folded logistic head."""

import numpy as np
import pytest
from PIL import Image

from lesion_model.preprocessing import Normalisation, load_image, to_model_input
from tests.derm_fixtures import make_ham10000
from training.augment import zoom_out
from training.datasets import load_dataset
from training.features import RANDOM_VIEWS, VIEWS, ZOOM_OUT_SCALES, apply_view, extract
from training.linear_head import fit_logistic_head


def _lesion(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(16, 20, 3), dtype=np.uint8)
    pixels[..., 0] = np.clip(pixels[..., 0].astype(int) + 60, 0, 255)  # a reddish cast
    return pixels


def test_geometric_views_are_flips_that_keep_the_squash_direction():
    pixels = _lesion()
    assert np.array_equal(apply_view(pixels, "identity"), pixels)
    assert np.array_equal(apply_view(pixels, "flip_horizontal"), pixels[:, ::-1])
    assert np.array_equal(apply_view(pixels, "flip_vertical"), pixels[::-1])
    assert np.array_equal(apply_view(pixels, "rotate_180"), pixels[::-1, ::-1])
    for view in ("flip_horizontal", "flip_vertical", "rotate_180"):
        assert apply_view(pixels, view).shape == pixels.shape  # never a 90-degree turn of a 16x20 image


def test_colour_views():
    rng = np.random.default_rng(0)
    pixels = rng.integers(40, 150, size=(16, 20, 3), dtype=np.uint8)
    pixels[..., 0] += 40  # a reddish cast, unclipped
    constant = apply_view(pixels, "shades_of_gray").astype(float)

    def power_means(image: np.ndarray) -> np.ndarray:
        return np.mean(image.reshape(-1, 3).astype(float) ** 6, axis=0) ** (1 / 6)

    # The cast is divided out: shades-of-gray equalises the channels' 6th-power means (up to rounding).
    assert np.ptp(power_means(pixels)) > 30
    assert np.ptp(power_means(constant)) < 1.5
    pixels = _lesion()
    jittered = apply_view(pixels, "colour", np.random.default_rng(1))
    assert jittered.shape == pixels.shape
    assert jittered.dtype == np.uint8
    assert not np.array_equal(jittered, pixels)
    with pytest.raises(ValueError, match="rng"):
        apply_view(pixels, "colour")
    camera = apply_view(pixels, "camera", np.random.default_rng(1))
    assert camera.shape == pixels.shape  # the lesion smaller in a frame of skin, at the same size
    assert not np.array_equal(camera, pixels)
    with pytest.raises(ValueError, match="rng"):
        apply_view(pixels, "camera")
    with pytest.raises(ValueError, match="Unknown view 'rotate_90'"):
        apply_view(pixels, "rotate_90")
    assert set(VIEWS) >= {"identity", "shades_of_gray"}


def test_every_view_applies_and_random_ones_need_a_generator():
    pixels = _lesion()
    for view in VIEWS:
        if view in RANDOM_VIEWS:
            with pytest.raises(ValueError, match="rng"):
                apply_view(pixels, view)
            out = apply_view(pixels, view, np.random.default_rng(3))
            assert np.array_equal(out, apply_view(pixels, view, np.random.default_rng(3)))  # seeded: repeatable
        else:
            out = apply_view(pixels, view)
        assert out.shape == pixels.shape
        assert out.dtype == np.uint8


def test_zoom_out_shrinks_the_image_into_the_middle_and_mirrors_the_skin_around_it():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    shrunk = np.asarray(zoom_out(Image.fromarray(pixels), 0.6))
    inner = np.asarray(Image.fromarray(pixels).resize((24, 24), Image.Resampling.BILINEAR))
    assert shrunk.shape == pixels.shape
    assert np.array_equal(shrunk[8:32, 8:32], inner)  # centred, so the centre-pooled features still see the lesion
    assert np.array_equal(shrunk[7, 8:32], inner[1])  # the border mirrors the image, not a flat colour
    assert np.array_equal(shrunk[8:32, 32], inner[:, -2])
    assert np.array_equal(np.asarray(zoom_out(Image.fromarray(pixels), 1.0)), pixels)
    far = np.asarray(zoom_out(Image.fromarray(pixels), 0.2))  # too small to mirror: the edge is repeated instead
    assert far.shape == pixels.shape
    assert np.array_equal(far[0, 16:24], far[16, 16:24])
    for scale in (0.0, 1.5):
        with pytest.raises(ValueError, match="scale"):
            zoom_out(Image.fromarray(pixels), scale)
    # The view draws its scale from ZOOM_OUT_SCALES: the untouched border is never wider than the lowest scale leaves.
    view = apply_view(pixels, "zoom_out", np.random.default_rng(5))
    assert not np.array_equal(view, pixels)
    assert 0 < ZOOM_OUT_SCALES[0] < ZOOM_OUT_SCALES[1] < 1


def test_array_and_image_give_the_same_model_input():
    pixels = _lesion()
    for spec in (Normalisation(), Normalisation(colour_constancy="shades_of_gray", colour_constancy_strength=0.5)):
        np.testing.assert_array_equal(to_model_input(pixels, spec), to_model_input(Image.fromarray(pixels), spec))


def test_half_strength_colour_constancy_lies_between_none_and_full():
    pixels = _lesion()
    none, half, full = (
        to_model_input(pixels, Normalisation(colour_constancy=cc, colour_constancy_strength=strength))
        for cc, strength in (("none", 1.0), ("shades_of_gray", 0.5), ("shades_of_gray", 1.0))
    )
    red = (none[..., 0].mean(), half[..., 0].mean(), full[..., 0].mean())
    assert red[0] > red[1] > red[2]
    card = Normalisation(colour_constancy="shades_of_gray", colour_constancy_strength=0.5).to_card()
    assert Normalisation.from_card(card).colour_constancy_strength == 0.5
    assert (
        Normalisation.from_card({"name": "imagenet_torch", "colour_constancy": "none"}).colour_constancy_strength == 1
    )
    with pytest.raises(ValueError, match="strength"):
        Normalisation(colour_constancy="shades_of_gray", colour_constancy_strength=2.0)


def test_extract_keeps_sample_and_view_order(tmp_path):
    samples = load_dataset(make_ham10000(tmp_path / "ham", n_lesions=5, images_per_lesion=1)).samples
    spec = Normalisation()

    def channel_means(model_input: np.ndarray) -> np.ndarray:  # a stand-in "network": 3 features per image
        return model_input.mean(axis=(0, 1))

    reported = []
    features = extract(
        channel_means, samples, image_size=24, normalisation=spec,
        views=("identity", "flip_horizontal", "shades_of_gray"), progress=reported.append,
    )  # fmt: skip
    assert features.shape == (3, 5, 3)
    assert sum(reported) == 15
    for index, sample in enumerate(samples):
        expected = to_model_input(load_image(sample.path, 24), spec).mean(axis=(0, 1))
        np.testing.assert_allclose(features[0, index], expected, rtol=1e-6)
        np.testing.assert_allclose(features[1, index], expected, rtol=1e-5)  # a flip keeps channel means
    assert not np.allclose(features[2], features[0])
    with pytest.raises(ValueError, match="No images"):
        extract(channel_means, [], image_size=24, normalisation=spec)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_folded_head_reproduces_sklearn(n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    features = rng.normal(5.0, 3.0, size=(200, 12))
    features[:, 3] = 1.0  # a dead channel: zero variance must not divide by zero
    targets = rng.integers(0, n_classes, size=200)
    features[:, 0] += targets * 2.0

    head = fit_logistic_head(features, targets, n_classes=n_classes, c=0.5)
    scaler = StandardScaler().fit(features)
    reference = LogisticRegression(C=0.5, max_iter=3000, class_weight="balanced").fit(
        scaler.transform(features), targets
    )
    np.testing.assert_allclose(
        head.probabilities(features), reference.predict_proba(scaler.transform(features)), atol=1e-8
    )
    assert head.kernel.shape == (12, n_classes)
    assert head.bias.shape == (n_classes,)


def test_head_gives_an_unseen_class_no_probability():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60, 4))
    targets = np.where(features[:, 0] > 0, 2, 0)  # class 1 never seen
    probabilities = fit_logistic_head(features, targets, n_classes=3, c=1.0).probabilities(features)
    assert probabilities[:, 1].max() < 1e-12
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="single class"):
        fit_logistic_head(features, np.zeros(60, dtype=int), n_classes=2, c=1.0)


def test_a_random_view_of_an_image_does_not_depend_on_the_other_images(tmp_path):
    """Seeded by the image's path: cross-source folds extract a subset and must get the same camera view."""
    samples = load_dataset(make_ham10000(tmp_path / "ham", n_lesions=4, images_per_lesion=1)).samples
    spec = Normalisation()

    def channel_means(model_input: np.ndarray) -> np.ndarray:
        return model_input.mean(axis=(0, 1))

    views = ("camera", "colour")
    everything = extract(channel_means, samples, image_size=32, normalisation=spec, views=views)
    last_only = extract(channel_means, samples[-1:], image_size=32, normalisation=spec, views=views)
    other_seed = extract(channel_means, samples[-1:], image_size=32, normalisation=spec, views=views, seed=1)

    np.testing.assert_array_equal(everything[:, -1], last_only[:, 0])
    assert not np.array_equal(everything[:, -1], other_seed[:, 0])


def _random_backbone_features(image_size: int = 96):
    """A randomly initialised backbone (no weights file), its feature model and one random input."""
    from training.features import build_feature_model
    from training.weights import build_backbone

    backbone = build_backbone(image_size, "none").model
    inputs = np.random.default_rng(0).normal(size=(1, image_size, image_size, 3)).astype(np.float32)
    return backbone, build_feature_model(backbone), inputs


@pytest.mark.parametrize(("side", "margin"), [(10, 3), (20, 6), (40, 12), (4, 1), (3, 1), (2, 0), (1, 0)])
def test_centre_margin_keeps_the_middle_and_at_least_one_cell(side, margin):
    from training.features import CENTRE_FRACTION, centre_margin

    assert CENTRE_FRACTION == 0.4  # the 320 px maps (10, 20, 40) keep their middle 4, 8 and 16 cells
    assert centre_margin(side) == margin
    assert side - 2 * centre_margin(side) >= 1


def test_centre_pooling_averages_the_middle_of_the_map():
    import keras

    from training.features import FEATURE_LAYERS, centre_margin

    backbone, feature_model, inputs = _random_backbone_features()
    features = np.asarray(feature_model(inputs))[0]
    offset = 0
    checked = 0
    for layer_name, pooling in FEATURE_LAYERS:
        activation = np.asarray(keras.Model(backbone.input, backbone.get_layer(layer_name).output)(inputs))[0]
        channels = activation.shape[-1]
        if pooling == "centre_avg":
            margin = centre_margin(activation.shape[0])
            assert margin >= 1  # a real crop at this size, or the test would not tell centre from whole
            centre = activation[margin:-margin, margin:-margin]
            scale = float(np.abs(activation).max())  # random weights: the top layer's activations are ~1e-11
            expected = centre.mean(axis=(0, 1))
            np.testing.assert_allclose(features[offset : offset + channels], expected, rtol=1e-3, atol=1e-5 * scale)
            assert not np.allclose(expected, activation.mean(axis=(0, 1)), rtol=1e-3, atol=1e-5 * scale)
            checked += 1
        offset += channels
    assert checked == 4
    assert offset == features.size


def test_heatmap_mean_is_the_averaged_features_share_of_the_logit():
    """The heatmap spreads exactly the average- and centre-pooled features' part of the melanoma logit."""
    import keras

    from training.explain_heads import AVERAGED, heatmap_branch
    from training.features import FEATURE_LAYERS

    backbone, feature_model, inputs = _random_backbone_features()
    features = np.asarray(feature_model(inputs))[0]
    # Random weights leave the layers' activations on scales from 1e-11 to 1: each layer's weights are divided by
    # its features' size, so that every layer counts in the sum.
    direction = np.random.default_rng(1).normal(size=features.size)
    pooled_as = np.empty(features.size, dtype=object)
    offset = 0
    for layer_name, pooling in FEATURE_LAYERS:
        channels = int(backbone.get_layer(layer_name).output.shape[-1])
        block = slice(offset, offset + channels)
        direction[block] /= np.abs(features[block]).mean() + 1e-30
        pooled_as[block] = pooling
        offset += channels
    for kept in (AVERAGED, ("centre_avg",)):  # the second: a heatmap without the centre layers would be all 0
        weights = np.where(np.isin(pooled_as, kept), direction, 0.0)
        heatmap = np.asarray(keras.Model(backbone.input, heatmap_branch(backbone, weights))(inputs))[0]
        share = float(features.astype(np.float64) @ weights)
        assert abs(share) > 1.0
        assert heatmap.mean() == pytest.approx(share, rel=1e-3)


def test_familiarity_whitens_on_the_first_principal_components():
    """The served distance is the Mahalanobis distance on the training images' top principal axes, exactly as a
    full SVD of the standardised features gives them."""
    pytest.importorskip("tensorflow")
    from training.explain_heads import FAMILIARITY_COMPONENTS, _familiarity

    rng = np.random.default_rng(0)
    train = rng.normal(size=(1, 300, 40)) @ rng.normal(size=(40, 40)) + rng.normal(size=40)
    val = rng.normal(size=(50, 40)) @ rng.normal(size=(40, 40))
    layer, card = _familiarity(train.astype(np.float32), val.astype(np.float32))
    kernel, bias = layer.get_weights()

    x = train[0]
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    _, singular, components = np.linalg.svd((x - mean) / scale, full_matrices=False)
    k = FAMILIARITY_COMPONENTS
    whitened = ((val - mean) / scale) @ components[:k].T / (singular[:k] / np.sqrt(x.shape[0] - 1))
    expected = np.linalg.norm(whitened, axis=1)
    served = np.linalg.norm(val @ kernel + bias, axis=1)
    np.testing.assert_allclose(served, expected, rtol=1e-4)
    assert card["components"] == k
    assert card["validation_median"] == pytest.approx(np.median(expected), rel=1e-3)
