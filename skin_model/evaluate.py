"""Metrics over plain arrays: labels in, numbers out, no TensorFlow.

Balanced accuracy averages recall over the classes present in the labels,
so a class with no test images neither helps nor hurts.
"""

from __future__ import annotations

import itertools

import numpy as np

from skin_model import CLASSES
from skin_model.config import MELANOMA

MEL = CLASSES.index(MELANOMA)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def confusion(y: np.ndarray, pred: np.ndarray, k: int = len(CLASSES)) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y, pred), 1)
    return matrix


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    matrix = confusion(y, pred)
    support = matrix.sum(axis=1)
    present = support > 0
    return float((np.diag(matrix)[present] / support[present]).mean()) if present.any() else 0.0


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve by ranks (Mann-Whitney); None without both classes."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks of ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> dict[str, list[float]]:
    """False and true positive rates at every distinct score (for charts)."""
    positive = positive.astype(bool)
    thresholds = np.unique(np.concatenate([[0.0, 1.0 + 1e-9], scores]))[::-1]
    tpr = [float((scores[positive] >= t).mean()) if positive.any() else 0.0 for t in thresholds]
    fpr = [float((scores[~positive] >= t).mean()) if (~positive).any() else 0.0 for t in thresholds]
    return {"fpr": fpr, "tpr": tpr, "threshold": [float(min(t, 1.0)) for t in thresholds]}


def sensitivity_specificity(
    p_mel: np.ndarray, is_mel: np.ndarray, threshold: float | np.ndarray
) -> tuple[float, float]:
    """At one threshold, or at each image's own (an array beside ``p_mel``)."""
    alert = p_mel >= threshold
    is_mel = is_mel.astype(bool)
    sens = float(alert[is_mel].mean()) if is_mel.any() else float("nan")
    spec = float((~alert[~is_mel]).mean()) if (~is_mel).any() else float("nan")
    return sens, spec


def operating_curve(p_mel: np.ndarray, is_mel: np.ndarray, extra: tuple[float, ...] = ()) -> list[dict[str, float]]:
    """Sensitivity and specificity at thresholds 0.01..0.99 and ``extra`` (the clinician's slider)."""
    thresholds = sorted({round(float(t), 2) for t in np.arange(0.01, 1.0, 0.01)} | {float(t) for t in extra})
    rows = []
    for t in thresholds:
        sens, spec = sensitivity_specificity(p_mel, is_mel, t)
        rows.append({"threshold": t, "sensitivity": round(sens, 4), "specificity": round(spec, 4)})
    return rows


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising validation negative log-likelihood (1-D search)."""

    def nll(t: float) -> float:
        p = softmax(logits, t)[np.arange(len(y)), y]
        return float(-np.log(np.clip(p, 1e-12, 1)).mean())

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 60))
    best = float(grid[np.argmin([nll(t) for t in grid])])
    lo, hi = best / 1.1, best * 1.1
    for _ in range(40):  # golden-section refinement
        a, b = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
        lo, hi = (lo, b) if nll(a) < nll(b) else (a, hi)
    return round((lo + hi) / 2, 4)


def _known(value: float) -> float | None:
    """Rounded, or None when undefined (no melanomas, or no other images): JSON has no NaN."""
    return None if value != value else round(value, 4)


# ISIC 2017 challenge, part 3, on its 600 test images: the top entry by the mean of the two ROC AUCs (Matsunaga et
# al. 2017, an ensemble of pretrained networks with extra data). Ours are on its validation split, not its test set.
CHALLENGE_2017_TOP = {"melanoma_roc_auc": 0.868, "seborrheic_keratosis_roc_auc": 0.953, "mean": 0.911}


def challenge_2017(per_class: dict) -> dict | None:
    """The ISIC 2017 task-3 yardstick: melanoma vs rest and seborrheic keratosis vs rest ROC AUC, and their mean.

    None unless both classes and some other image are present (the AUCs are undefined otherwise).
    """
    mel, sk = per_class[MELANOMA]["roc_auc"], per_class["seborrheic keratosis"]["roc_auc"]
    if mel is None or sk is None:
        return None
    return {"melanoma_roc_auc": mel, "seborrheic_keratosis_roc_auc": sk, "mean": round((mel + sk) / 2, 4)}


def metrics(logits: np.ndarray, y: np.ndarray, temperature: float, threshold: float | np.ndarray) -> dict:
    """Everything the model card, the CLI and the pages show for one split (``threshold``: one, or each image's)."""
    probs = softmax(logits, temperature)
    pred = probs.argmax(axis=1)
    matrix = confusion(y, pred)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    per_class = {}
    for i, name in enumerate(CLASSES):
        tp = matrix[i, i]
        precision = tp / predicted[i] if predicted[i] else 0.0
        recall = tp / support[i] if support[i] else None  # no images of this class: unknown, not 0
        f1 = (
            2 * precision * recall / (precision + recall)
            if recall and precision + recall
            else (None if recall is None else 0.0)
        )
        auc = roc_auc(probs[:, i], y == i)
        per_class[name] = {
            "precision": round(float(precision), 4),
            "recall": None if recall is None else round(float(recall), 4),
            "f1": None if f1 is None else round(float(f1), 4),
            "support": int(support[i]),
            "roc_auc": None if auc is None else round(auc, 4),
        }
    is_mel = y == MEL
    sens, spec = sensitivity_specificity(probs[:, MEL], is_mel, threshold)
    return {
        "images": len(y),
        "accuracy": round(float((pred == y).mean()), 4),
        "balanced_accuracy": round(balanced_accuracy(y, pred), 4),
        "melanoma_sensitivity": _known(sens),
        "melanoma_specificity": _known(spec),
        "melanoma_roc_auc": per_class[MELANOMA]["roc_auc"],
        "challenge_2017": challenge_2017(per_class),
        "ece_before_temperature": round(expected_calibration_error(softmax(logits), y), 4),
        "ece": round(expected_calibration_error(probs, y), 4),
        "per_class": per_class,
        "confusion": matrix.tolist(),
        "melanoma_roc": roc_curve(probs[:, MEL], is_mel),
    }
