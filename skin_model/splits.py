"""Data preparation: audited records in, grouped splits and training weights out.

Training, evaluation, the bench and the Dataset page all take their splits
from here, so a model is always scored on exactly the images it never saw.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skin_model import CLASSES, audit, balance, dataset
from skin_model.config import TrainConfig
from skin_model.errors import DatasetError
from skin_model.images import decode, pixel_hash
from skin_model.isic_csv import id_block

MIN_CELL = 15  # a (class, domain) cell this small is weighted as if it had this many images


@dataclass(frozen=True)
class Splits:
    """The files and labels of each split, and the fingerprints that identify them (no pixels)."""

    records: dict[str, list[dataset.Record]]
    y: dict[str, np.ndarray]
    fingerprints: dict[str, str]
    audit: dict

    def paths(self, name: str) -> list[Path]:
        return [r.path for r in self.records[name]]


def prepare(
    roots: Path | str | list[Path | str],
    config: TrainConfig,
    metadata: Path | str | None = None,
    extra: list[dataset.Record] = (),
    hold_out: list[Path | str] = (),
) -> Splits:
    """Audit, resolve labels, and split the data of every root as one; pixels stay on disk until a batch needs them.

    ``extra``: records from outside the dataset folders (the clinic's confirmed cases), split the same way.
    ``hold_out``: folders scored on, never trained on: their pictures and copies leave the training data.
    """
    report = audit.audit(roots, metadata, hold_out)
    records, parts = training_split(report, config, extra)
    for name in ("train", "val"):
        if len({r.label for r in parts[name]}) < 2:
            raise DatasetError(f"{report.root}: the {name} split has fewer than 2 classes; add images")
    hashes = report.hashes | {r.path: pixel_hash(decode(r.path)) for r in extra}
    y = {name: dataset.labels_of(recs) for name, recs in parts.items()}
    prints = {name: dataset.fingerprint(recs, hashes) for name, recs in parts.items()}
    prints["all"] = dataset.fingerprint(records, hashes)
    summary = report.summary()
    brief = {k: summary[k] for k in ("images", "usable", "counts", "metadata", "roots")}
    brief |= {k: len(summary[k]) for k in ("unreadable", "duplicates", "conflicts", "leaks", "same_id", "near_copies")}
    brief["held_out"] = {"folders": [str(Path(p).resolve()) for p in hold_out], "dropped": len(summary["held_out"])}
    brief["official_label_disagreements"] = len(summary["official_label_disagreements"])
    return Splits(records=parts, y=y, fingerprints=prints, audit=brief)


def training_split(
    report: audit.AuditReport, config: TrainConfig, extra: list[dataset.Record] = ()
) -> tuple[list, dict[str, list[dataset.Record]]]:
    """The usable records and the grouped train/val/test split that training uses, without decoding.

    ``extra`` records are split on their own, by the same rules, and added to each part: the dataset's
    own split stays the same whatever cases exist, so versions with and without them compare on one test set.
    """
    records = audit.usable(report, config.label_policy)
    if config.max_per_class:
        records = _cap_per_class(records, config.max_per_class, config.seed)
    parts = dataset.split(records, config.val_fraction, config.test_fraction, config.seed, config.group_by, config.deal)
    if extra:
        more = dataset.split(
            list(extra), config.val_fraction, config.test_fraction, config.seed, config.group_by, config.deal
        )
        parts = {name: parts[name] + more[name] for name in parts}
        records = records + list(extra)
    return records, parts


def balance_preview(report: audit.AuditReport, config: TrainConfig) -> tuple[dict[str, int], dict[str, int]]:
    """Training-split counts per class before and after balancing (for the charts)."""
    _, parts = training_split(report, config)
    before = {name: sum(r.label == name for r in parts["train"]) for name in CLASSES}
    return before, balance.counts_after(before, config.balance)


def domain(record: dataset.Record) -> str:
    """Where an image was acquired, as finely as the metadata allows.

    HAM10000 images by site; ISIC archive images by upload block of ids,
    because neighbouring ids share a contributor and a camera (and the
    oldest block is where nearly all the nevi come from).
    """
    origin = record.origin or "unknown"
    return f"{origin}/{id_block(record.path)}" if origin == "isic_archive" else origin


def weights(records: list[dataset.Record], extra_labels: np.ndarray, scheme: str) -> np.ndarray:
    """Per-image loss weights for the training originals followed by the balancing images.

    ``class``: every class weighs the same in total. ``class-domain``: also,
    within each acquisition domain every class weighs in proportion to its
    overall share, so a domain (an upload era, a clinic) stops predicting
    the label: weight ~ n(domain) / n(class, domain), then rescaled per class.
    Balancing images copy their class's mix, so they get its mean weight.
    Weights average 1.
    """
    labels = dataset.labels_of(records)
    w = np.ones(len(records), np.float64)
    if scheme == "class-domain" and records:
        domains = [domain(r) for r in records]
        per_domain, per_cell = Counter(domains), Counter(zip(labels.tolist(), domains, strict=True))
        w = np.array([per_domain[d] / max(per_cell[(y, d)], MIN_CELL) for y, d in zip(labels, domains, strict=True)])
    elif scheme != "class":
        raise DatasetError(f"weighting must be class or class-domain; received {scheme!r}")
    extra = np.array([w[labels == y].mean() if (labels == y).any() else 1.0 for y in extra_labels], np.float64)
    all_labels, all_w = np.concatenate([labels, extra_labels]).astype(int), np.concatenate([w, extra])
    present = np.unique(all_labels)
    for y in present:  # each class the same total
        mask = all_labels == y
        all_w[mask] *= len(all_w) / len(present) / all_w[mask].sum()
    return (all_w / all_w.mean()).astype(np.float32)


def subset(records: list[dataset.Record], cap: int, seed: int) -> list[dataset.Record]:
    """At most ``cap`` records, a seeded sample."""
    if len(records) <= cap:
        return records
    keep = np.random.default_rng(seed).choice(len(records), cap, replace=False)
    return [records[i] for i in sorted(keep)]


def _cap_per_class(records: list[dataset.Record], cap: int, seed: int) -> list[dataset.Record]:
    rng = np.random.default_rng(seed)
    kept = []
    for label in CLASSES:
        items = [r for r in records if r.label == label]
        if len(items) > cap:
            items = [items[i] for i in sorted(rng.choice(len(items), cap, replace=False))]
        kept += items
    return kept
