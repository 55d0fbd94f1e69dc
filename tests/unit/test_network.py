"""The model's own input layers and the camera-like augmentation: what they promise, on generated images."""

from __future__ import annotations

import numpy as np
import pytest

from skin_model import network
from skin_model.config import TrainConfig
from skin_model.errors import SkinModelError
from skin_model.runtime import tensorflow
from skin_model.shift import CONDITIONS


def layer_output(layer, pixels: np.ndarray) -> np.ndarray:
    return np.asarray(layer(pixels[None].astype(np.float32)))[0]


@pytest.fixture(scope="module")
def lesion(lesion_images) -> np.ndarray:
    return lesion_images(1, seed=3, size=96)[0]


@pytest.mark.parametrize("condition", ["cool cast", "warm cast", "dim"])
def test_colour_and_exposure_constancy_undoes_a_cast_and_dimming(lesion, condition):
    layer = network.ShadesOfGray(exposure=network.EXPOSURE)
    clean, shifted = layer_output(layer, lesion), layer_output(layer, CONDITIONS[condition](lesion))
    untouched = np.abs(lesion.astype(np.float32) - CONDITIONS[condition](lesion)).mean()
    assert np.abs(clean - shifted).mean() < 0.15 * untouched  # most of the shift is gone


def test_colour_constancy_without_exposure_keeps_brightness_as_the_first_versions_did(lesion):
    layer = network.ShadesOfGray()
    dim = layer_output(layer, CONDITIONS["dim"](lesion))
    assert dim.mean() < 0.7 * layer_output(layer, lesion).mean()
    assert network.ShadesOfGray.from_config(layer.get_config()).exposure is None


def test_the_exposure_setting_survives_saving(tmp_path, lesion):
    import keras

    model = network.build(64, 9, width=4, colour_constancy=True, normalise_exposure=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    assert loaded.get_layer("colour_constancy").exposure == network.EXPOSURE
    np.testing.assert_allclose(loaded(lesion[None]), model(lesion[None]), atol=1e-5)


@pytest.mark.parametrize("strength", ["mild", "mild-temperature", "strong"])
def test_camera_augmentation_varies_colour_but_keeps_shape_and_range(lesion, strength):
    tf = tensorflow()
    batch = tf.constant(np.repeat(lesion[None], 16, axis=0), tf.float32)
    out = np.asarray(network.augmenter(seed=5, device=strength)(batch))
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 255
    channel_means = out.mean(axis=(1, 2))
    assert channel_means.std(axis=0).min() > 2  # images differ in colour, not only by flips


def test_mild_augmentation_changes_colour_less_than_strong(lesion):
    tf = tensorflow()
    batch = tf.constant(np.repeat(lesion[None], 64, axis=0), tf.float32)
    spread = {
        s: np.asarray(network.augmenter(seed=5, device=s)(batch)).mean(axis=(1, 2)).std(axis=0).mean()
        for s in ("mild", "strong")
    }
    assert spread["mild"] < spread["strong"]


def test_colour_temperature_spreads_the_blue_to_red_balance_further_than_mild(lesion):
    tf = tensorflow()
    batch = tf.constant(np.repeat(lesion[None], 64, axis=0), tf.float32)

    def blue_to_red(device: str) -> float:
        out = np.asarray(network.augmenter(seed=5, device=device)(batch)).mean(axis=(1, 2))
        return float(np.log((out[:, 2] + 1) / (out[:, 0] + 1)).std())

    assert blue_to_red("mild-temperature") > 1.2 * blue_to_red("mild")


def test_versions_saved_before_strengths_and_exposure_read_as_what_they_were():
    old = TrainConfig().to_dict() | {"device_augment": True}
    old.pop("normalise_exposure")
    config = TrainConfig.from_dict(old)
    assert config.device_augment == "strong" and config.normalise_exposure is False
    assert TrainConfig.from_dict(old | {"device_augment": False}).device_augment == "none"


def test_an_unknown_augmentation_strength_is_refused():
    with pytest.raises(SkinModelError, match="device_augment"):
        TrainConfig(device_augment="extreme")


@pytest.mark.parametrize("batch", [1, 4, 32])
def test_mild_augmentation_runs_in_a_graph_whether_or_not_any_image_is_jpeg_coded(lesion, batch):
    tf = tensorflow()
    augment = tf.function(
        network.augmenter(seed=9, device="mild"), input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)]
    )
    for seed in range(6):  # small batches often code none, large ones some
        tf.random.set_seed(seed)
        out = augment(tf.constant(np.repeat(lesion[None], batch, axis=0), tf.float32))
        assert out.shape == (batch, *lesion.shape)


def test_views_of_the_resized_image_are_the_model_on_each_flipped_and_turned_upload(tiny_model, blob):
    x = blob("melanoma", seed=4, size=48)[:, :40].astype(np.float32)[None]  # not square: turns change its shape
    flips = [x, x[:, ::-1], x[:, :, ::-1], x[:, ::-1, ::-1]]
    uploads = flips + [np.ascontiguousarray(v.transpose(0, 2, 1, 3)) for v in flips]
    each = np.concatenate([tiny_model(np.ascontiguousarray(v), training=False).numpy() for v in uploads])

    resized = network.resize(x, 32)
    views = tiny_model(network.dihedral(resized), training=False).numpy()

    np.testing.assert_allclose(views, each, atol=1e-4)
    np.testing.assert_allclose(network.over_views(tiny_model, resized, 8).numpy(), each.mean(axis=0)[None], atol=1e-4)
    np.testing.assert_allclose(network.over_views(tiny_model, resized, 1).numpy(), each[:1], atol=1e-5)


def test_versions_saved_before_views_read_as_calibrated_on_the_upright_image_and_other_counts_are_refused():
    old = TrainConfig().to_dict()
    old.pop("views")
    assert TrainConfig.from_dict(old).views == 1 and TrainConfig().views == 8
    with pytest.raises(SkinModelError, match="views must be 1 or 8"):
        TrainConfig(views=4)
