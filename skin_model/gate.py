"""Is this a dermoscopic image at all? And if it is, are its imaging conditions unusual?

Two outcomes that must never be confused:
- *refused*: not a dermoscopic lesion image (a document, a face, a landscape,
  a chart, a blank or noise frame): no probabilities, no alert;
- *unusual imaging conditions* (colour cast, vignette, blur, exposure): the
  full result, with a warning that names what is unusual.

The refusal is a small neural network (one hidden layer; five of them,
their logits averaged, folded into one) on the network's pooled features and
a few image statistics, fitted when a version is registered: positives are
training images under every stress condition and under a seeded pair of them
(so another clinic's camera is never a reason to refuse), negatives are real
photographs and drawings that are certainly not dermoscopy (``negatives``),
also under every condition and a pair (so a condition is never a reason to
accept). A logistic regression, the first
gate, refused 86 % of those negatives at best; drawings, charts and flat
frames are not linearly apart from a defocused or over-exposed lesion. Its
threshold lets at most 1 % of validation images be refused under any condition,
or under two at once (the issue's limit), which still refuses every fitting negative.
Versions registered with the logistic gate keep it (no hidden layer).

One more input is how far an image's features sit from the training
lesions' (a Mahalanobis distance): the network learns where its negatives
lie, the distance where lesions lie, so a kind of picture unlike every
negative still has something to stand out by. Versions fitted before it
keep their inputs.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from skin_model import evaluate, shift

STATS_SIZE = 64  # statistics are scale-dependent: measure every image at one size (small: 1-2 ms an image)
FALSE_REFUSALS = 0.01  # per condition, on validation
L2 = 1.0
HIDDEN, MEMBERS, MLP_L2, MLP_STEPS = 16, 5, 1e-3, 1200  # measured: bench/RESULTS.md, "Not-a-lesion gate"
HARD_ROUNDS, HARD_WEIGHT = 3, 10.0  # refits with the negatives that got through weighted up (see fit_mined)
SHRINK = 0.1  # of the lesions' feature covariance towards its mean variance: some 200 features, few images per source
PAIRED, PAIR_SEED = "two conditions at once", 7
FITTED = (None, *shift.CONDITIONS, PAIRED)  # what the gate is fitted under; each keeps to FALSE_REFUSALS on validation


STAT_NAMES = (
    "brightness",
    "contrast",
    "saturation",
    "saturation_spread",
    "white_fraction",
    "dark_fraction",
    "redness",
    "detail",
    "chroma_r",
    "chroma_g",
    "chroma_spread",
    "cast_blue_red",
    "dark_corners",
    # drawings, documents and blank frames: few colours, large exactly-flat areas
    "distinct_colours",
    "flat_fraction",
    # a lesion: a darker centre on skin-coloured surroundings, structure at a coarse scale
    "centre_darkness",
    "skin_fraction",
    "coarse_structure",
)
RANGED = ("cast_blue_red", "dark_corners", "brightness", "saturation")  # behind the "unusual conditions" warning
USUAL = (0.01, 0.99)  # the quantiles of the training images that bound the usual conditions (see usual_ranges)
FIRST_STAT_NAMES = STAT_NAMES[:13]  # what the logistic gate was fitted on (versions without "stat_names")
STATS_CHUNK = 256  # images measured together: one numpy pass each, not 30 small ones an image


def _small(pixels: np.ndarray, box: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The image (or the ``box`` of it, ``[y0, x0, y1, x1]`` as shares) at ``STATS_SIZE`` as RGB and HSV (uint8)."""
    # a large upload is first box-reduced by a whole factor (a 600 px one to 150 px): half the time, same statistics;
    # an image under 4x STATS_SIZE (every training image) is resized in one step, as the gate was fitted
    h, w = pixels.shape[:2]
    region = None if box is None else (box[1] * w, box[0] * h, box[3] * w, box[2] * h)
    image = Image.fromarray(pixels).resize(
        (STATS_SIZE, STATS_SIZE), Image.Resampling.BILINEAR, box=region, reducing_gap=2.0
    )
    return np.asarray(image), np.asarray(image.convert("HSV"))


def stats_table(images: Sequence[np.ndarray], field_of_view: bool = False) -> np.ndarray:
    """Cheap, scale-free statistics of each image (measured at ``STATS_SIZE``): ``(N, len(STAT_NAMES))``.

    ``field_of_view``: inside the box the network's ``FieldOfView`` layer zooms to, so a black
    dermatoscope rim, which the network never sees, does not make a lesion look like a flat, dark
    drawing to the gate either. Measured a chunk of images at a time, on contiguous channel planes:
    the gate's fit measures about ten thousand images, at 0.5 ms each this way and 1.4 ms one at a
    time (the same values; a test holds them to each image's own).
    """
    parts = []
    for i in range(0, len(images), STATS_CHUNK):
        chunk = images[i : i + STATS_CHUNK]
        small = [_small(p) for p in chunk]
        if field_of_view and small:
            from skin_model.network import compiled_boxes

            boxes = np.asarray(compiled_boxes()(np.stack([rgb for rgb, _ in small])), np.float64)
            whole = np.all(boxes == [0.0, 0.0, 1.0, 1.0], axis=1)
            small = [s if full else _small(p, b) for s, p, b, full in zip(small, chunk, boxes, whole, strict=True)]
        parts.append(_table(small))
    return np.concatenate(parts) if parts else np.zeros((0, len(STAT_NAMES)))


def _table(small: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    n, s = len(small), STATS_SIZE
    # channel planes, contiguous: reductions over a trailing axis of 3 are numpy's slowest path
    r, g, b = np.stack([rgb for rgb, _ in small]).transpose(3, 0, 1, 2).astype(np.float32)
    hue, saturation = np.stack([hsv for _, hsv in small]).transpose(3, 0, 1, 2)[:2].astype(np.float32)
    total = r + g + b
    grey = total / 3
    lap = -4 * grey[:, 1:-1, 1:-1] + grey[:, :-2, 1:-1] + grey[:, 2:, 1:-1] + grey[:, 1:-1, :-2] + grey[:, 1:-1, 2:]
    chroma = [channel / (total + 1.0) for channel in (r, g, b)]
    illuminant = np.stack([np.mean(np.power(c / 255.0 + 1e-6, 6), axis=(1, 2)) for c in (r, g, b)], axis=1) ** (1 / 6)
    illuminant = illuminant / (np.linalg.norm(illuminant, axis=-1, keepdims=True) + 1e-6)
    c, q = s // 8, s // 4
    flatten = lambda *parts: np.concatenate([p.reshape(n, -1) for p in parts], axis=1)
    corners = flatten(grey[:, :c, :c], grey[:, :c, -c:], grey[:, -c:, :c], grey[:, -c:, -c:])
    ring = flatten(grey[:, :c], grey[:, -c:], grey[:, c:-c, :c], grey[:, c:-c, -c:])
    levels = [channel.astype(np.int32) >> 3 for channel in (r, g, b)]  # 32 levels a channel
    codes = np.sort((levels[0] * 1024 + levels[1] * 32 + levels[2]).reshape(n, -1), axis=1)
    flat = (np.abs(np.diff(grey, axis=1))[:, :, :-1] < 0.5) & (np.abs(np.diff(grey, axis=2))[:, :-1, :] < 0.5)
    blocks = grey.reshape(n, 8, s // 8, 8, s // 8).mean(axis=(2, 4))
    spread = grey.std(axis=(1, 2))
    hue = hue * (360 / 255)
    columns = {
        "brightness": grey.mean(axis=(1, 2)),
        "contrast": spread,
        "saturation": saturation.mean(axis=(1, 2)),
        "saturation_spread": saturation.std(axis=(1, 2)),
        "white_fraction": (np.minimum(np.minimum(r, g), b) > 235).mean(axis=(1, 2)),
        "dark_fraction": (np.maximum(np.maximum(r, g), b) < 25).mean(axis=(1, 2)),
        "redness": (r - b).mean(axis=(1, 2)),
        "detail": np.log1p(lap.var(axis=(1, 2))),
        "chroma_r": chroma[0].mean(axis=(1, 2)),
        "chroma_g": chroma[1].mean(axis=(1, 2)),
        "chroma_spread": np.mean([p.std(axis=(1, 2)) for p in chroma], axis=0),
        "cast_blue_red": np.log((illuminant[:, 2] + 1e-3) / (illuminant[:, 0] + 1e-3)),
        "dark_corners": (corners < 25).mean(axis=1),
        "distinct_colours": (1 + (np.diff(codes, axis=1) != 0).sum(axis=1)) / (s * s),
        "flat_fraction": flat.mean(axis=(1, 2)),
        "centre_darkness": (ring.mean(axis=1) - grey[:, q:-q, q:-q].mean(axis=(1, 2))) / (spread + 1.0),
        "skin_fraction": (((hue < 50) | (hue > 330)) & (saturation > 20)).mean(axis=(1, 2)),
        "coarse_structure": blocks.std(axis=(1, 2)) / (spread + 1.0),
    }
    return np.stack([columns[name] for name in STAT_NAMES], axis=1).astype(np.float64)


def image_stats(pixels: np.ndarray, field_of_view: bool = False) -> dict[str, float]:
    """One image's statistics by name (see ``stats_table``)."""
    return dict(zip(STAT_NAMES, stats_table([pixels], field_of_view)[0].tolist(), strict=True))


@dataclass(frozen=True)
class Verdict:
    """The gate's answer for one image."""

    lesion_like: bool
    score: float  # P(dermoscopic) by the gate's model
    unusual: list[str]  # unusual imaging conditions, for the warning


GATE_FEATURES = 256  # a network's pooled features beyond this many are averaged in equal groups down to it


def compact(features: np.ndarray) -> np.ndarray:
    """The pooled features as the gate reads them: a wide backbone's (1,280 for Lite0) averaged in equal groups.

    The gate's inverse covariance grows with the square of the width (8.7 MB in the record at 1,280); 256
    averaged channels keep what tells a lesion from a photograph. Narrower features (the custom CNN's) pass as
    they are, so the gates fitted before this keep their meaning.
    """
    features = np.atleast_2d(features)
    width = features.shape[1]
    if width <= GATE_FEATURES or width % GATE_FEATURES:
        return features
    return features.reshape(len(features), GATE_FEATURES, width // GATE_FEATURES).mean(axis=2)


def _design(features: np.ndarray, stats: np.ndarray, typical: Typical | None = None) -> np.ndarray:
    """The gate's inputs: features, statistics and, for gates fitted with it, the distance from the lesions."""
    features = compact(features)
    columns = [features, np.atleast_2d(stats)]
    if typical is not None:
        columns.append(typical.distance(np.atleast_2d(features))[:, None])
    return np.concatenate(columns, axis=1)


@dataclass(frozen=True)
class Typical:
    """Where the training lesions' features lie: their mean and shrunk inverse covariance."""

    centre: np.ndarray
    precision: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> Typical:
        """Fitted, then rounded as it is stored: the gate is fitted on the distance it will be served."""
        cov = np.cov(features, rowvar=False)
        cov = (1 - SHRINK) * cov + SHRINK * np.trace(cov) / len(cov) * np.eye(len(cov))
        return cls.unpacked(cls(features.mean(axis=0), np.linalg.inv(cov)).packed())

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Log squared Mahalanobis distance of each row (the log tames the far tail that negatives reach)."""
        d = features - self.centre
        return np.log(np.sum((d @ self.precision) * d, axis=1) + 1e-6)  # a matrix product: einsum's loop took minutes

    def packed(self) -> dict:
        return {"centre": pack(self.centre), "precision": pack(self.precision)}

    @classmethod
    def unpacked(cls, packed: dict) -> Typical:
        return cls(unpack(packed["centre"]).astype(np.float64), unpack(packed["precision"]).astype(np.float64))


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


def fit_ensemble(
    x: np.ndarray, y: np.ndarray, members: int = MEMBERS, sample_weight: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``members`` one-hidden-layer networks from different seeds, folded into one whose logit is the mean of theirs.

    One network's misses move with its seed; the mean of five is steadier, and folded it is still one
    small matrix product to serve. Each is a ReLU layer of ``HIDDEN`` units trained on class-balanced
    cross-entropy by full-batch Adam; they train side by side as one wide layer (each member's loss
    depends only on its own weights, so this is exactly training them one by one, four times faster).
    """
    n, d = x.shape
    x, y = x.astype(np.float32), y.astype(np.float32)  # half the time of float64; bench-gate's figures held
    x_t = np.ascontiguousarray(x.T)  # the gradient's product reads it transposed every step
    inits = [np.random.default_rng(seed) for seed in range(members)]
    first = [(r.normal(0, np.sqrt(2 / d), (d, HIDDEN)), r.normal(0, np.sqrt(1 / HIDDEN), HIDDEN)) for r in inits]
    params = {
        "hidden_weights": np.concatenate([w for w, _ in first], axis=1),  # (d, members * HIDDEN)
        "hidden_bias": np.zeros(members * HIDDEN),
        "weights": np.stack([v for _, v in first]),  # (members, HIDDEN)
        "bias": np.zeros(members),
    }
    params = {k: v.astype(np.float32) for k, v in params.items()}
    sample_w = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)).astype(np.float32)[:, None]
    if sample_weight is not None:
        sample_w = sample_w * sample_weight.astype(np.float32)[:, None]
    moment = {k: np.zeros_like(v) for k, v in params.items()}
    second = {k: np.zeros_like(v) for k, v in params.items()}
    for t in range(1, MLP_STEPS + 1):
        h = np.maximum(x @ params["hidden_weights"] + params["hidden_bias"], 0).reshape(n, members, HIDDEN)
        g = sample_w * (_sigmoid((h * params["weights"]).sum(axis=2) + params["bias"]) - y[:, None])  # (n, members)
        gh = (g[:, :, None] * params["weights"] * (h > 0)).reshape(n, members * HIDDEN)
        grads = {
            "hidden_weights": x_t @ gh + MLP_L2 * params["hidden_weights"],
            "hidden_bias": gh.sum(axis=0),
            "weights": np.einsum("nm,nmh->mh", g, h) + MLP_L2 * params["weights"],
            "bias": g.sum(axis=0),
        }
        for k, grad in grads.items():
            moment[k] = 0.9 * moment[k] + 0.1 * grad
            second[k] = 0.999 * second[k] + 0.001 * grad**2
            params[k] -= 0.01 * (moment[k] / (1 - 0.9**t)) / (np.sqrt(second[k] / (1 - 0.999**t)) + 1e-8)
    return {
        "hidden_weights": params["hidden_weights"],
        "hidden_bias": params["hidden_bias"],
        "weights": params["weights"].ravel() / members,
        "bias": np.array([params["bias"].mean()]),
    }


def ensemble_scores(net: dict[str, np.ndarray], z: np.ndarray) -> np.ndarray:
    """P(dermoscopic) of standardised rows by a ``fit_ensemble`` result."""
    return _sigmoid(np.maximum(z @ net["hidden_weights"] + net["hidden_bias"], 0) @ net["weights"] + net["bias"])


def threshold_for(val_scores: Sequence[np.ndarray], allowed: float = FALSE_REFUSALS) -> float:
    """The lowest score kept by ``allowed`` of validation under every condition (refuses fewer, never more)."""
    return min(0.5, min(float(np.quantile(v, allowed, method="lower")) for v in val_scores))


def fit_mined(z: np.ndarray, y: np.ndarray, val: Sequence[np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """``fit_ensemble``, refitted with every negative that gets through weighted ``HARD_WEIGHT`` times more.

    ``val``: standardised validation rows, one block per condition, which set the threshold. A few
    negatives (a cooled cat inside a vignette, a retina under two conditions) sit among the lesions;
    which ones moves with the model's features, so a fresh version's gate could let them through.
    Weighting them up and refitting (bootstrapping, as face detectors have long been trained) keeps
    the validation allowance and often refuses them; but a refit can also pull validation lesions
    down and the threshold with them, so the fit that misses the fewest negatives is kept (the
    first, on a tie). Returns the network and how many refits it had.
    """
    boost = np.ones(len(y))
    best: tuple[int, dict[str, np.ndarray], int] | None = None
    for refits in range(HARD_ROUNDS + 1):
        net = fit_ensemble(z, y, sample_weight=boost)
        cut = threshold_for([ensemble_scores(net, v) for v in val])
        missed = (y == 0) & (ensemble_scores(net, z) >= cut)
        if best is None or missed.sum() < best[0]:
            best = (int(missed.sum()), net, refits)
        if not missed.any():
            break
        boost[missed] *= HARD_WEIGHT
    return best[1], best[2]


def pack(array: np.ndarray) -> dict:
    """A weight matrix as one line of metadata: float32 bytes in base64 (a JSON list of 17,000 numbers is 300 KB)."""
    data = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(data.shape), "float32_base64": base64.b64encode(data.tobytes()).decode("ascii")}


def unpack(packed: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(packed["float32_base64"]), dtype="<f4").reshape(packed["shape"])


class Gate:
    """A fitted gate (as stored in a version's metadata) applied to images."""

    def __init__(self, reference: dict):
        self.reference = reference
        self.mean, self.scale = np.array(reference["mean"]), np.array(reference["scale"])
        self.weights, self.bias = np.array(reference["weights"]), float(reference["bias"])
        self.hidden = (  # the network gate, as ``ensemble_scores`` takes it
            {
                "hidden_weights": unpack(reference["hidden_weights"]),
                "hidden_bias": np.array(reference["hidden_bias"]),
                "weights": self.weights,
                "bias": self.bias,
            }
            if "hidden_weights" in reference
            else None
        )
        self.threshold = float(reference["threshold"])
        self.ranges = reference["unusual_ranges"]
        self.stat_names = tuple(reference.get("stat_names", FIRST_STAT_NAMES))
        self.typical = Typical.unpacked(reference["typical"]) if "typical" in reference else None
        self.in_field_of_view = bool(reference.get("stats_in_field_of_view", False))  # gates before: the whole frame

    def stats(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """The image statistics this gate was fitted on, in its order: ``(N, len(self.stat_names))``."""
        return self.fitted_columns(stats_table(images, self.in_field_of_view))

    def fitted_columns(self, table: np.ndarray) -> np.ndarray:
        """The columns of a full ``stats_table`` this gate was fitted on, in its order."""
        return table[:, [STAT_NAMES.index(n) for n in self.stat_names]]

    def scores(self, features: np.ndarray, stats: np.ndarray) -> np.ndarray:
        return self.scores_of_rows((_design(features, stats, self.typical) - self.mean) / self.scale)

    def scores_of_rows(self, z: np.ndarray) -> np.ndarray:
        """P(dermoscopic) of rows already laid out by ``_design`` and standardised."""
        if self.hidden is not None:
            return ensemble_scores(self.hidden, z)
        return _sigmoid(z @ self.weights + self.bias)  # the first, logistic gate

    def unusual(self, stats: dict[str, float]) -> list[str]:
        """Imaging conditions outside what the training images show, in words."""
        return [name for name, found in unusual_conditions(self.ranges, stats).items() if found]

    def check(self, pixels: np.ndarray, features: np.ndarray) -> Verdict:
        stats = image_stats(pixels)  # the whole frame: a dark rim is still an unusual imaging condition
        inside = image_stats(pixels, field_of_view=True) if self.in_field_of_view else stats
        score = float(self.scores(features, np.array([inside[n] for n in self.stat_names]))[0])
        return Verdict(lesion_like=score >= self.threshold, score=score, unusual=self.unusual(stats))


def unusual_conditions(ranges: dict, stats: Mapping) -> dict[str, Any]:
    """Each unusual imaging condition, found or not: one image's statistics by name, or a column of them per name."""
    cast, brightness = stats["cast_blue_red"], stats["brightness"]
    return {
        "cool (blue) colour cast": cast > ranges["cast_blue_red"][1],
        "warm (yellow) colour cast": cast < ranges["cast_blue_red"][0],
        "dark vignette at the corners": stats["dark_corners"] > ranges["dark_corners"][1],
        "unusual exposure": (brightness < ranges["brightness"][0]) | (brightness > ranges["brightness"][1]),
        "washed-out colours": stats["saturation"] < ranges["saturation"][0],
    }


def usual_ranges(images: Sequence[np.ndarray]) -> dict[str, list[float]]:
    """The central 98 % of the training images' colour cast, corner darkness, brightness and saturation.

    Outside it an image gets a warning and the stricter melanoma alert
    threshold (see ``evaluate.alert_thresholds``): tight enough that a
    stress condition is mostly caught, which is what lets the usual threshold
    stay higher; 1 % of the training images a side fall outside by construction.
    """
    table = stats_table(images)
    return {k: _range(table[:, STAT_NAMES.index(k)]) for k in RANGED}


def warnings_in(ranges: dict, table: np.ndarray) -> dict[str, np.ndarray]:
    """Per unusual-conditions warning, which rows of a ``stats_table`` carry it."""
    found = unusual_conditions(ranges, {k: table[:, STAT_NAMES.index(k)] for k in RANGED})
    return {name: np.asarray(f) for name, f in found.items()}


def any_unusual(ranges: dict, table: np.ndarray) -> np.ndarray:
    """Per row of a ``stats_table``: is any imaging condition unusual? (What the app warns about, many at once.)"""
    return np.any(np.stack(list(warnings_in(ranges, table).values())), axis=0)


@dataclass(frozen=True)
class AlertRule:
    """Which melanoma alert threshold an image is held to: by the unusual imaging conditions it shows.

    ``ranges``: the usual ranges (``usual_ranges``); None holds every image to the strict threshold.
    ``by_warning``: each warning's own threshold (``evaluate.warning_thresholds``); a warning without
    one (every warning of versions before them) holds to the strict threshold.
    """

    usual: float
    strict: float
    ranges: dict | None = None
    by_warning: Mapping[str, float] | None = None

    @classmethod
    def of(cls, calibrated: Mapping, ranges: dict | None) -> AlertRule:
        """The rule a calibration result (``train.calibrate``, a version's metadata) describes."""
        usual = calibrated["alert_threshold"]
        strict = calibrated.get("alert_threshold_unusual", usual)
        return cls(usual, usual if strict is None else strict, ranges, calibrated.get("alert_threshold_by_warning"))

    def threshold_for(self, unusual: Sequence[str]) -> float:
        """One image's threshold, from the warnings it carries (``Gate.unusual``)."""
        return min((self.own(name) for name in unusual), default=self.usual)

    def own(self, warning: str) -> float:
        return (self.by_warning or {}).get(warning, self.strict)

    def thresholds(self, table: np.ndarray) -> np.ndarray:
        """Each image's threshold, from its row of a ``stats_table``."""
        if not self.ranges:
            return np.full(len(table), self.strict)
        return evaluate.held_to(warnings_in(self.ranges, table), self.usual, self.strict, self.by_warning)


Embed = Callable[[list[np.ndarray]], np.ndarray]  # images -> pooled features, through the model's own resize


def under(name: str | None, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The images as taken (None), under one stress condition, or each under a seeded pair (``PAIRED``)."""
    if name is None:
        return list(images)
    return _paired(images) if name == PAIRED else [shift.apply(name, p) for p in images]


def _every_condition(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each image under every one of ``FITTED``: positives and negatives both span every camera."""
    return [shown for name in FITTED for shown in under(name, images)]


def _paired(images: Sequence[np.ndarray], seed: int = PAIR_SEED) -> list[np.ndarray]:
    """Each image under two different stress conditions at once, a seeded pair per image.

    A real camera differs in several ways together. Fitted on single
    conditions alone, version 1's gate refused 4 % of its validation and
    test images cooled inside a vignette (the oldest uploads' look), 6 %
    dimmed inside one and 3 % cooled and dimmed, though under 1 % under any
    one condition.
    """
    names = list(shift.CONDITIONS)
    rng = np.random.default_rng(seed)
    pairs = [rng.choice(len(names), 2, replace=False) for _ in images]
    return [shift.apply(names[b], shift.apply(names[a], p)) for (a, b), p in zip(pairs, images, strict=True)]


def fit(embed: Embed, train: Sequence[np.ndarray], val: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> dict:
    """Fit the refusal model and its threshold; also the training ranges behind the "unusual" warnings.

    ``train`` and ``val`` are training and validation images (uint8 RGB);
    ``embed`` maps a list of images to the network's pooled features.
    """
    positives, negatives = _every_condition(train), _every_condition(negatives)
    images = positives + negatives
    features, stats = _batched(embed, images), stats_table(images, field_of_view=True)
    typical = Typical.fit(compact(features[: len(positives)]))
    x = _design(features, stats, typical)
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    shown = [under(name, val) for name in FITTED]
    val_rows = [(_design(_batched(embed, s), stats_table(s, True), typical) - mean) / scale for s in shown]
    net, refits = fit_mined((x - mean) / scale, y, val_rows)
    ranges = usual_ranges(train)
    reference = {
        "mean": mean.round(6).tolist(),
        "scale": scale.round(6).tolist(),
        "hidden_weights": pack(net["hidden_weights"]),
        "hidden_bias": net["hidden_bias"].round(5).tolist(),
        "weights": net["weights"].round(5).tolist(),
        "bias": round(float(net["bias"][0]), 5),
        "threshold": 0.5,
        "unusual_ranges": ranges,
        "stat_names": list(STAT_NAMES),
        "typical": typical.packed(),
        "stats_in_field_of_view": True,
    }
    gate = Gate(reference)  # as stored (rounded), so the threshold is the one served
    reference["threshold"] = round(threshold_for([gate.scores_of_rows(v) for v in val_rows]), 6)
    negative_scores = Gate(reference).scores(features[len(positives) :], stats[len(positives) :])
    reference["negatives_refused"] = round(float((negative_scores < reference["threshold"]).mean()), 4)
    reference["negatives"] = len(negatives)
    reference["negatives_missed"] = int((negative_scores >= reference["threshold"]).sum())
    reference["false_refusals_allowed"] = FALSE_REFUSALS
    reference["hard_negative_refits"] = refits
    reference["fitted_under"] = ["as taken" if name is None else name for name in FITTED]
    return reference


def _range(values: np.ndarray) -> list[float]:
    lo, hi = np.quantile(values, USUAL)
    return [round(float(lo), 4), round(float(hi), 4)]


def _batched(embed: Embed, images: list[np.ndarray], batch: int = 64) -> np.ndarray:
    return np.concatenate([embed(images[i : i + batch]) for i in range(0, len(images), batch)])
