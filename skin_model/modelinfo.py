"""What a version must carry before it may serve a clinician, checked from its record.

A version whose record lacks its temperature, alert threshold or gate is
refused with one line, never run at a silent default (1.0 / 0.5 / no gate).
"""

from __future__ import annotations

from dataclasses import dataclass

from skin_model.alert import AlertRule
from skin_model.errors import RegistryError
from skin_model.record import AlertPolicy, VersionRecord

GATE_KEYS = ("mean", "scale", "weights", "bias", "threshold", "unusual_ranges")


@dataclass(frozen=True)
class ModelInfo:
    """What serving needs, checked: the input size, the alert policy (temperature and threshold set), the gate."""

    image_size: int
    policy: AlertPolicy
    gate: dict

    @property
    def alert_rule(self) -> AlertRule:
        """The threshold each image is held to, by its imaging conditions as the gate judges them."""
        return AlertRule.of(self.policy, self.gate["unusual_ranges"])

    @property
    def strict_threshold(self) -> float:
        return self.policy.strict

    @classmethod
    def of(cls, record: VersionRecord, where: str = "model version") -> ModelInfo:
        """Check ``record``; ``where`` names the version in the error ("model version 3")."""

        def lacks(name: str) -> RegistryError:
            return RegistryError(f"{where}: its metadata has no {name}; it cannot be served (retrain it)")

        policy = record.policy
        if policy.temperature is None:
            raise lacks("temperature")
        if policy.threshold is None:
            raise lacks("alert_threshold")
        if record.gate is None:
            raise lacks("gate")
        missing = [k for k in GATE_KEYS if k not in record.gate.params]
        if missing:
            raise RegistryError(f"{where}: its not-a-lesion gate lacks {', '.join(missing)} (retrain it)")
        if record.image_size is None:
            raise lacks("image_size")
        return cls(record.image_size, policy, dict(record.gate.params))
