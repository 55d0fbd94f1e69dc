"""Is this a dermoscopic image at all? And if it is, are its imaging conditions unusual?

Two outcomes that must never be confused:
- *refused*: not a dermoscopic lesion image (a document, a face, a landscape,
  a chart, a blank or noise frame): no probabilities, no alert;
- *unusual imaging conditions* (colour cast, vignette, blur, exposure): the
  full result, with a warning that names what is unusual.

The refusal is a logistic regression on the network's pooled features and
a few image statistics, fitted when a version is registered: positives are
training images under every stress condition (so another clinic's camera is
never a reason to refuse), negatives are real photographs and drawings that
are certainly not dermoscopy (``negatives``). Its threshold lets at most
0.5 % of validation images be refused under any condition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from skin_model import shift

STATS_SIZE = 128  # statistics are scale-dependent: measure every image at one size
FALSE_REFUSALS = 0.005  # per condition, on validation
L2 = 1.0


def image_stats(pixels: np.ndarray) -> dict[str, float]:
    """Cheap, scale-free statistics of an image (measured at ``STATS_SIZE``)."""
    image = Image.fromarray(pixels).resize((STATS_SIZE, STATS_SIZE), Image.Resampling.BILINEAR)
    rgb = np.asarray(image, dtype=np.float32)
    grey = rgb.mean(axis=-1)
    saturation = np.asarray(image.convert("HSV"), dtype=np.float32)[..., 1]
    lap = -4 * grey[1:-1, 1:-1] + grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:]
    chroma = rgb / (rgb.sum(axis=-1, keepdims=True) + 1.0)
    illuminant = np.power(np.mean(np.power(rgb / 255.0 + 1e-6, 6), axis=(0, 1)), 1 / 6)
    illuminant = illuminant / (np.linalg.norm(illuminant) + 1e-6)
    corners = np.concatenate([grey[:16, :16], grey[:16, -16:], grey[-16:, :16], grey[-16:, -16:]])
    return {
        "brightness": float(grey.mean()),
        "contrast": float(grey.std()),
        "saturation": float(saturation.mean()),
        "saturation_spread": float(saturation.std()),
        "white_fraction": float((rgb.min(axis=-1) > 235).mean()),
        "dark_fraction": float((rgb.max(axis=-1) < 25).mean()),
        "redness": float((rgb[..., 0] - rgb[..., 2]).mean()),
        "detail": float(np.log1p(lap.var())),
        "chroma_r": float(chroma[..., 0].mean()),
        "chroma_g": float(chroma[..., 1].mean()),
        "chroma_spread": float(chroma.std(axis=(0, 1)).mean()),
        "cast_blue_red": float(np.log((illuminant[2] + 1e-3) / (illuminant[0] + 1e-3))),
        "dark_corners": float((corners < 25).mean()),
    }


STAT_NAMES = tuple(image_stats(np.zeros((8, 8, 3), np.uint8)))


def stats_vector(pixels: np.ndarray) -> np.ndarray:
    return np.array(list(image_stats(pixels).values()), np.float64)


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one image."""

    lesion_like: bool
    score: float  # P(dermoscopic) by the gate's model
    unusual: list[str]  # unusual imaging conditions, for the warning


def _design(features: np.ndarray, stats: np.ndarray) -> np.ndarray:
    return np.concatenate([np.atleast_2d(features), np.atleast_2d(stats)], axis=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 25) -> tuple[np.ndarray, float]:
    """Class-balanced, L2-regularised logistic regression by Newton's method (small, exact, no extra library)."""
    n, d = x.shape
    sample_w = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) * n
    xb = np.concatenate([x, np.ones((n, 1))], axis=1)
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = _sigmoid(xb @ w)
        grad = xb.T @ (sample_w * (p - y)) + penalty * w
        hess = (xb * (sample_w * p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1], float(w[-1])


class Gate:
    """A fitted gate (as stored in a version's metadata) applied to images."""

    def __init__(self, reference: dict):
        self.reference = reference
        self.mean, self.scale = np.array(reference["mean"]), np.array(reference["scale"])
        self.weights, self.bias = np.array(reference["weights"]), float(reference["bias"])
        self.threshold = float(reference["threshold"])
        self.ranges = reference["unusual_ranges"]

    def scores(self, features: np.ndarray, stats: np.ndarray) -> np.ndarray:
        z = (_design(features, stats) - self.mean) / self.scale
        return _sigmoid(z @ self.weights + self.bias)

    def unusual(self, stats: dict[str, float]) -> list[str]:
        """Imaging conditions outside what the training images show, in words."""
        found = []
        lo, hi = self.ranges["cast_blue_red"]
        if stats["cast_blue_red"] > hi:
            found.append("cool (blue) colour cast")
        elif stats["cast_blue_red"] < lo:
            found.append("warm (yellow) colour cast")
        if stats["dark_corners"] > self.ranges["dark_corners"][1]:
            found.append("dark vignette at the corners")
        lo, hi = self.ranges["brightness"]
        if not lo <= stats["brightness"] <= hi:
            found.append("unusual exposure")
        if stats["saturation"] < self.ranges["saturation"][0]:
            found.append("washed-out colours")
        return found

    def check(self, pixels: np.ndarray, features: np.ndarray) -> Verdict:
        stats = image_stats(pixels)
        score = float(self.scores(features, np.array(list(stats.values())))[0])
        return Verdict(lesion_like=score >= self.threshold, score=score, unusual=self.unusual(stats))


Embed = Callable[[list[np.ndarray]], np.ndarray]  # images -> pooled features, through the model's own resize


def _stressed(images: Sequence[np.ndarray], seed: int) -> list[np.ndarray]:
    """Each image under one seeded condition (or none), so positives and negatives both span every camera."""
    rng = np.random.default_rng(seed)
    names = [None, *shift.CONDITIONS]
    out = []
    for pixels in images:
        name = names[int(rng.integers(len(names)))]
        out.append(shift.apply(name, pixels) if name else pixels)
    return out


def fit(embed: Embed, train: Sequence[np.ndarray], val: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> dict:
    """Fit the refusal model and its threshold; also the training ranges behind the "unusual" warnings.

    ``train`` and ``val`` are training and validation images (uint8 RGB);
    ``embed`` maps a list of images to the network's pooled features.
    """
    positives = list(train) + _stressed(train, 1)
    negatives = list(negatives) + _stressed(negatives, 2)
    images = positives + negatives
    x = _design(_batched(embed, images), np.stack([stats_vector(p) for p in images]))
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    weights, bias = fit_logistic((x - mean) / scale, y)
    clean_stats = [image_stats(p) for p in train]
    ranges = {
        k: _range([s[k] for s in clean_stats]) for k in ("cast_blue_red", "dark_corners", "brightness", "saturation")
    }
    reference = {
        "mean": mean.round(6).tolist(),
        "scale": scale.round(6).tolist(),
        "weights": weights.round(6).tolist(),
        "bias": round(bias, 6),
        "threshold": 0.5,
        "unusual_ranges": ranges,
        "stat_names": list(STAT_NAMES),
    }
    gate = Gate(reference)
    lowest = []
    for name in [None, *shift.CONDITIONS]:
        shown = [shift.apply(name, p) for p in val] if name else list(val)
        scores = gate.scores(_batched(embed, shown), np.stack([stats_vector(p) for p in shown]))
        lowest.append(float(np.quantile(scores, FALSE_REFUSALS, method="lower")))  # refuses fewer, never more
    reference["threshold"] = round(min(0.5, min(lowest)), 6)
    negative_scores = Gate(reference).scores(
        x[len(positives) :, : -len(STAT_NAMES)], x[len(positives) :, -len(STAT_NAMES) :]
    )
    reference["negatives_refused"] = round(float((negative_scores < reference["threshold"]).mean()), 4)
    reference["negatives"] = len(negatives)
    return reference


def _range(values: list[float]) -> list[float]:
    lo, hi = np.quantile(values, [0.005, 0.995])
    margin = 0.1 * (hi - lo)
    return [round(float(lo - margin), 4), round(float(hi + margin), 4)]


def _batched(embed: Embed, images: list[np.ndarray], batch: int = 64) -> np.ndarray:
    return np.concatenate([embed(images[i : i + batch]) for i in range(0, len(images), batch)])
