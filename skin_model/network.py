"""The CNN, built from scratch: raw RGB pixels in, class logits out.

Resizing and scaling are layers, so the saved model takes any-size uint8
RGB and serving cannot drift from training. The output is logits; the
predictor applies the temperature fitted on validation before softmax.
"""

from __future__ import annotations

from skin_model.runtime import tensorflow


def build(image_size: int, num_classes: int, width: int = 16, dropout: float = 0.3):
    """A small conv / separable-conv network sized for a 2-core CPU.

    Full convolutions only where the feature maps are few; separable ones
    where channels grow; batch norm everywhere for stable training from scratch.
    """
    tensorflow()
    import keras
    from keras import layers

    def unit(x, filters: int, separable: bool, name: str | None = None):
        conv = layers.SeparableConv2D if separable else layers.Conv2D
        x = conv(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.Activation("relu", name=name)(x)

    inputs = keras.Input(shape=(None, None, 3), name="pixels")
    x = layers.Resizing(image_size, image_size, antialias=True, name="resize")(inputs)
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


def augmenter(seed: int):
    """On-the-fly augmentation for the tf.data pipeline (never inside the model).

    Flips and quarter turns are exact and cheap (a lesion has no "up");
    small rotations and zooms come from the Augmentor balancing stage, so the
    per-batch cost stays well below the network's on two cores.
    """
    tf = tensorflow()
    import keras
    from keras import layers

    colour = keras.Sequential(
        [
            layers.RandomFlip("horizontal_and_vertical", seed=seed),
            layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 1),
            layers.RandomContrast(0.15, value_range=(0, 255), seed=seed + 2),
        ],
        name="augment",
    )

    def augment(images):
        turns = tf.random.uniform([], 0, 4, dtype=tf.int32, seed=seed + 3)
        return tf.image.rot90(colour(images, training=True), k=turns)

    return augment


def resize(images, image_size: int):
    """The model's own first-layer resize, done early (tf.data) so images of any size can share a batch.

    Kept in float32, never rounded: the model's resize of an already-sized
    image is then the identity, so what training, validation and calibration
    see is exactly what the app's full-size upload becomes inside the model.
    """
    tf = tensorflow()
    return tf.image.resize(tf.cast(images, tf.float32), (image_size, image_size), antialias=True)
