"""Is this a dermoscopic lesion image like the ones the model learned from?

A photo of a face, a document or a blank frame must not get a confident
diagnosis. Two checks, both fitted on the training split and stored with the
model version:
- image statistics (contrast, colour saturation, white area, redness,
  fine detail) measured at a fixed size, against the training range;
- the network's pooled features, as a Mahalanobis-like distance in the top
  principal components plus the residual, against a limit set on validation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from skin_model.runtime import tensorflow

STATS_SIZE = 128  # statistics are scale-dependent: measure every image at one size
COMPONENTS = 32


def image_stats(pixels: np.ndarray) -> dict[str, float]:
    image = Image.fromarray(pixels).resize((STATS_SIZE, STATS_SIZE), Image.Resampling.BILINEAR)
    rgb = np.asarray(image, dtype=np.float32)
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    saturation = np.asarray(image.convert("HSV"), dtype=np.float32)[..., 1]
    lap = -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    return {
        "contrast": float(grey.std()),
        "saturation": float(saturation.mean()),
        "white_fraction": float((rgb.min(axis=-1) > 235).mean()),
        "redness": float((rgb[..., 0] - rgb[..., 2]).mean()),
        "detail": float(np.log1p(lap.var())),
    }


def _embedder(model):
    import keras

    return keras.Model(model.inputs, model.get_layer("features").output)


def _embed(net, x: np.ndarray) -> np.ndarray:
    tf = tensorflow()
    return np.concatenate(
        [net(tf.constant(x[i : i + 128], tf.float32), training=False).numpy() for i in range(0, len(x), 128)]
    )


def fit_reference(model, train_x: Sequence[np.ndarray], val_x: Sequence[np.ndarray]) -> dict:
    """Ranges and feature statistics of the training originals; limits widened a little past validation.

    ``train_x`` and ``val_x`` may be arrays or :class:`skin_model.dataset.Pixels` (decoded a batch at a time).
    """
    stats = [image_stats(p) for p in train_x]
    ranges = {}
    for key in stats[0]:
        values = np.array([s[key] for s in stats])
        lo, hi = np.quantile(values, [0.0025, 0.9975])
        margin = 0.15 * (hi - lo)
        ranges[key] = [round(float(lo - margin), 4), round(float(hi + margin), 4)]
    net = _embedder(model)
    train_f = _embed(net, train_x)
    mean = train_f.mean(axis=0)
    _, singular, vt = np.linalg.svd(train_f - mean, full_matrices=False)
    k = min(COMPONENTS, len(singular))
    reference = {
        "image_ranges": ranges,
        "mean": mean.round(6).tolist(),
        "components": vt[:k].round(6).tolist(),
        "variances": (singular[:k] ** 2 / max(len(train_f) - 1, 1) + 1e-6).round(8).tolist(),
    }
    residual = train_f - mean - (train_f - mean) @ vt[:k].T @ vt[:k]
    reference["residual_variance"] = float((residual**2).sum(axis=1).mean() + 1e-6)
    distances = OutlierCheck(reference).feature_distance(_embed(net, val_x))
    reference["feature_limit"] = round(float(np.quantile(distances, 0.995)) * 1.1, 4)
    return reference


class OutlierCheck:
    """Applies a stored reference to one image."""

    def __init__(self, reference: dict | None):
        self.reference = reference or {}

    def feature_distance(self, features: np.ndarray) -> np.ndarray:
        ref = self.reference
        mean, components = np.array(ref["mean"]), np.array(ref["components"])
        z = np.atleast_2d(features) - mean
        projected = z @ components.T
        residual = ((z - projected @ components) ** 2).sum(axis=1)
        k = len(components)
        return np.sqrt(
            ((projected**2) / np.array(ref["variances"])).sum(axis=1) / k + residual / ref["residual_variance"]
        )

    def reasons(self, pixels: np.ndarray, features: np.ndarray) -> list[str]:
        """Which checks fail; empty when the image looks like a training image (or no reference)."""
        if not self.reference:
            return []
        found = [
            key
            for key, value in image_stats(pixels).items()
            if not self.reference["image_ranges"][key][0] <= value <= self.reference["image_ranges"][key][1]
        ]
        if float(self.feature_distance(features)[0]) > self.reference["feature_limit"]:
            found.append("features")
        return found
