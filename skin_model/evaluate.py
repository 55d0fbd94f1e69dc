"""Metrics over plain arrays: labels in, numbers out, no TensorFlow.

Balanced accuracy averages recall over the classes present in the labels,
so a class with no test images neither helps nor hurts.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

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


def wilson_lower(successes: int, n: int, z: float = 1.645) -> float:
    """One-sided 95 % lower confidence bound of a proportion (Wilson score)."""
    if n == 0:
        return 0.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - spread) / (1 + z * z / n))


def alert_threshold(p_mel: np.ndarray, is_mel: np.ndarray, sensitivity: float) -> float:
    """The highest threshold whose sensitivity is at least ``sensitivity`` with 95 % confidence.

    A validation set holds only some fifty melanomas, so its point estimate of
    sensitivity is noisy; requiring the lower confidence bound to reach the
    target keeps the promise on new images too. With too few melanomas to
    reach the bound, every validation melanoma must be caught.
    """
    positives = np.sort(p_mel[is_mel.astype(bool)])
    n = len(positives)
    if n == 0:
        return 0.5
    misses = 0
    while misses + 1 < n and wilson_lower(n - misses - 1, n) >= sensitivity:
        misses += 1
    return float(positives[misses])


def caught_needed(n: int, sensitivity: float) -> int:
    """Melanomas of ``n`` that must be caught for the 95 % lower bound to reach ``sensitivity`` (all, when none do)."""
    return next((k for k in range(n + 1) if wilson_lower(k, n) >= sensitivity), n)


def alert_thresholds(
    p_mel: dict[str, np.ndarray], unusual: dict[str, np.ndarray], is_mel: np.ndarray, sensitivity: float
) -> tuple[float, float]:
    """The alert thresholds ``(usual, strict)`` that keep the sensitivity target under every condition.

    ``p_mel`` and ``unusual`` hold, per condition ("none": clean, and each
    stress condition), the validation images' P(melanoma) and whether the app
    would call their imaging conditions unusual. An image with unusual
    conditions is held to the strict threshold, the lowest that reaches the
    target under any condition on its own; every other image to the usual
    one, the highest that still reaches it under every condition with both
    thresholds in place, and never above what clean images alone would allow
    (else, were nearly every melanoma flagged, nothing would bound it).
    A cool cast lowers P(melanoma) and sets the strict threshold; holding
    images that look usual to it too would cost specificity where nothing
    is unusual.
    """
    is_mel = is_mel.astype(bool)
    strict = min(alert_threshold(p, is_mel, sensitivity) for p in p_mel.values())
    ceiling = alert_threshold(p_mel["none"], is_mel, sensitivity)
    needed = caught_needed(int(is_mel.sum()), sensitivity)

    def holds(usual: float) -> bool:
        return all((p[is_mel] >= np.where(unusual[c][is_mel], strict, usual)).sum() >= needed for c, p in p_mel.items())

    usual = strict
    for candidate in sorted({float(v) for p in p_mel.values() for v in p[is_mel] if strict < v <= ceiling}):
        if not holds(candidate):  # sensitivity only falls as the usual threshold rises
            break
        usual = candidate
    return usual, strict


def held_to(
    found: Mapping[str, np.ndarray], usual: float, strict: float, by_warning: Mapping[str, float] | None = None
) -> np.ndarray:
    """Each image's alert threshold: ``usual`` with no warning, else the lowest of its warnings' own.

    ``found``: per warning, which images carry it. A warning without its own
    threshold (``by_warning``; versions before had none) holds to ``strict``.
    """
    masks = [(np.asarray(mask, bool), (by_warning or {}).get(name, strict)) for name, mask in found.items()]
    thresholds = np.full(len(masks[0][0]) if masks else 0, usual, dtype=np.float64)
    for mask, own in masks:
        thresholds = np.where(mask, np.minimum(thresholds, own), thresholds)
    return thresholds


def warning_thresholds(
    p_mel: dict[str, np.ndarray],
    found: dict[str, dict[str, np.ndarray]],
    is_mel: np.ndarray,
    sensitivity: float,
    usual: float,
    strict: float,
) -> dict[str, float]:
    """Each unusual-conditions warning's own threshold: from ``strict`` up towards ``usual``, as the target allows.

    ``found``: per condition, per warning, which validation images carry it. The
    strict threshold is what the cool cast needs (melanomas read lower in cooler
    light); a vignette or an exposure change needs less, and holding such images
    to it spent their specificity for nothing. Each warning in turn is raised
    while sensitivity still reaches the target under every condition, each image
    held to the lowest threshold of its warnings, until none can rise further:
    a joint fit, since one image often carries several warnings.
    """
    is_mel = is_mel.astype(bool)
    needed = caught_needed(int(is_mel.sum()), sensitivity)
    names = list(next(iter(found.values()), {}))

    def holds(trial: dict[str, float]) -> bool:
        return all(
            (p[is_mel] >= held_to(found[c], usual, strict, trial)[is_mel]).sum() >= needed for c, p in p_mel.items()
        )

    candidates = sorted({float(v) for p in p_mel.values() for v in p[is_mel] if strict < v <= usual})
    own = dict.fromkeys(names, strict)
    raised = True
    while raised:  # sensitivity only falls as a threshold rises: stop a warning at its first failure
        raised = False
        for name in names:
            for candidate in (v for v in candidates if v > own[name]):
                if not holds(own | {name: candidate}):
                    break
                own, raised = own | {name: candidate}, True
    return own


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


def report(logits: np.ndarray, y: np.ndarray, temperature: float, threshold: float | np.ndarray) -> dict:
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
