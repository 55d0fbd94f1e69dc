"""The record of one registered model version: what it learnt from, how it was calibrated, how well it does.

``metadata.json`` beside every version is this record written out. It is
built in one place (``VersionRecord.from_dict``, which training, the
committed default and the registry's reader all go through) and written
in one (``VersionRecord.to_dict``), so a page never guesses at a key.

The file keeps the flat layout of the versions written before this module
(``temperature`` and ``alert_threshold`` at the top), plus a ``schema``
number; a file without one is schema 1 and reads the same. A field a
version from before it lacks is None (or empty) here, never a made-up
default; what serving needs is checked by ``modelinfo.ModelInfo.of``.
A value present but wrong (a threshold outside [0, 1], views 4) is refused
with one line when the record is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from skin_model import CLASSES
from skin_model.config import VIEWS, TrainConfig
from skin_model.errors import RegistryError, SkinModelError

SCHEMA = 2  # 1: the files written before the schema field (read the same way)
FEW = 10  # a class with fewer training images than this is not one the version can call


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RegistryError(f"{name} must be a number; received {value!r}")
    return float(value)


def _mapping(value: object, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise RegistryError(f"{name} must be a mapping; received {value!r}")
    return value


def _known(cls, data: object, name: str, convert: Mapping[str, Callable] | None = None):
    """``cls`` from the JSON keys it names (converted by ``convert``); an absent key keeps the field's default."""
    names = {f.name for f in fields(cls)}
    convert = convert or {}
    values = {k: v for k, v in _mapping(data, name).items() if k in names}
    return cls(**{k: convert[k](v) if k in convert and v is not None else v for k, v in values.items()})


def plain(value: Any) -> Any:
    """JSON values of a record part: None fields left out (absent reads as None), tuples as lists."""
    if isinstance(value, TrainConfig):
        return value.to_dict()
    if is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value) if getattr(value, f.name) is not None}
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Challenge:
    """The ISIC 2017 challenge's scores on one set of images."""

    melanoma_roc_auc: float | None = None
    seborrheic_keratosis_roc_auc: float | None = None
    mean: float | None = None


@dataclass(frozen=True)
class Scores:
    """One set of images scored (a split, a source, a stress condition, a folder from elsewhere).

    Which fields are set depends on the set: a row of a per-source table has no confusion matrix; images from
    elsewhere carry their own per-source and stress tables.
    """

    images: int | None = None
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    melanoma_sensitivity: float | None = None
    melanoma_specificity: float | None = None
    melanoma_roc_auc: float | None = None
    challenge_2017: Challenge | None = None
    ece_before_temperature: float | None = None
    ece: float | None = None
    per_class: Mapping[str, Mapping[str, Any]] | None = None
    confusion: list[list[int]] | None = None
    melanoma_roc: Mapping[str, list[float]] | None = None
    refused: float | None = None
    per_source: Mapping[str, Scores] | None = None
    stress: Mapping[str, Scores] | None = None

    @classmethod
    def from_dict(cls, data: object, name: str = "metrics") -> Scores:
        table = lambda part: lambda rows: {k: Scores.from_dict(v, f"{name}.{part}") for k, v in rows.items()}
        convert = {
            "challenge_2017": lambda d: _known(Challenge, d, f"{name}.challenge_2017"),
            "per_source": table("per_source"),
            "stress": table("stress"),
        }
        return _known(cls, data, name, convert)

    def recall(self, name: str) -> float | None:
        return ((self.per_class or {}).get(name) or {}).get("recall")


@dataclass(frozen=True)
class HeldOut:
    """The split a version is quoted on: ``key`` as in ``metrics`` ("test", "val"), ``name`` as people read it."""

    key: str
    scores: Scores

    @property
    def name(self) -> str:
        return "test" if self.key == "test" else "validation"


@dataclass(frozen=True)
class Metrics:
    """Validation and test scores (a run without a test split has validation alone)."""

    val: Scores | None = None
    test: Scores | None = None

    @classmethod
    def from_dict(cls, data: object) -> Metrics:
        return _known(
            cls, data, "metrics", {k: lambda d, k=k: Scores.from_dict(d, f"metrics.{k}") for k in ("val", "test")}
        )

    @property
    def headline(self) -> HeldOut | None:
        """The held-out split a version is quoted on: test, else validation; None when it has neither."""
        if self.test is not None:
            return HeldOut("test", self.test)
        return HeldOut("val", self.val) if self.val is not None else None

    def splits(self) -> list[HeldOut]:
        """Every split scored, validation first."""
        return [HeldOut(k, s) for k, s in (("val", self.val), ("test", self.test)) if s is not None]


@dataclass(frozen=True)
class Robustness:
    """The test split by acquisition source and under named device conditions."""

    per_source: Mapping[str, Scores] = field(default_factory=dict)
    stress: Mapping[str, Scores] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: object) -> Robustness:
        table = lambda part: lambda rows: {k: Scores.from_dict(v, f"robustness.{part}") for k, v in rows.items()}
        return _known(cls, data, "robustness", {"per_source": table("per_source"), "stress": table("stress")})


@dataclass(frozen=True)
class ThresholdCost:
    """Validation specificity: the clean threshold alone, as applied, and every image at the strict one."""

    clean_threshold: float | None = None
    clean_specificity: float | None = None
    specificity: float | None = None
    strict_specificity: float | None = None
    unusual_share: float | None = None


@dataclass(frozen=True)
class OperatingPoint:
    """Validation sensitivity and specificity at one alert threshold."""

    threshold: float
    sensitivity: float
    specificity: float


@dataclass(frozen=True)
class AlertPolicy:
    """What turns the network's logits into the melanoma alert: temperature, thresholds, views.

    ``threshold`` holds for usual images; ``unusual`` (versions before it: none) for images whose imaging
    conditions are unusual; ``by_warning`` each such warning's own (versions before: ``unusual`` for all).
    ``temperature`` or ``threshold`` None: a version that cannot be served (see ``ModelInfo.of``).
    """

    threshold: float | None = None
    unusual: float | None = None
    by_warning: Mapping[str, float] | None = None
    temperature: float | None = None
    operating_curve: tuple[OperatingPoint, ...] = ()
    views: int = 1

    def __post_init__(self) -> None:
        if self.temperature is not None and not self.temperature > 0:
            raise RegistryError(f"temperature must be positive; received {self.temperature}")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise RegistryError(f"alert threshold must be in [0, 1]; received {self.threshold}")
        if self.unusual is not None and self.threshold is not None and not 0 <= self.unusual <= self.threshold:
            raise RegistryError(
                "the alert threshold for unusual imaging conditions must be in "
                f"[0, {self.threshold}] (no higher than the usual one); received {self.unusual}"
            )
        known = self.by_warning is not None and self.threshold is not None
        if known and not all(self.strict <= t <= self.threshold for t in self.by_warning.values()):
            raise RegistryError(
                f"alert_threshold_by_warning must map each warning to a threshold in "
                f"[{self.strict}, {self.threshold}]; received {dict(self.by_warning)!r}"
            )
        if self.views not in VIEWS:
            raise RegistryError(f"views must be 1 or 8; received {self.views!r}")

    @property
    def strict(self) -> float | None:
        """The lower of the two: what holds for any image, usual or not (serving without the gate uses it)."""
        return self.threshold if self.unusual is None else self.unusual

    def options(self, min_sensitivity: float = 0.70) -> list[float]:
        """Thresholds a clinician may choose: validation sensitivity stays >= ``min_sensitivity``; always the
        version's own, so the default is exactly the validated one."""
        allowed = {p.threshold for p in self.operating_curve if p.sensitivity >= min_sensitivity}
        return sorted(allowed | {self.threshold})

    def point(self, threshold: float) -> OperatingPoint | None:
        """Validation sensitivity and specificity at the operating curve's threshold nearest ``threshold``."""
        curve = self.operating_curve
        return min(curve, key=lambda p: abs(p.threshold - threshold)) if curve else None


@dataclass(frozen=True)
class Calibration:
    """The alert policy, and what choosing it cost on validation."""

    policy: AlertPolicy = field(default_factory=AlertPolicy)
    threshold_by_condition: Mapping[str, float] | None = None
    cost: ThresholdCost | None = None

    @classmethod
    def from_dict(cls, data: Mapping, views: int) -> Calibration:
        """From a record's top-level keys (``temperature``, ``alert_threshold``...)."""

        def number(key: str) -> float | None:
            return None if data.get(key) is None else _number(data[key], key)

        by_warning = data.get("alert_threshold_by_warning")
        if by_warning is not None:
            by_warning = {
                str(k): _number(t, "alert_threshold_by_warning")
                for k, t in _mapping(by_warning, "alert_threshold_by_warning").items()
            }
        curve = tuple(_known(OperatingPoint, p, "operating_curve") for p in data.get("operating_curve") or [])
        policy = AlertPolicy(
            number("alert_threshold"),
            number("alert_threshold_unusual"),
            by_warning,
            number("temperature"),
            curve,
            views,
        )
        cost = data.get("threshold_cost")
        return cls(
            policy,
            data.get("threshold_by_condition"),
            None if cost is None else _known(ThresholdCost, cost, "threshold_cost"),
        )

    def to_dict(self) -> dict:
        p = self.policy
        flat = {
            "temperature": p.temperature,
            "alert_threshold": p.threshold,
            "alert_threshold_unusual": p.unusual,
            "alert_threshold_by_warning": p.by_warning,
            "threshold_by_condition": self.threshold_by_condition,
            "threshold_cost": self.cost,
            "operating_curve": p.operating_curve or None,
        }
        return {k: plain(v) for k, v in flat.items() if v is not None}


@dataclass(frozen=True)
class GateRecord:
    """The not-a-lesion gate: ``params`` is what ``gate.Gate`` runs; the rest says what it was fitted on."""

    params: Mapping[str, Any]

    @property
    def threshold(self) -> float | None:
        return self.params.get("threshold")

    @property
    def negatives(self) -> int | None:
        return self.params.get("negatives")

    @property
    def negatives_refused(self) -> float | None:
        return self.params.get("negatives_refused")

    @property
    def negatives_missed(self) -> int | None:
        """Versions before the count: None (only the rounded share was kept)."""
        return self.params.get("negatives_missed")

    @property
    def false_refusals_allowed(self) -> float:
        return self.params.get("false_refusals_allowed", 0.005)  # the first gates' fixed budget

    @property
    def fitted_under(self) -> tuple[str, ...]:
        return tuple(self.params.get("fitted_under", ()))

    @property
    def hidden_layer(self) -> bool:
        """A gate with a hidden layer (later versions) was fitted on every stress condition, not half of them."""
        return "hidden_weights" in self.params

    @property
    def unusual_ranges(self) -> dict | None:
        return self.params.get("unusual_ranges")


@dataclass(frozen=True)
class HeldOutFolders:
    """Folders a version is scored on but never trained on, and the training pictures that repeated them."""

    folders: tuple[str, ...] = ()
    dropped: int = 0


@dataclass(frozen=True)
class Audit:
    """The data audit, counted (``splits.prepare``): what was found, kept and left out."""

    images: int | None = None
    usable: int | None = None
    counts: Mapping[str, Any] | None = None
    metadata: str | None = None
    roots: Mapping[str, Any] | None = None
    unreadable: int = 0
    duplicates: int = 0
    conflicts: int = 0
    leaks: int = 0
    same_id: int = 0
    near_copies: int = 0
    held_out: HeldOutFolders = field(default_factory=HeldOutFolders)
    official_label_disagreements: int = 0

    @classmethod
    def from_dict(cls, data: object) -> Audit:
        held = lambda d: _known(HeldOutFolders, d, "data.audit.held_out", {"folders": tuple})
        return _known(cls, data, "data.audit", {"held_out": held})


@dataclass(frozen=True)
class CasesRecord:
    """The clinic's confirmed cases a version saw: how many, which (by pixels), and which it learnt from."""

    count: int = 0
    fingerprint: str | None = None
    learned_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class Data:
    """What a version learnt from."""

    roots: tuple[str, ...] = ()
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    audit: Audit = field(default_factory=Audit)
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    train_counts: Mapping[str, int] | None = None  # versions before the counts: None
    balanced_counts: Mapping[str, int] | None = None
    cases: CasesRecord = field(default_factory=CasesRecord)

    @classmethod
    def from_dict(cls, data: object) -> Data:
        data = dict(_mapping(data, "data"))
        if "roots" not in data and data.get("root"):  # versions from before several roots named one
            data["roots"] = [data["root"]]
        cases = lambda d: _known(CasesRecord, d, "data.cases", {"learned_from": tuple})
        return _known(cls, data, "data", {"roots": tuple, "audit": Audit.from_dict, "cases": cases})

    @property
    def fingerprint(self) -> str | None:
        """Of all the images together: two versions trained on the same data share it."""
        return self.fingerprints.get("all")


@dataclass(frozen=True)
class Training:
    """How the fit went and where it ran."""

    seconds: float | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    seconds_per_epoch: float | None = None
    parameters: int | None = None
    started_from: str | None = None  # versions before it: None
    stopped_early: bool = False
    strategy: str | None = None
    replicas: int | None = None
    workers: int | None = None
    global_batch: int | None = None
    peak_learning_rate: float | None = None


@dataclass(frozen=True)
class Toolkit:
    """The library versions a model file was saved with (``.keras`` files do not load across majors)."""

    tensorflow: str | None = None
    keras: str | None = None


@dataclass(frozen=True)
class OtherRecipe:
    """How another recipe measured on the same data (named in the committed card)."""

    name: str
    summary: str


@dataclass(frozen=True)
class VersionRecord:
    """One model version's record, as registered. ``number`` is 0 until the registry gives it one."""

    number: int = 0
    created: str = ""
    sha256: str = ""  # of model.keras
    files: Mapping[str, str] = field(default_factory=dict)  # file registered beside the model -> its sha256
    schema: int = SCHEMA
    classes: tuple[str, ...] = tuple(CLASSES)
    image_size: int | None = None
    config: TrainConfig = field(default_factory=lambda: TrainConfig.from_dict({}))
    data: Data = field(default_factory=Data)
    training: Training = field(default_factory=Training)
    history: tuple[Mapping[str, float], ...] = ()
    versions: Toolkit = field(default_factory=Toolkit)
    calibration: Calibration = field(default_factory=Calibration)
    metrics: Metrics = field(default_factory=Metrics)
    gate: GateRecord | None = None
    robustness: Robustness | None = None  # versions before the out-of-source report: None
    external: Mapping[str, Scores] = field(default_factory=dict)  # folder ("isic2017/Validation") -> its scores
    other_recipes: tuple[OtherRecipe, ...] = ()
    # the settings its stored config names: ``config`` fills the rest with TrainConfig.from_dict's defaults
    settings: frozenset[str] = frozenset(f.name for f in fields(TrainConfig))

    @property
    def policy(self) -> AlertPolicy:
        return self.calibration.policy

    def stated(self, setting: str) -> object | None:
        """A training setting as the record states it; None for a version from before the setting (whose
        ``config`` holds a default that need not be what it was trained with, e.g. ``group_by``)."""
        return getattr(self.config, setting) if setting in self.settings else None

    @property
    def unpredictable(self) -> list[str]:
        """Classes the version had (almost) nothing to learn from: shown as such, never as a 0 % finding."""
        counts = self.data.train_counts
        if counts is None:  # versions before the counts were kept: the known gap of the isic9-only data
            return [] if any("isic2017" in str(root) for root in self.data.roots) else ["seborrheic keratosis"]
        return [name for name in CLASSES if counts.get(name, 0) < FEW]

    @classmethod
    def from_dict(cls, data: object) -> VersionRecord:
        """The one constructor, for training, the committed default and every read of a ``metadata.json``."""
        data = _mapping(data, "the record")
        try:
            config = TrainConfig.from_dict(_mapping(data.get("config") or {}, "config"))
        except SkinModelError as error:
            raise RegistryError(str(error)) from None
        except TypeError as error:
            raise RegistryError(f"its config cannot be read ({error})") from None
        classes = tuple(data.get("classes") or CLASSES)
        if list(classes) != list(CLASSES):
            raise RegistryError(f"trained for classes {list(classes)}, not the nine this app shows")
        image_size = data.get("image_size")
        if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)):
            raise RegistryError(f"image_size must be a whole number; received {image_size!r}")
        gate = data.get("gate")
        robustness = data.get("robustness")
        return cls(
            number=int(data.get("version") or 0),
            created=str(data.get("created") or ""),
            sha256=str(data.get("sha256") or ""),
            files=dict(_mapping(data.get("files") or {}, "files")),
            schema=int(data.get("schema", 1)),
            classes=classes,
            image_size=image_size,
            config=config,
            data=Data.from_dict(data.get("data") or {}),
            training=_known(Training, data.get("training") or {}, "training"),
            history=tuple(data.get("history") or ()),
            versions=_known(Toolkit, data.get("versions") or {}, "versions"),
            calibration=Calibration.from_dict(data, config.views),
            metrics=Metrics.from_dict(data.get("metrics") or {}),
            gate=None if not gate else GateRecord(dict(_mapping(gate, "gate"))),
            robustness=None if not robustness else Robustness.from_dict(robustness),
            external={k: Scores.from_dict(v, f"external.{k}") for k, v in (data.get("external") or {}).items()},
            other_recipes=tuple(_known(OtherRecipe, o, "other_recipes") for o in data.get("other_recipes") or ()),
            settings=frozenset(data.get("config") or ()),
        )

    def to_dict(self) -> dict:
        """What ``metadata.json`` holds: the layout every version has used, plus ``schema``."""
        out = {
            "schema": SCHEMA,
            "classes": list(self.classes),
            "image_size": self.image_size,
            "config": self.config.to_dict(),
            "data": plain(self.data),
            "training": plain(self.training),
            "history": plain(self.history),
            "versions": plain(self.versions),
            **self.calibration.to_dict(),
            "metrics": plain(self.metrics),
            "gate": None if self.gate is None else dict(self.gate.params),
            "robustness": plain(self.robustness),
            "external": plain(self.external) or None,
            "other_recipes": plain(self.other_recipes) or None,
            "files": dict(self.files),
            "sha256": self.sha256 or None,
            "created": self.created or None,
            "version": self.number or None,
        }
        return {k: v for k, v in out.items() if v is not None}

    def registered(self, number: int, sha256: str, created: str, files: Mapping[str, str]) -> VersionRecord:
        """This record as the registry writes it: numbered, checksummed, dated."""
        return replace(self, number=number, sha256=sha256, created=self.created or created, files=dict(files))


def parse(data: object, where: str) -> VersionRecord:
    """A record read from disk; one line naming ``where`` ("model version 3") when it is not a valid one."""
    try:
        return VersionRecord.from_dict(data)
    except RegistryError as error:
        raise RegistryError(f"{where}: {error}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise RegistryError(f"{where}: its metadata is malformed ({error})") from None
