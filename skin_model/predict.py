"""From pixels to what the clinician reads: probabilities, risk, alert, warnings.

The model gives logits; probabilities are ``softmax(logits / T)`` with the
temperature fitted on validation, so "70 %" means about 70 % on held-out
data. The melanoma alert fires when P(melanoma) reaches the threshold chosen
on validation for the model's target sensitivity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from skin_model import CLASSES, images
from skin_model.config import MALIGNANT, MELANOMA, PRE_MALIGNANT
from skin_model.evaluate import softmax
from skin_model.gate import Gate
from skin_model.modelinfo import ModelInfo
from skin_model.registry import Registry, Version
from skin_model.runtime import tensorflow
from skin_model.similar import INDEX_FILE, Index, Neighbour

UNCERTAIN_TOP = 0.5
UNCERTAIN_ENTROPY = 0.75  # normalised entropy, 1 = uniform over the 9 classes
NOT_A_LESION = "not a dermoscopic lesion image: no diagnosis is given"


@dataclass(frozen=True)
class Prediction:
    """One image's result; ``to_dict`` is the CLI's and the download's JSON.

    A refused image (``lesion_like`` False: not a dermoscopic image) has no
    probabilities, no top class, no risk group and no alert (all None/empty):
    nothing a reader could mistake for a diagnosis.
    """

    file: str
    probabilities: dict[str, float]
    top_class: str | None
    top_probability: float | None
    risk_group: str | None
    melanoma_probability: float | None
    melanoma_alert: bool | None
    alert_threshold: float
    warnings: list[str] = field(default_factory=list)
    model_version: int | None = None
    lesion_like: bool = True
    alert_probability: float | None = None  # the P(melanoma) compared with the threshold
    gate_score: float | None = None  # P(dermoscopic image) by the gate
    similar: list[Neighbour] | None = None  # None: not asked for; refused images get none

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.similar is None:
            data.pop("similar")
        else:
            data["similar"] = [n.to_dict() for n in self.similar]
        return data


def risk_group(name: str) -> str:
    if name in MALIGNANT:
        return "malignant"
    if name in PRE_MALIGNANT:
        return "pre-malignant"
    return "benign"


def grouped_risk(probabilities: np.ndarray, melanoma_alert: bool) -> str:
    """The risk group with the most probability in total; never "benign" while the melanoma alert is on."""
    if melanoma_alert:
        return "malignant"
    totals: dict[str, float] = {}
    for name, p in zip(CLASSES, probabilities, strict=True):
        totals[risk_group(name)] = totals.get(risk_group(name), 0.0) + float(p)
    return max(totals, key=totals.get)


class Predictor:
    """A loaded registry version, ready for one image at a time."""

    def __init__(self, version: Version, model):
        tf = tensorflow()
        from skin_model.network import dihedral, resize
        from skin_model.robustness import two_heads

        self.version = version
        self.info = ModelInfo.parse(version.metadata, f"model version {version.number}")
        self.metadata = version.metadata
        self.temperature = self.info.temperature
        self.threshold = self.info.alert_threshold
        self.views = self.info.views
        net = two_heads(model)
        self._model = model
        spec = [tf.TensorSpec([None, None, None, 3], tf.uint8)]  # cast inside: a float copy of a 600 px upload is 4x
        sized = lambda x: resize(x, self.info.image_size)  # the model's own first step, once for all views
        self._forward = tf.function(lambda x: net(sized(x), training=False), input_signature=spec)
        self._all_views = tf.function(lambda x: net(dihedral(sized(x)), training=False), input_signature=spec)
        self._gate = Gate(self.info.gate)
        found = version.artefact(INDEX_FILE)
        where = f"model version {version.number}: {INDEX_FILE}"
        self.index = Index.from_bytes(found.read_bytes(), where) if found else None

    @classmethod
    def load(cls, number: int | None = None, registry: Registry | None = None) -> Predictor:
        registry = registry or Registry()
        version = registry.live() if number is None else registry.get(number)
        return cls(version, registry.load(version))

    @property
    def keras_model(self):
        return self._model

    @staticmethod
    def class_index(name: str) -> int:
        return CLASSES.index(name)

    def logits_features(self, pixels: np.ndarray, tta: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Logits and pooled features of each view (upright first): the version's views, or 8 / 1 when ``tta``."""
        tf = tensorflow()
        x = tf.constant(np.ascontiguousarray(pixels[None], dtype=np.uint8))
        eight = self.views == 8 if tta is None else tta
        logits, features = (self._all_views if eight else self._forward)(x)
        return logits.numpy(), features.numpy()

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of one image from its views' logits: their mean, then the temperature."""
        return softmax(logits.mean(axis=0, keepdims=True), self.temperature)[0]

    def predict(
        self,
        pixels: np.ndarray,
        name: str = "image",
        tta: bool | None = None,
        threshold: float | None = None,
        similar: int = 0,
    ) -> Prediction:
        """Classify decoded RGB pixels (see ``images.decode``); ``similar``: how many similar training images.

        ``tta``: None serves the views the version was calibrated on; True / False force 8 / 1. Forcing
        one view on a version calibrated on 8 scores it against a threshold validated on their mean (for
        benchmarks; the app and the CLI never do). ``threshold``: None holds the image to the version's own,
        or a stricter one when the gate finds its imaging conditions unusual (see ``gate.AlertRule``).
        """
        logits, features = self.logits_features(pixels, tta)
        probs = self.probabilities(logits)  # logits averaged over the views, as calibrated
        top = int(probs.argmax())
        mel = CLASSES.index(MELANOMA)
        p_mel = round(float(probs[mel]), 6)
        p_alert = p_mel
        if len(logits) > self.views:  # more views than validated: averaging may only add alerts, never remove one
            p_alert = max(p_mel, round(float(softmax(logits[:1], self.temperature)[0, mel]), 6))
        verdict = self._gate.check(pixels, features[:1])  # the upright view: what the gate was fitted on
        chosen = threshold is not None  # the clinician's own threshold applies to every image alike
        threshold = float(threshold) if chosen else self.info.alert_rule.threshold_for(verdict.unusual)
        if not verdict.lesion_like:
            return self._refused(name, threshold, verdict.score, asked=similar > 0)
        warnings = images.quality(pixels).warnings()
        if verdict.unusual:
            stricter = not chosen and threshold < self.threshold
            warnings.append(
                "unusual imaging conditions: "
                + ", ".join(verdict.unusual)
                + "; the result holds less well, check the image and the camera settings"
                + (f"; the stricter melanoma alert threshold {threshold:.3g} applies" if stricter else "")
            )
        entropy = float(-(probs * np.log(np.clip(probs, 1e-12, 1))).sum() / np.log(len(CLASSES)))
        if probs[top] < UNCERTAIN_TOP or entropy > UNCERTAIN_ENTROPY:
            warnings.append(f"uncertain: top probability {probs[top]:.0%}, consider a second opinion or biopsy")
        return Prediction(
            file=name,
            probabilities={c: round(float(p), 6) for c, p in zip(CLASSES, probs, strict=True)},
            top_class=CLASSES[top],
            top_probability=round(float(probs[top]), 6),
            risk_group=grouped_risk(probs, p_alert >= threshold),
            melanoma_probability=p_mel,
            melanoma_alert=p_alert >= threshold,
            alert_probability=p_alert,
            alert_threshold=threshold,
            warnings=warnings,
            model_version=self.version.number,
            lesion_like=True,
            gate_score=round(verdict.score, 4),
            similar=self.similar_cases(features[0], similar) if similar > 0 else None,
        )

    def similar_cases(self, feature: np.ndarray, k: int) -> list[Neighbour]:
        """The ``k`` nearest indexed training images (none when this version has no index)."""
        return self.index.nearest(feature, k) if self.index is not None else []

    def _refused(self, name: str, threshold: float, score: float, asked: bool = False) -> Prediction:
        return Prediction(
            file=name,
            probabilities={},
            top_class=None,
            top_probability=None,
            risk_group=None,
            melanoma_probability=None,
            melanoma_alert=None,
            alert_threshold=threshold,
            warnings=[NOT_A_LESION],
            model_version=self.version.number,
            lesion_like=False,
            gate_score=round(score, 4),
            similar=[] if asked else None,
        )

    def predict_bytes(self, data: bytes, name: str, **options) -> Prediction:
        return self.predict(images.decode(data, name=name), name=name, **options)

    def predict_file(self, path: Path, **options) -> Prediction:
        return self.predict(images.decode(path), name=str(path), **options)


def alert_options(metadata: dict, min_sensitivity: float = 0.70) -> list[float]:
    """Thresholds a clinician may choose: those where validation sensitivity stays >= ``min_sensitivity``.

    Always includes the model's own threshold, so the default is exactly the validated one.
    """
    threshold = float(metadata.get("alert_threshold", 0.5))
    curve = metadata.get("operating_curve") or []
    allowed = {row["threshold"] for row in curve if row["sensitivity"] >= min_sensitivity}
    return sorted(allowed | {threshold})


def operating_point(metadata: dict, threshold: float) -> dict | None:
    """Validation sensitivity and specificity at a threshold of the operating curve."""
    curve = metadata.get("operating_curve") or []
    return min(curve, key=lambda row: abs(row["threshold"] - threshold)) if curve else None


def batch_rows(predictions: list[Prediction], when: str) -> list[dict]:
    """One flat row per image for the CSV and JSON downloads."""
    rows = []
    for p in predictions:
        row = {
            "file": p.file,
            "model_version": p.model_version,
            "time": when,
            "lesion_like": p.lesion_like,
            "top_class": p.top_class,
            "top_probability": p.top_probability,
            "risk_group": p.risk_group,
            "melanoma_probability": p.melanoma_probability,
            "melanoma_alert": p.melanoma_alert,
            "alert_threshold": p.alert_threshold,
            "warnings": "; ".join(p.warnings),
        }
        row |= {f"p_{name}": p.probabilities.get(name) for name in CLASSES}
        rows.append(row)
    return rows
