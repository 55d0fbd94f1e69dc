"""The record every registered version must carry before it may serve a clinician.

One reader for what the predictor relies on: a version whose metadata lacks
its temperature, alert threshold or gate is refused with one line, never run
at a silent default (1.0 / 0.5 / no gate). The alert threshold for unusual
imaging conditions is optional: versions from before it have one threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from skin_model import CLASSES
from skin_model.config import VIEWS
from skin_model.errors import RegistryError
from skin_model.gate import AlertRule

GATE_KEYS = ("mean", "scale", "weights", "bias", "threshold", "unusual_ranges")


@dataclass(frozen=True)
class ModelInfo:
    """What serving needs, validated; ``raw`` keeps the rest (history, metrics) for pages and cards."""

    image_size: int
    temperature: float
    alert_threshold: float
    gate: dict
    operating_curve: list[dict]
    raw: dict
    views: int = 1  # test-time views it was calibrated on (versions before views: the upright one)
    # for images with unusual imaging conditions (versions before it: one threshold for every image)
    alert_threshold_unusual: float | None = None
    # each unusual-conditions warning's own (versions before: the strict one for every warning)
    alert_threshold_by_warning: dict[str, float] | None = None

    @property
    def alert_rule(self) -> AlertRule:
        """The threshold each image is held to, by its imaging conditions as the gate judges them."""
        return AlertRule(
            self.alert_threshold, self.strict_threshold, self.gate["unusual_ranges"], self.alert_threshold_by_warning
        )

    @property
    def strict_threshold(self) -> float:
        """The lower of the two: what holds for any image, usual or not (serving without the gate uses it)."""
        return self.alert_threshold if self.alert_threshold_unusual is None else self.alert_threshold_unusual

    @classmethod
    def parse(cls, metadata: dict, where: str = "model version") -> ModelInfo:
        """Check ``metadata``; ``where`` names the version in the error ("model version 3")."""

        def need(key: str, kind: type | tuple[type, ...]):
            if key not in metadata:
                raise RegistryError(f"{where}: its metadata has no {key}; it cannot be served (retrain it)")
            value = metadata[key]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise RegistryError(f"{where}: {key} must be {_name(kind)}; received {value!r}")
            return value

        classes = metadata.get("classes", list(CLASSES))
        if list(classes) != list(CLASSES):
            raise RegistryError(f"{where}: trained for classes {classes}, not the nine this app shows")
        temperature = float(need("temperature", (int, float)))
        threshold = float(need("alert_threshold", (int, float)))
        if not temperature > 0:
            raise RegistryError(f"{where}: temperature must be positive; received {temperature}")
        if not 0 <= threshold <= 1:
            raise RegistryError(f"{where}: alert threshold must be in [0, 1]; received {threshold}")
        strict = metadata.get("alert_threshold_unusual")
        if strict is not None:
            strict = float(need("alert_threshold_unusual", (int, float)))
            if not 0 <= strict <= threshold:
                raise RegistryError(
                    f"{where}: the alert threshold for unusual imaging conditions must be in [0, {threshold}] "
                    f"(no higher than the usual one); received {strict}"
                )
        by_warning = metadata.get("alert_threshold_by_warning")
        if by_warning is not None:
            low = threshold if strict is None else strict
            if not isinstance(by_warning, dict) or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and low <= t <= threshold
                for t in by_warning.values()
            ):
                raise RegistryError(
                    f"{where}: alert_threshold_by_warning must map each warning to a threshold in "
                    f"[{low}, {threshold}]; received {by_warning!r}"
                )
            by_warning = {str(name): float(t) for name, t in by_warning.items()}
        gate = need("gate", dict)
        missing = [k for k in GATE_KEYS if k not in gate]
        if missing:
            raise RegistryError(f"{where}: its not-a-lesion gate lacks {', '.join(missing)} (retrain it)")
        views = (metadata.get("config") or {}).get("views", 1)
        if views not in VIEWS:
            raise RegistryError(f"{where}: views must be 1 or 8; received {views!r}")
        return cls(
            views=int(views),
            image_size=int(need("image_size", int)),
            temperature=temperature,
            alert_threshold=threshold,
            alert_threshold_unusual=strict,
            alert_threshold_by_warning=by_warning,
            gate=gate,
            operating_curve=list(metadata.get("operating_curve") or []),
            raw=metadata,
        )


def _name(kind: type | tuple[type, ...]) -> str:
    return "a mapping" if kind is dict else "a number"
