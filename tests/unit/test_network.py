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


@pytest.mark.parametrize("strength", ["mild", "mild-temperature", "mild-vignette", "strong"])
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
    old.pop("normalise_exposure"), old.pop("field_of_view")
    config = TrainConfig.from_dict(old)
    assert config.device_augment == "strong" and config.normalise_exposure is False
    assert config.field_of_view is False and TrainConfig().field_of_view is True
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


def test_views_of_the_resized_batch_are_the_model_on_each_flipped_and_turned_upload(loud_tiny_model, blob):
    model = loud_tiny_model
    x = np.stack([blob(label, seed=4, size=48)[:, :40] for label in ("melanoma", "nevus")]).astype(np.float32)

    def on_each_view(image: np.ndarray) -> np.ndarray:  # (8, classes): the model on the upload itself, turned
        flips = [image, image[::-1], image[:, ::-1], image[::-1, ::-1]]  # not square: turns change its shape
        uploads = flips + [v.transpose(1, 0, 2) for v in flips]
        return np.concatenate([model(np.ascontiguousarray(v)[None], training=False).numpy() for v in uploads])

    each = [on_each_view(image) for image in x]
    resized = network.resize(x, 32)
    views = model(network.dihedral(resized), training=False).numpy().reshape(8, 2, -1)

    assert np.ptp(each[0], axis=0).max() > 0.1 and np.abs(each[0] - each[1]).max() > 0.1  # views and images differ
    for i in range(2):
        np.testing.assert_allclose(views[:, i], each[i], rtol=1e-3, atol=1e-2)  # view-major: view v of image i
    averaged = network.forward(model, resized, 8).numpy()
    np.testing.assert_allclose(averaged, np.stack([e.mean(axis=0) for e in each]), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(network.forward(model, resized, 1).numpy(), np.stack([e[0] for e in each]), atol=1e-2)


def test_versions_saved_before_views_read_as_calibrated_on_the_upright_image_and_other_counts_are_refused():
    old = TrainConfig().to_dict()
    old.pop("views")
    assert TrainConfig.from_dict(old).views == 1 and TrainConfig().views == 8
    with pytest.raises(SkinModelError, match="views must be 1 or 8"):
        TrainConfig(views=4)


def test_paired_views_are_twins_that_differ_in_camera_alone(lesion):
    tf = tensorflow()
    tf.random.set_seed(0)
    marked = lesion.astype(np.float32).copy()
    size = lesion.shape[0]
    a, b = size // 4 - 4, size // 4 + 4  # a quarter in from a corner: inside any vignette the camera draws
    marked[a:b, a:b] = (0.0, 255.0, 0.0)  # a green mark: flips and turns must move it the same way in both twins
    batch = tf.constant(np.repeat(marked[None], 16, axis=0), tf.float32)
    out = np.asarray(network.augmenter(seed=5, device="mild", paired=True)(batch))
    assert out.shape == (32, *lesion.shape)
    taken, twin = out[:16], out[16:]

    def corner(images: np.ndarray) -> list[int]:
        green = images[..., 1] - images[..., [0, 2]].mean(axis=-1)
        c, d = size - b, size - a
        patches = [green[:, a:b, a:b], green[:, a:b, c:d], green[:, c:d, a:b], green[:, c:d, c:d]]
        return np.stack([p.mean(axis=(1, 2)) for p in patches]).argmax(axis=0).tolist()

    assert corner(taken) == corner(twin)  # same geometry
    assert len(set(corner(taken))) > 1  # while the flips and turns do vary between images
    colour_shift = np.abs(taken.mean(axis=(1, 2)) - twin.mean(axis=(1, 2))).max(axis=1)
    assert (colour_shift > 0.5).mean() > 0.5  # the twin went through another camera


def test_paired_views_without_camera_augmentation_are_refused():
    with pytest.raises(ValueError, match="camera"):
        network.augmenter(seed=5, device="none", paired=True)
    with pytest.raises(SkinModelError, match="consistency"):
        TrainConfig(consistency=12.0, device_augment="none")
    with pytest.raises(SkinModelError, match="consistency"):
        TrainConfig(consistency=12.0, batch_size=31)
    assert TrainConfig.from_dict(TrainConfig(consistency=12.0).to_dict()).consistency == 12.0


def test_swapped_looks_are_the_batch_own_looks_dealt_again():
    tf = tensorflow()
    tf.random.set_seed(0)
    rng = np.random.default_rng(0)
    colours = rng.uniform(60, 190, (8, 3))  # mid-range, so no channel clips
    texture = rng.normal(0, 10, (8, 16, 16, 3))
    batch = (colours[:, None, None, :] + texture).astype(np.float32)
    out = network.swap_looks(tf.constant(batch), share=1.0, seed=3).numpy()
    before, after = batch.mean(axis=(1, 2)), out.mean(axis=(1, 2))
    # each image now wears one of the batch's looks, every look worn once: a reshuffle, not a new colour
    match = np.abs(after[:, None, :] - before[None, :, :]).max(axis=-1).argmin(axis=1)
    np.testing.assert_allclose(after, before[match], atol=1.0)
    assert sorted(match.tolist()) == list(range(8)) and (match != np.arange(8)).sum() >= 4
    # the content stays: each image's texture, re-toned, still correlates with its own
    own = [np.corrcoef(out[i, ..., 1].ravel(), texture[i, ..., 1].ravel())[0, 1] for i in range(8)]
    assert min(own) > 0.8
    untouched = network.swap_looks(tf.constant(batch), share=0.0, seed=3).numpy()
    np.testing.assert_array_equal(untouched, batch)


def test_a_look_swap_share_outside_zero_to_one_is_refused():
    with pytest.raises(SkinModelError, match="look swap"):
        TrainConfig(look_swap=1.5)
    assert TrainConfig.from_dict(TrainConfig(look_swap=0.5).to_dict()).look_swap == 0.5


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_the_training_stream_swaps_looks_only_when_asked(tmp_path, share):
    """``look_swap`` reaches the images training sees: red lesions wear blue looks, and blue red, only when on."""
    from PIL import Image

    from skin_model import stream

    tensorflow().random.set_seed(1)
    rng = np.random.default_rng(1)
    paths, labels = [], []
    for i in range(8):
        tint = (200, 70, 60) if i % 2 == 0 else (60, 70, 200)  # label 0: red, label 1: blue
        pixels = np.clip(np.array(tint) + rng.normal(0, 12, (24, 24, 3)), 0, 255).astype(np.uint8)
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(pixels).save(paths[-1])
        labels.append(i % 2)
    batches = stream.training(paths, np.array(labels), np.ones(8), 24, 8, seed=2, look_swap=share)
    worn = []  # per image: does it wear the other class's look?
    for x, y, _ in batches.take(6):
        red = x.numpy().mean(axis=(1, 2)) @ np.array([1.0, 0.0, -1.0]) > 0
        worn += (red != (y.numpy() == 0)).tolist()
    # with every image re-toned to a random partner of the batch, about half the partners are of the other colour
    assert (sum(worn) == 0) if share == 0 else (0.25 < np.mean(worn) < 0.75)


def test_the_field_of_view_crop_leaves_an_image_without_a_black_rim_exactly_as_it_is(lesion):
    out = layer_output(network.FieldOfView(), lesion)

    assert np.array_equal(out, lesion.astype(np.float32))


@pytest.mark.parametrize("condition", ["dark vignette", "narrow field of view", "cool cast + vignette"])
def test_the_field_of_view_crop_zooms_a_round_aperture_to_fill_the_frame(lesion, condition):
    framed = CONDITIONS[condition](lesion)
    out = layer_output(network.FieldOfView(), framed)

    dark = lambda x: (x.mean(axis=-1) < 40).mean()
    assert dark(framed) > 0.2 and dark(out) < 0.02  # the rim is gone
    assert out.shape == framed.shape
    centre = slice(40, 56)  # the middle of the picture stays in the middle, only larger
    assert np.abs(out[centre, centre] - framed[centre, centre].astype(np.float32)).mean() < 25


def test_a_model_with_the_field_of_view_crop_saves_and_loads(tmp_path, lesion):
    import keras

    model = network.build(64, 9, width=4, field_of_view=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    framed = CONDITIONS["dark vignette"](lesion)[None]
    np.testing.assert_allclose(loaded(framed, training=False), model(framed, training=False), atol=1e-5)


def test_recalibration_moves_the_committed_weights_into_a_network_with_the_crop(loud_tiny_model, blob):
    from skin_model.default_model import in_todays_layers

    config = TrainConfig(image_size=32, width=4, field_of_view=True)
    moved = in_todays_layers(loud_tiny_model, config)
    plain, framed = blob("nevus", 1, size=64)[None], CONDITIONS["dark vignette"](blob("nevus", 1, size=64))[None]

    assert moved.get_layer("field_of_view") is not None
    run = lambda model, x: np.asarray(model(x, training=False))  # a bare call would update the shared model's BN
    np.testing.assert_allclose(run(moved, plain), run(loud_tiny_model, plain), rtol=1e-5)
    assert np.abs(run(moved, framed) - run(loud_tiny_model, framed)).max() > 0.1  # the rim is cropped away


def test_a_list_of_images_of_several_sizes_runs_as_each_image_alone(loud_tiny_model, blob):
    images = [blob("melanoma", seed=1, size=48)[:, :40], blob("nevus", seed=2, size=60), blob("nevus", seed=3, size=48)]

    together = network.forward(loud_tiny_model, images, 8, 32).numpy()

    alone = np.concatenate([network.forward(loud_tiny_model, [p], 8, 32).numpy() for p in images])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-3)
    assert np.ptp(together, axis=0).max() > 0.1  # the images' logits differ: the comparison can fail
