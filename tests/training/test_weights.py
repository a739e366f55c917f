"""ImageNet weights from torchvision's checkpoint, read without torch."""

import io
import pickle

import numpy as np
import pytest

from training.weights import (
    TORCHVISION_CHECKPOINT_SHA256,
    WeightsError,
    _RestrictedUnpickler,
    build_torch_compatible_mobilenet_v2,
    converted_weights_path,
    read_torch_state_dict,
    sha256_of,
    torchvision_checkpoint_path,
)


@pytest.fixture(scope="module")
def checkpoint():
    try:
        return torchvision_checkpoint_path()
    except WeightsError as error:
        pytest.skip(str(error))


def test_checkpoint_checksum(checkpoint):
    assert TORCHVISION_CHECKPOINT_SHA256.startswith("b03531047ffa")
    assert sha256_of(checkpoint) == TORCHVISION_CHECKPOINT_SHA256


def test_state_dict_shapes(checkpoint):
    state = read_torch_state_dict(checkpoint)
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["features.2.conv.1.0.weight"].shape == (96, 1, 3, 3)  # depthwise
    assert state["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert state["classifier.1.weight"].shape == (1000, 1280)
    assert all(array.dtype in (np.float32, np.int64) for array in state.values())
    assert np.isfinite(state["features.0.1.running_var"]).all()


def test_wrong_checksum_is_refused(checkpoint):
    with pytest.raises(WeightsError, match="SHA-256"):
        read_torch_state_dict(checkpoint, expected_sha256="0" * 64)


def test_unpickler_refuses_arbitrary_globals():
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    payload = pickle.dumps(Evil(), protocol=2)
    with pytest.raises(WeightsError, match="Refusing"):
        _RestrictedUnpickler(io.BytesIO(payload)).load()


def test_garbage_checkpoint_gives_clear_error(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"\x80\x02garbage")
    with pytest.raises(WeightsError, match="Could not read"):
        read_torch_state_dict(path, expected_sha256=None)


@pytest.mark.slow
def test_converted_model_known_output(checkpoint, tmp_path):
    """Top-5 ImageNet classes for a fixed synthetic pattern, recorded once from this conversion."""
    from lesion_model.preprocessing import to_model_input

    path = converted_weights_path(tmp_path)
    model = build_torch_compatible_mobilenet_v2((224, 224, 3), include_top=True)
    model.load_weights(path)
    yy, xx = np.mgrid[0:224, 0:224].astype(np.float32)
    pattern = np.stack(
        [127.5 + 127.5 * np.sin(xx / 9.0), 127.5 + 127.5 * np.cos(yy / 13.0), (xx + yy) / 448 * 255], axis=-1
    )
    probabilities = model(to_model_input(pattern, "imagenet_torch")[None], training=False).numpy()[0]
    top5 = np.argsort(probabilities)[::-1][:5].tolist()
    assert top5[:3] == [688, 556, 530]
    np.testing.assert_allclose(probabilities[688], 0.95368, atol=2e-3)
    np.testing.assert_allclose(probabilities[556], 0.02334, atol=2e-3)
