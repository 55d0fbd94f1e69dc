"""Grad-CAM: where in the image the network looked for its top class.

Gradients of the class logit with respect to the last convolutional block,
averaged per channel, weight that block's maps; the map is resized to the
image and blended as a heatmap for the clinician.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from skin_model.config import TrainConfig
from skin_model.runtime import tensorflow


def gradcam(model, pixels: np.ndarray, class_index: int) -> np.ndarray:
    """A ``(H, W)`` map in [0, 1] at the image's own size."""
    tf = tensorflow()
    import keras

    net = keras.Model(model.inputs, [model.get_layer("last_conv").output, model.outputs[0]])
    x = tf.constant(pixels[None].astype(np.float32))
    with tf.GradientTape() as tape:
        maps, logits = net(x, training=False)
        score = logits[:, class_index]
    grads = tape.gradient(score, maps)[0].numpy()
    maps = maps[0].numpy()
    cam = np.maximum((maps * grads.mean(axis=(0, 1))).sum(axis=-1), 0)
    cam = cam / cam.max() if cam.max() > 0 else cam
    height, width = pixels.shape[:2]
    resized = Image.fromarray((cam * 255).astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0


def overlay(pixels: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a red-yellow heatmap over the image (uint8 RGB out)."""
    heat = np.stack([np.clip(cam * 2, 0, 1), np.clip(cam * 2 - 1, 0, 1), np.zeros_like(cam)], axis=-1) * 255
    weight = alpha * cam[..., None]
    return (pixels * (1 - weight) + heat * weight).astype(np.uint8)


# Seconds for Grad-CAM and its overlay on a 600 x 800 upload, 2 cores, beside a training job (issue 30): the
# custom CNN at 128 px 0.15-0.24 s (0.34 s the first time); the committed EfficientNet-Lite0 at 128 px 0.53-1.03 s
# (beside a benchmark), so it is off by default for Lite0 until measured under 0.3 s alone.
SECONDS = {"custom-cnn": 0.2, "efficientnet-lite0": 0.7}
CHEAP_S = 0.3


def cheap(config: TrainConfig) -> bool:
    """Grad-CAM costs under ``CHEAP_S`` an image for this version's network: shown by default in the detail view."""
    return SECONDS.get(config.backbone, 1.0) < CHEAP_S


CENTRAL_FIELD = 0.4  # semi-axes of the central ellipse, as a share of the image's width and height: half its area
OUTSIDE_WARNING = "the network looked mostly outside the lesion (rim, ruler or corners): treat this result with care"


def heat_outside(cam: np.ndarray, field: float = CENTRAL_FIELD) -> float:
    """The share of the Grad-CAM heat outside the central ellipse where a dermoscopic lesion sits (0 when cold)."""
    height, width = cam.shape
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((yy + 0.5 - height / 2) / (field * height)) ** 2 + ((xx + 0.5 - width / 2) / (field * width)) ** 2 <= 1
    total = float(cam.sum())
    return 0.0 if total <= 0 else float(cam[~inside].sum()) / total


def looked_outside(cam: np.ndarray) -> bool:
    """Most of the heat fell outside the lesion's central field: the warning ``OUTSIDE_WARNING`` applies."""
    return heat_outside(cam) > 0.5


def legend(steps: int = 11) -> list[tuple[float, tuple[int, int, int]]]:
    """The overlay's colours from no attention to the most (what :func:`overlay` blends in, at full strength)."""
    cam = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    heat = np.stack([np.clip(cam * 2, 0, 1), np.clip(cam * 2 - 1, 0, 1), np.zeros_like(cam)], axis=-1) * 255
    return [(float(c), tuple(int(v) for v in h)) for c, h in zip(cam, heat, strict=True)]
