"""The melanoma alert policy: which threshold each image is held to, and how those thresholds are fitted.

A version holds an image whose imaging conditions look usual to one
threshold and an image that carries an "unusual imaging conditions" warning
to a lower one (each warning its own), so the sensitivity target survives
another clinic's camera without every image paying for the worst one. The
thresholds are fitted on validation (``train.calibrate``), the rule is read
from a version's record (``AlertRule.of``) and applied by the predictor and
every scoring of a version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from skin_model.imaging import warnings_in

if TYPE_CHECKING:
    from skin_model.record import AlertPolicy


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


@dataclass(frozen=True)
class AlertRule:
    """Which melanoma alert threshold an image is held to: by the unusual imaging conditions it shows.

    ``ranges``: the usual ranges (``imaging.usual_ranges``); None holds every image to the strict threshold.
    ``by_warning``: each warning's own threshold (``warning_thresholds``); a warning without
    one (every warning of versions before them) holds to the strict threshold.
    """

    usual: float
    strict: float
    ranges: dict | None = None
    by_warning: Mapping[str, float] | None = None

    @classmethod
    def of(cls, policy: AlertPolicy, ranges: dict | None) -> AlertRule:
        """The rule a version's alert policy describes (a calibration result reads as one through ``record``)."""
        return cls(policy.threshold, policy.strict, ranges, policy.by_warning)

    def threshold_for(self, unusual: Sequence[str]) -> float:
        """One image's threshold, from the warnings it carries (``Gate.unusual``)."""
        return min((self.own(name) for name in unusual), default=self.usual)

    def own(self, warning: str) -> float:
        return (self.by_warning or {}).get(warning, self.strict)

    def thresholds(self, table: np.ndarray) -> np.ndarray:
        """Each image's threshold, from its row of an ``imaging.stats_table``."""
        if not self.ranges:
            return np.full(len(table), self.strict)
        return held_to(warnings_in(self.ranges, table), self.usual, self.strict, self.by_warning)
