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
from skin_model.config import MALIGNANT, MELANOMA
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
    risk_group: str | None  # by P(malignant), see ``risk_group``; the alert is its own field
    melanoma_probability: float | None
    melanoma_alert: bool | None
    alert_threshold: float
    warnings: list[str] = field(default_factory=list)
    model_version: int | None = None
    lesion_like: bool = True
    alert_probability: float | None = None  # the P(melanoma) compared with the threshold
    gate_score: float | None = None  # P(dermoscopic image) by the gate
    similar: list[Neighbour] | None = None  # None: not asked for; refused images get none
    malignant_probability: float | None = None  # the malignant diagnoses summed: what sets the risk group
    unpredictable: tuple[str, ...] = ()  # classes this version cannot call: shown as such, never as 0.0 %
    pictures: int = 1  # how many pictures of one lesion were combined into this result

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.similar is None:
            data.pop("similar")
        else:
            data["similar"] = [n.to_dict() for n in self.similar]
        return data


# The risk group is read from the summed probability of the malignant diagnoses (``config.MALIGNANT``), never
# from the melanoma alert, which is shown on its own: an alert tuned to miss few melanomas fires on many benign
# lesions, and a group set by it would call every alerted nevus "malignant" and tell nothing.
RISK_GROUPS = (("high", 0.5), ("intermediate", 0.15), ("low", 0.0))  # lower bound of P(malignant) for each


def percent(value: float | None) -> str:
    """A probability or threshold as a clinician reads it: ``7.0 %``; "n/a" when unknown."""
    return "n/a" if value is None else f"{100 * value:.1f} %"


def risk_group(p_malignant: float) -> str:
    """``high``, ``intermediate`` or ``low`` by the summed malignant probability (bounds: ``RISK_GROUPS``)."""
    return next(name for name, bound in RISK_GROUPS if p_malignant >= bound)


def malignant_probability(probabilities: np.ndarray) -> float:
    """P(malignant): the calibrated probabilities of melanoma, basal and squamous cell carcinoma summed."""
    return float(sum(probabilities[CLASSES.index(name)] for name in MALIGNANT))


@dataclass(frozen=True)
class _Look:
    """One picture as the network and the gate saw it, before it becomes a result."""

    logits: np.ndarray  # one row per view
    features: np.ndarray
    verdict: object  # gate.Verdict
    threshold: float
    warnings: list[str]

    @property
    def score(self) -> float:
        return self.verdict.score


class Predictor:
    """A loaded registry version, ready for one image at a time."""

    def __init__(self, version: Version, model):
        tf = tensorflow()
        from skin_model.network import forward, two_heads

        self.version = version
        self.info = ModelInfo.of(version.record, f"model version {version.number}")
        self.record = version.record
        self.temperature = self.info.policy.temperature
        self.threshold = self.info.policy.threshold
        self.views = self.info.policy.views
        self.unpredictable = tuple(version.record.unpredictable)
        net = two_heads(model)
        self._model = model
        spec = [tf.TensorSpec([None, None, None, 3], tf.uint8)]  # cast inside: a float copy of a 600 px upload is 4x
        size = self.info.image_size  # the model's own first step, done once for all views
        self._forward = tf.function(lambda x: forward(net, x, 1, size), input_signature=spec)
        self._all_views = tf.function(lambda x: forward(net, x, 8, size, every_view=True), input_signature=spec)
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
        or a stricter one when the gate finds its imaging conditions unusual (see ``alert.AlertRule``).
        """
        look = self._look(pixels, tta, threshold)
        if not look.verdict.lesion_like:
            return self._refused(name, look.threshold, look.verdict.score, asked=similar > 0)
        return self._result(name, [look], similar)

    def predict_lesion(
        self, pictures: list[tuple[str, np.ndarray]], name: str, tta: bool | None = None, threshold: float | None = None
    ) -> tuple[Prediction, list[Prediction]]:
        """Several pictures of one lesion: one combined result and each picture's own, in order.

        The combined result averages the calibrated logits of every view of every picture the gate accepts
        (as the eight test-time views of one picture are combined), holds them to the lowest threshold any of
        those pictures is held to, and carries every picture's warnings. Refused pictures take no part; when
        all are refused, so is the lesion.
        """
        looks = [self._look(pixels, tta, threshold) for _, pixels in pictures]
        own = [
            self._result(n, [look])
            if look.verdict.lesion_like
            else self._refused(n, look.threshold, look.verdict.score)
            for (n, _), look in zip(pictures, looks, strict=True)
        ]
        accepted = [look for look in looks if look.verdict.lesion_like]
        if not accepted:
            return self._refused(name, min(look.threshold for look in looks), max(look.score for look in looks)), own
        return self._result(name, accepted), own

    def _look(self, pixels: np.ndarray, tta: bool | None, threshold: float | None) -> _Look:
        logits, features = self.logits_features(pixels, tta)
        verdict = self._gate.check(pixels, features[:1])  # the upright view: what the gate was fitted on
        chosen = threshold is not None  # the clinician's own threshold applies to every image alike
        threshold = float(threshold) if chosen else self.info.alert_rule.threshold_for(verdict.unusual)
        warnings = images.quality(pixels).warnings() if verdict.lesion_like else []
        if verdict.lesion_like and verdict.unusual:
            stricter = not chosen and threshold < self.threshold
            warnings.append(
                "unusual imaging conditions: "
                + ", ".join(verdict.unusual)
                + "; the result holds less well, check the image and the camera settings"
                + (f"; the stricter melanoma alert threshold {percent(threshold)} applies" if stricter else "")
            )
        return _Look(logits, features, verdict, threshold, warnings)

    def _result(self, name: str, looks: list[_Look], similar: int = 0) -> Prediction:
        """The result of one picture, or of several pictures of one lesion (their views' logits averaged)."""
        logits = np.concatenate([look.logits for look in looks])
        probs = self.probabilities(logits)  # logits averaged over the views (and pictures), as calibrated
        top = int(probs.argmax())
        mel = CLASSES.index(MELANOMA)
        p_mel = round(float(probs[mel]), 6)
        p_alert = p_mel
        for look in looks:  # more views than validated: averaging may only add alerts, never remove one
            if len(look.logits) > self.views:
                p_alert = max(p_alert, round(float(softmax(look.logits[:1], self.temperature)[0, mel]), 6))
        threshold = min(look.threshold for look in looks)
        warnings = list(dict.fromkeys(w for look in looks for w in look.warnings))
        entropy = float(-(probs * np.log(np.clip(probs, 1e-12, 1))).sum() / np.log(len(CLASSES)))
        if probs[top] < UNCERTAIN_TOP or entropy > UNCERTAIN_ENTROPY:
            warnings.append(f"uncertain: top probability {probs[top]:.0%}, consider a second opinion or biopsy")
        p_malignant = round(malignant_probability(probs), 6)
        return Prediction(
            file=name,
            probabilities={c: round(float(p), 6) for c, p in zip(CLASSES, probs, strict=True)},
            top_class=CLASSES[top],
            top_probability=round(float(probs[top]), 6),
            risk_group=risk_group(p_malignant),
            melanoma_probability=p_mel,
            melanoma_alert=p_alert >= threshold,
            alert_probability=p_alert,
            alert_threshold=threshold,
            warnings=warnings,
            model_version=self.version.number,
            lesion_like=True,
            gate_score=round(min(look.verdict.score for look in looks), 4),
            similar=self.similar_cases(looks[0].features[0], similar) if similar > 0 else None,
            malignant_probability=p_malignant,
            unpredictable=self.unpredictable,
            pictures=len(looks),
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
            unpredictable=self.unpredictable,
        )

    def predict_bytes(self, data: bytes, name: str, **options) -> Prediction:
        return self.predict(images.decode(data, name=name), name=name, **options)

    def predict_file(self, path: Path, **options) -> Prediction:
        return self.predict(images.decode(path), name=str(path), **options)


def batch_rows(predictions: list[Prediction], when: str) -> list[dict]:
    """One flat row per image (or lesion) for the CSV and JSON downloads, with the page's headline and risk group.

    A class the version cannot predict gets an empty probability cell and is named in ``not_predicted``.
    """
    from skin_model.headline import headline

    rows = []
    for p in predictions:
        row = {
            "file": p.file,
            "model_version": p.model_version,
            "time": when,
            "pictures": p.pictures,
            "headline": headline(p).title,
            "lesion_like": p.lesion_like,
            "top_class": p.top_class,
            "top_probability": p.top_probability,
            "risk_group": p.risk_group,
            "malignant_probability": p.malignant_probability,
            "melanoma_probability": p.melanoma_probability,
            "melanoma_alert": p.melanoma_alert,
            "alert_threshold": p.alert_threshold,
            "warnings": "; ".join(p.warnings),
            "not_predicted": "; ".join(p.unpredictable),
        }
        row |= {f"p_{name}": None if name in p.unpredictable else p.probabilities.get(name) for name in CLASSES}
        rows.append(row)
    return rows
