"""Is this a dermoscopic image at all? And if it is, are its imaging conditions unusual?

Two outcomes that must never be confused:
- *refused*: not a dermoscopic lesion image (a document, a face, a landscape,
  a chart, a blank or noise frame): no probabilities, no alert;
- *unusual imaging conditions* (colour cast, vignette, blur, exposure): the
  full result, with a warning that names what is unusual.

The refusal is a small neural network (one hidden layer; five of them,
their logits averaged, folded into one) on the network's pooled features and
a few image statistics (``imaging``), fitted when a version is registered: positives are
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from skin_model import shift
from skin_model.imaging import STAT_NAMES, image_stats, stats_table, unusual_conditions, usual_ranges

FALSE_REFUSALS = 0.01  # per condition, on validation
L2 = 1.0
HIDDEN, MEMBERS, MLP_L2, MLP_STEPS = 16, 5, 1e-3, 1200  # measured: bench/RESULTS.md, "Not-a-lesion gate"
HARD_ROUNDS, HARD_WEIGHT = 3, 10.0  # refits with the negatives that got through weighted up (see fit_mined)
SHRINK = 0.1  # of the lesions' feature covariance towards its mean variance: some 200 features, few images per source
FIRST_STAT_NAMES = STAT_NAMES[:13]  # what the logistic gate was fitted on (versions without "stat_names")


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


Embed = Callable[[list[np.ndarray]], np.ndarray]  # images -> pooled features, through the model's own resize


def fit(embed: Embed, train: Sequence[np.ndarray], val: Sequence[np.ndarray], negatives: Sequence[np.ndarray]) -> dict:
    """Fit the refusal model and its threshold; also the training ranges behind the "unusual" warnings.

    ``train`` and ``val`` are training and validation images (uint8 RGB);
    ``embed`` maps a list of images to the network's pooled features. Every image is
    shown under each of ``shift.LOOKS``; the threshold keeps to ``FALSE_REFUSALS`` under each.
    """
    positives, negatives = shift.under_every_look(train), shift.under_every_look(negatives)
    images = positives + negatives
    features, stats = _batched(embed, images), stats_table(images, field_of_view=True)
    typical = Typical.fit(compact(features[: len(positives)]))
    x = _design(features, stats, typical)
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    shown = [shift.under(name, val) for name in shift.LOOKS]
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
    reference["fitted_under"] = ["as taken" if name is None else name for name in shift.LOOKS]
    return reference


def _batched(embed: Embed, images: list[np.ndarray], batch: int = 64) -> np.ndarray:
    return np.concatenate([embed(images[i : i + batch]) for i in range(0, len(images), batch)])
