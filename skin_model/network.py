"""The networks: raw RGB pixels in, class logits out.

Two backbones (``BACKBONES``): the small custom CNN trained from scratch,
and EfficientNet-Lite0 started from ImageNet weights (``backbone``).
Resizing, the field-of-view crop, colour constancy and scaling are layers,
so the saved model takes any-size uint8 RGB and the app, the CLI and the
SavedModel all get them: serving cannot drift from training. The output is
logits; the predictor applies the temperature fitted on validation before
softmax. Both name their last feature map ``last_conv`` (Grad-CAM) and
their pooled features ``features`` (the gate and similar cases).
``forward`` is how every front end runs a version's network on pixels.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from skin_model.runtime import tensorflow

tensorflow()
import keras  # noqa: E402  (after the thread settings)


@keras.saving.register_keras_serializable(package="skin_model")
class ShadesOfGray(keras.layers.Layer):
    """Colour constancy (Shades of Gray, Finlayson 2004): divide out each image's illuminant estimate.

    A camera's or dermatoscope's colour cast is one gain per channel; the
    Minkowski p-norm mean of each channel estimates it (p=6 weighs the bright
    skin over the dark lesion), so a cool and a warm picture of one lesion
    come out alike. Used by the top ISIC 2019 entries; here it is a layer so
    every front end applies it (Barata et al. 2015).

    ``exposure`` also divides out the illuminant's brightness, bringing it to
    that level (0.68: the median skin on the shared data), so a dim or an
    over-exposed camera gives the same input too. Without it (the first
    versions) only the cast is removed.
    """

    def __init__(self, power: float = 6.0, exposure: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.power = power
        self.exposure = exposure

    def call(self, x):
        ops = keras.ops
        x = ops.maximum(ops.cast(x, "float32"), 0.0)
        mean = ops.mean(ops.power(x / 255.0 + 1e-6, self.power), axis=(1, 2), keepdims=True)
        illuminant = ops.power(mean, 1.0 / self.power)
        if self.exposure is not None:
            return ops.clip(x * (self.exposure / (illuminant + 1e-3)), 0.0, 255.0)
        illuminant = illuminant / (ops.sqrt(ops.sum(illuminant**2, axis=-1, keepdims=True)) + 1e-6)
        return ops.clip(x / (illuminant * math.sqrt(3.0) + 1e-6), 0.0, 255.0)

    def get_config(self) -> dict:
        return super().get_config() | {"power": self.power, "exposure": self.exposure}


@keras.saving.register_keras_serializable(package="skin_model")
class FieldOfView(keras.layers.Layer):
    """Zoom a dermatoscope's round field of view to fill the frame: the rectangle inscribed in its visible ellipse.

    Older contact dermatoscopes leave the frame black outside a circle; the
    network, trained on images without one, then calls nearly every lesion
    melanoma (test balanced accuracy 0.41 inside the inscribed circle, 0.30
    inside a smaller one). Cropping the black rim away is the standard
    remedy for such frame artefacts (SHIFT-NOTES: Winkler et al. 2019). An
    image whose corners are not mostly dark passes through unchanged (the
    box is the whole image, which bilinear crop-and-resize samples exactly).
    """

    def __init__(self, dark: float = 40.0, **kwargs):
        super().__init__(**kwargs)
        self.dark = dark

    def call(self, x):
        tf = tensorflow()
        x = tf.cast(x, tf.float32)
        shape = tf.shape(x)
        return tf.image.crop_and_resize(x, field_of_view_boxes(x, self.dark), tf.range(shape[0]), shape[1:3])

    def get_config(self) -> dict:
        return super().get_config() | {"dark": self.dark}


def field_of_view_boxes(x, dark: float = 40.0):
    """Per image of a ``(N, H, W, 3)`` batch, the box ``FieldOfView`` zooms to fill the frame (``[y0, x0, y1, x1]``,
    as shares of the height and width less one): the whole image unless its corners are mostly near-black.

    The gate measures its image statistics inside the same box (``imaging.stats_table``).
    """
    tf = tensorflow()
    x = tf.cast(x, tf.float32)
    shape = tf.shape(x)
    n, h, w = shape[0], shape[1], shape[2]
    visible = tf.cast(tf.reduce_mean(x, axis=-1) >= dark, tf.float32)
    ky, kx = tf.maximum(h // 8, 1), tf.maximum(w // 8, 1)
    corners = [visible[:, :ky, :kx], visible[:, :ky, -kx:], visible[:, -ky:, :kx], visible[:, -ky:, -kx:]]
    corners = tf.concat([tf.reshape(c, [n, -1]) for c in corners], axis=1)
    y0, y1, rows = _extent(tf.reduce_mean(visible, axis=2) > 0.05)
    x0, x1, cols = _extent(tf.reduce_mean(visible, axis=1) > 0.05)
    hf, wf = tf.cast(h - 1, tf.float32), tf.cast(w - 1, tf.float32)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    ry, rx = (y1 - y0) / 2 / math.sqrt(2.0), (x1 - x0) / 2 / math.sqrt(2.0)
    box = tf.stack([(cy - ry) / hf, (cx - rx) / wf, (cy + ry) / hf, (cx + rx) / wf], axis=1)
    framed = (tf.reduce_mean(corners, axis=1) <= 0.5) & (rows >= tf.cast(h // 4, tf.float32))
    framed &= cols >= tf.cast(w // 4, tf.float32)
    return tf.where(framed[:, None], box, tf.constant([[0.0, 0.0, 1.0, 1.0]]))


@functools.cache
def compiled_boxes():
    """``field_of_view_boxes`` as one graph for uint8 batches: the gate calls it on every upload (0.3 ms; eager 2)."""
    tf = tensorflow()
    return tf.function(field_of_view_boxes, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])


def _extent(along):
    """First and last True index of each row of a ``(N, L)`` boolean, and how many lie between (as float32)."""
    tf = tensorflow()
    length = tf.shape(along)[1]
    first = tf.cast(tf.argmax(tf.cast(along, tf.int32), axis=1), tf.float32)
    last = tf.cast(length - 1, tf.float32) - tf.cast(tf.argmax(tf.cast(along[:, ::-1], tf.int32), axis=1), tf.float32)
    return first, last, tf.maximum(last - first + 1, 0.0)


EXPOSURE = 0.68  # the Shades-of-Gray illuminant level the exposure-normalising layer brings every image to


def build(
    image_size: int,
    num_classes: int,
    width: int = 16,
    dropout: float = 0.3,
    colour_constancy: bool = False,
    normalise_exposure: bool = False,
    field_of_view: bool = False,
):
    """A small conv / separable-conv network sized for a 2-core CPU.

    Full convolutions only where the feature maps are few; separable ones
    where channels grow; batch norm everywhere for stable training from scratch.
    """
    from keras import layers

    def unit(x, filters: int, separable: bool, name: str | None = None):
        conv = layers.SeparableConv2D if separable else layers.Conv2D
        x = conv(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.Activation("relu", name=name)(x)

    inputs = keras.Input(shape=(None, None, 3), name="pixels")
    x = layers.Resizing(image_size, image_size, antialias=True, name="resize")(inputs)
    if field_of_view:
        x = FieldOfView(name="field_of_view")(x)
    if colour_constancy:
        x = ShadesOfGray(exposure=EXPOSURE if normalise_exposure else None, name="colour_constancy")(x)
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(x)
    x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D()(unit(x, 2 * width, separable=False))
    x = layers.MaxPooling2D()(unit(x, 4 * width, separable=True))
    x = unit(x, 8 * width, separable=True)
    x = layers.MaxPooling2D()(unit(x, 8 * width, separable=True))
    x = unit(x, 16 * width, separable=True)
    x = unit(x, 16 * width, separable=True, name="last_conv")
    x = layers.GlobalAveragePooling2D(name="features")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="skin_cnn")


def build_lite0(image_size: int, num_classes: int, dropout: float = 0.2, field_of_view: bool = False, imagenet=True):
    """EfficientNet-Lite0 from ImageNet weights, a fresh head on its pooled features.

    Its batch norms stay in inference mode with ImageNet's statistics
    (``trainable = False``): with 32 images a batch, re-estimating them
    would add noise to every pretrained layer; the convolutions still learn.
    ``imagenet=False`` leaves the backbone random (for a quick test network; weights loaded later).
    """
    from keras import layers

    from skin_model import backbone

    inputs = keras.Input(shape=(None, None, 3), name="pixels")
    x = layers.Resizing(image_size, image_size, antialias=True, name="resize")(inputs)
    if field_of_view:
        x = FieldOfView(name="field_of_view")(x)
    x = backbone.imagenet_scaling(x, name="scale")
    x = backbone.lite0_features(x, name=backbone.NAME, head_name="last_conv")
    x = layers.GlobalAveragePooling2D(name="features")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    model = keras.Model(inputs, outputs, name="skin_lite0")
    if imagenet:
        backbone.load_imagenet(model, backbone.read_state_dict(backbone.weights_file()), name=backbone.NAME)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    return model


def for_config(config, imagenet: bool = True) -> keras.Model:
    """The network a ``TrainConfig`` describes (untrained, or ImageNet-started): training builds it, and
    recalibration to move weights (``imagenet=False``: they are about to be replaced)."""
    from skin_model import CLASSES

    if config.backbone == "efficientnet-lite0":
        return build_lite0(config.image_size, len(CLASSES), field_of_view=config.field_of_view, imagenet=imagenet)
    return build(
        config.image_size,
        len(CLASSES),
        width=config.width,
        colour_constancy=config.colour_constancy,
        normalise_exposure=config.normalise_exposure,
        field_of_view=config.field_of_view,
    )


def is_backbone(variable) -> bool:
    """A weight of the pretrained backbone (trained at a lower rate than the new head)."""
    from skin_model import backbone

    return variable.path.startswith(f"{backbone.NAME}_")


@dataclass(frozen=True)
class Camera:
    """How far camera-like augmentation goes: uniform ranges, and the share of images given a vignette or blur."""

    crop: float  # smallest crop side, as a share of the image
    cast: float  # per-channel gain within 1 +- cast
    exposure: float  # overall gain within 1 +- exposure
    gamma: tuple[float, float]
    saturation: tuple[float, float]
    vignette: float
    defocus: float
    jpeg: float = 0.0  # share of images re-encoded as JPEG at quality 10-70
    temperature: float = 0.0  # a colour-temperature shift on the blue-red axis: gains (1 - t, 1, 1 + t), |t| <= this
    share: float = 1.0  # share of images given any of it: the rest stay as taken, so the clean look is learnt too
    # the dark rim's radius, in image sides (0.5: the inscribed circle), and how much light it lets through (0: black)
    vignette_edge: tuple[float, float] = (0.42, 0.72)
    vignette_darkness: tuple[float, float] = (0.0, 0.25)


# no crops, no gamma; casts, exposure, washed-out colour, vignettes and JPEG blocks as other cameras give
# (chosen by bench.stress: the strong recipe lost melanoma AUC, no augmentation collapsed under stress)
MILD = Camera(
    crop=1.0,
    cast=0.2,
    exposure=0.3,
    gamma=(1.0, 1.0),
    saturation=(0.4, 1.15),
    vignette=0.33,
    defocus=0.2,
    jpeg=0.2,
    share=0.5,
)
CAMERAS = {
    "mild": MILD,
    # mild, plus cooler and warmer light along the blue-red axis (the oldest uploads' cool cast): tried, not adopted
    "mild-temperature": replace(MILD, temperature=0.25),
    # mild, with more, darker and narrower vignettes (down to 0.68 of the inscribed circle, near black): under the
    # dark vignette the default's P(melanoma) rises for every lesion; tried 6 December (README), not yet the default
    "mild-vignette": replace(MILD, vignette=0.6, vignette_edge=(0.34, 0.72), vignette_darkness=(0.0, 0.05)),
    # the first robust recipe: strong enough to blur the colour cues themselves
    "strong": Camera(
        crop=0.75, cast=0.2, exposure=0.35, gamma=(0.75, 1.35), saturation=(0.5, 1.3), vignette=0.33, defocus=0.2
    ),
}


def augmenter(seed: int, device: str = "none", paired: bool = False, look_swap: float = 0.0):
    """On-the-fly augmentation for the tf.data pipeline (never inside the model).

    Flips and quarter turns are exact and cheap (a lesion has no "up");
    small rotations and zooms come from the Augmentor balancing stage.
    ``device`` (a key of ``CAMERAS``, or "none") adds what differs between
    clinics' cameras and dermatoscopes (colour cast, exposure, saturation, a
    dark circular vignette, defocus; crops and gamma when strong), so none of
    them can stand in for a diagnosis.

    ``paired``: a batch of N comes back as 2 N, the N images as taken, then
    the same N (same flips and turns) through another camera: twins that
    differ only in acquisition, for the consistency loss (``train.train_step``).

    ``look_swap``: the share of images given the colour look of another image
    of the batch (see ``swap_looks``).
    """
    tf = tensorflow()
    from keras import layers

    colour = keras.Sequential(
        [
            layers.RandomFlip("horizontal_and_vertical", seed=seed),
            layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 1),
            layers.RandomContrast(0.15, value_range=(0, 255), seed=seed + 2),
        ],
        name="augment",
    )
    camera = CAMERAS.get(device)
    if paired and camera is None:
        raise ValueError("paired views need camera-like augmentation (device must not be 'none')")

    def augment(images):
        turns = tf.random.uniform([], 0, 4, dtype=tf.int32, seed=seed + 3)
        images = tf.image.rot90(colour(images, training=True), k=turns)
        if look_swap > 0:
            images = swap_looks(images, look_swap, seed + 5)
        if paired:
            return tf.concat([images, _device_like(images, replace(camera, share=1.0), seed + 4)], axis=0)
        return _device_like(images, camera, seed + 4) if camera else images

    return augment


def swap_looks(images, share: float, seed: int):
    """A ``share`` of a float [0, 255] batch re-toned to another image's look: YUV means and spreads swapped.

    Every melanoma in the shared data comes from the ISIC archive and no
    HAM10000 image is one, so a source's colours alone can say "melanoma"
    (``bench.stress look``: re-toned to the old archive's look, about 9 in 10
    HAM10000 lesions raised the alert of the previous default, trained without
    this). Partners are drawn within the batch, across classes and sources, so
    a look stops telling the class (after
    Reinhard et al. 2001's colour transfer; MixStyle, Zhou et al. 2021, mixes such statistics inside the network).
    At 0.5 (the default), cross-validated: melanoma AUC 0.51 -> 0.776 where the other classes come in the old
    archive's colours, 0.91 -> 0.88 where they do not (bench/RESULTS.md, "External-like sets").
    """
    tf = tensorflow()
    n = tf.shape(images)[0]
    yuv = tf.image.rgb_to_yuv(images / 255.0)
    mean = tf.reduce_mean(yuv, axis=(1, 2), keepdims=True)
    spread = tf.math.reduce_std(yuv, axis=(1, 2), keepdims=True) + 1e-3
    partner = tf.random.shuffle(tf.range(n), seed=seed)
    swapped = (yuv - mean) / spread * tf.gather(spread, partner) + tf.gather(mean, partner)
    rgb = tf.clip_by_value(tf.image.yuv_to_rgb(swapped), 0.0, 1.0) * 255.0
    chosen = tf.random.uniform([n, 1, 1, 1], 0.0, 1.0, seed=seed + 1) < share
    return tf.where(chosen, rgb, images)


def _device_like(images, camera: Camera, seed: int):
    """Per-image camera conditions on a float batch in [0, 255] (a ``camera.share`` of the images)."""
    tf = tensorflow()
    original = images
    n, size = tf.shape(images)[0], tf.shape(images)[1]
    u = lambda shape, lo, hi, k: tf.random.uniform(shape, lo, hi, seed=seed + k)
    if camera.crop < 1.0:  # random resized crop, anywhere, back to full size
        side = u([n, 1], camera.crop, 1.0, 0)
        corner = u([n, 2], 0.0, 1.0, 1) * (1.0 - side)
        boxes = tf.concat([corner, corner + side], axis=1)
        images = tf.image.crop_and_resize(images, boxes, tf.range(n), tf.stack([size, size]))
    # colour cast (a gain per channel), exposure and gamma, saturation
    x = images / 255.0 * u([n, 1, 1, 3], 1 - camera.cast, 1 + camera.cast, 2)
    x = x * u([n, 1, 1, 1], 1 - camera.exposure, 1 + camera.exposure, 3)
    if camera.gamma != (1.0, 1.0):
        x = tf.pow(tf.clip_by_value(x, 1e-4, 1.0), u([n, 1, 1, 1], *camera.gamma, 4))
    grey = tf.reduce_mean(x, axis=-1, keepdims=True)
    x = grey + (x - grey) * u([n, 1, 1, 1], *camera.saturation, 5)
    if camera.temperature > 0:  # cooler or warmer light, as another dermatoscope's LEDs give
        t = u([n, 1, 1, 1], -camera.temperature, camera.temperature, 14)
        x = x * tf.concat([1.0 - t, tf.ones_like(t), 1.0 + t], axis=-1)
    # a dark circular vignette, of random radius and softness
    coords = (tf.cast(tf.range(size), tf.float32) + 0.5) / tf.cast(size, tf.float32) - 0.5
    radius = tf.sqrt(coords[None, :, None] ** 2 + coords[None, None, :] ** 2)[..., None]  # (1, H, W, 1)
    edge = u([n, 1, 1, 1], *camera.vignette_edge, 6)
    mask = tf.sigmoid((edge - radius) / u([n, 1, 1, 1], 0.01, 0.05, 7))
    darkness = u([n, 1, 1, 1], *camera.vignette_darkness, 8)
    vignette = darkness + (1.0 - darkness) * mask
    x = tf.where(u([n, 1, 1, 1], 0.0, 1.0, 9) < camera.vignette, x * vignette, x)
    blurred = tf.nn.avg_pool2d(x, 3, 1, "SAME")
    x = tf.where(u([n, 1, 1, 1], 0.0, 1.0, 10) < camera.defocus, blurred, x)
    x = tf.clip_by_value(x, 0.0, 1.0)
    if camera.jpeg > 0:  # another camera's compression (blocks, lost fine detail), coded only where chosen
        chosen = tf.where(u([n], 0.0, 1.0, 12) < camera.jpeg)[:, 0]

        def recode():
            quality = tf.cast(u([tf.size(chosen)], 10.0, 70.0, 11), tf.int32)
            picked = tf.gather(x, chosen)
            coded = tf.map_fn(
                lambda args: tf.image.adjust_jpeg_quality(args[0], args[1]),
                (picked, quality),
                fn_output_signature=tf.float32,
            )
            return tf.tensor_scatter_nd_update(x, chosen[:, None], tf.reshape(coded, tf.shape(picked)))

        x = tf.cond(tf.size(chosen) > 0, recode, lambda: x)  # map_fn cannot stack an empty batch
    return tf.where(u([n, 1, 1, 1], 0.0, 1.0, 13) < camera.share, x * 255.0, original)


def dihedral(batch):
    """The 8 flips and quarter turns of a batch of square images, view-major: ``(8 N, S, S, 3)``.

    A lesion has no "up" (training sees all 8 at random), so each view is an
    equally fair look; averaging their logits steadies the answer: test
    balanced accuracy 0.603 -> 0.674 on the committed weights, and higher
    under the worst stress condition too (bench/RESULTS.md, "Test-time views").
    """
    tf = tensorflow()
    flips = [batch, tf.reverse(batch, axis=[1]), tf.reverse(batch, axis=[2]), tf.reverse(batch, axis=[1, 2])]
    return tf.concat(flips + [tf.transpose(view, [0, 2, 1, 3]) for view in flips], axis=0)


def two_heads(model):
    """The model with its pooled features (the layer ``features``) as a second output."""
    return keras.Model(model.inputs, [model.outputs[0], model.get_layer("features").output])


def forward(net, pixels, views: int = 1, image_size: int | None = None, every_view: bool = False):
    """``net`` in inference mode on a batch of pixels: the one way every front end runs a version's network.

    ``pixels``: a batch ``(N, H, W, 3)`` or a list of images of any sizes; ``image_size``: first resized to it by
    the model's own resize (None: already that size). ``views``: 1, or the 8 test-time views (``dihedral``) of
    the resized batch. Returns the first output (logits) averaged over the views and the others of the upright
    view; ``every_view``: every output of every view, view-major (the predictor keeps each view's logits).
    Flipping commutes with the model's resize, so the views of the resized image are the views of the upload,
    at an eighth of the resizing work.
    """
    tf = tensorflow()
    batch = pixels if image_size is None else _resized(pixels, image_size)
    if views == 1:
        return net(batch, training=False)
    out = net(dihedral(batch), training=False)
    if every_view:
        return out
    n = tf.shape(batch)[0]
    parts = list(out) if isinstance(out, (list, tuple)) else [out]
    logits = tf.reduce_mean(tf.reshape(parts[0], [views, n, -1]), axis=0)
    return [logits, *(p[:n] for p in parts[1:])] if len(parts) > 1 else logits


def _resized(pixels, image_size: int):
    """A batch resized at once; a list of images of one shape stacked first (twice as fast), else each its own."""
    tf = tensorflow()
    if not isinstance(pixels, list):
        return resize(pixels, image_size)
    if len({p.shape for p in pixels}) == 1:
        return resize(np.stack(pixels), image_size)
    return tf.concat([resize(p[None], image_size) for p in pixels], axis=0)


def resize(images, image_size: int):
    """The model's own first-layer resize, done early (tf.data) so images of any size can share a batch.

    Kept in float32, never rounded: the model's resize of an already-sized
    image is then the identity, so what training, validation and calibration
    see is exactly what the app's full-size upload becomes inside the model.
    """
    tf = tensorflow()
    return tf.image.resize(tf.cast(images, tf.float32), (image_size, image_size), antialias=True)
