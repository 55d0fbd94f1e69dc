"""What is wrong with a dataset, found by reading every file.

Unreadable files, exact duplicates (by decoded pixels, so a re-saved PNG of
a JPEG counts), the same picture filed under two classes (conflicting
labels), pictures in both Train and Test (leaks) and, with ISIC metadata,
folder labels that disagree with the official diagnosis. :func:`usable`
turns a report into the records training may use, labels resolved.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from skin_model import metadata as meta
from skin_model.dataset import Layout, Record, find_layout, list_files
from skin_model.errors import DatasetError, ImageError
from skin_model.images import decode, pixel_hash
from skin_model.nearcopy import perceptual_hash

POLICIES = ("official", "folder")  # official: the ISIC label wins where one exists; folder: folder labels only


@dataclass
class AuditReport:
    """Findings as plain data; ``summary()`` is what the CLI and pages show."""

    root: Path
    records: list[Record]
    hashes: dict[Path, str]
    sizes: Counter
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    not_images: list[Path] = field(default_factory=list)
    duplicates: list[list[Record]] = field(default_factory=list)
    conflicts: list[list[Record]] = field(default_factory=list)
    leaks: list[list[Record]] = field(default_factory=list)
    metadata: meta.Metadata = meta.EMPTY
    perceptual: dict[Path, int] = field(default_factory=dict)  # nearcopy.perceptual_hash of each readable file

    def disagreements(self) -> list[tuple[Record, str]]:
        """Readable files whose folder label the official ISIC diagnosis contradicts, with that diagnosis."""
        found = []
        for record in self.records:
            info = self.metadata.info(record.path)
            if record.path in self.hashes and not info.agrees(record.label):
                found.append((record, info.official))
        return found

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class per source (all files found, before cleaning)."""
        table: dict[str, dict[str, int]] = defaultdict(dict)
        for (source, label), n in sorted(Counter((r.source or "Train", r.label) for r in self.records).items()):
            table[source][label] = n
        return dict(table)

    def summary(self) -> dict:
        rel = lambda p: str(Path(p).relative_to(self.root))
        group = lambda g: [{"file": rel(r.path), "label": r.label} for r in g]
        return {
            "root": str(self.root),
            "images": len(self.records),
            "counts": self.counts(),
            "sizes": {f"{w}x{h}": n for (w, h), n in self.sizes.most_common()},
            "unreadable": [{"file": rel(p), "reason": why} for p, why in self.unreadable],
            "not_images": [rel(p) for p in self.not_images],
            "duplicates": [group(g) for g in self.duplicates],
            "conflicts": [group(g) for g in self.conflicts],
            "leaks": [group(g) for g in self.leaks],
            "metadata": str(self.metadata.path) if self.metadata.path else None,
            "official_label_disagreements": [
                {"file": rel(r.path), "folder_label": r.label, "official_label": code}
                for r, code in self.disagreements()
            ],
            "label_policy": "official label wins where one exists; conflicts without one are dropped"
            if self.metadata.path
            else "no metadata: conflicting folder labels are dropped",
            "usable": len(usable(self)),
        }


def audit(root: Path | str | Layout, metadata: Path | str | None = None) -> AuditReport:
    """Read every image once and report the dataset's flaws.

    ``metadata``: an ISIC metadata CSV; by default ``<root>/metadata.csv`` when it exists.
    """
    layout = root if isinstance(root, Layout) else find_layout(root)
    found_metadata = meta.find(layout.root, metadata)
    records, not_images = list_files(layout)
    hashes: dict[Path, str] = {}
    perceptual: dict[Path, int] = {}
    sizes: Counter = Counter()
    unreadable = []
    for record in records:
        try:
            pixels = decode(record.path, max_side=None)
        except ImageError as error:
            unreadable.append((record.path, str(error).split(": ", 1)[-1]))
            continue
        sizes[(pixels.shape[1], pixels.shape[0])] += 1
        hashes[record.path] = pixel_hash(pixels)
        perceptual[record.path] = perceptual_hash(pixels)
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.path in hashes:
            groups[hashes[record.path]].append(record)
    report = AuditReport(root=layout.root, records=records, hashes=hashes, sizes=sizes, metadata=found_metadata)
    report.perceptual = perceptual
    report.unreadable, report.not_images = unreadable, not_images
    for members in groups.values():
        if len(members) < 2:
            continue
        if len({r.label for r in members}) > 1:
            report.conflicts.append(members)
        else:
            report.duplicates.append(members)
        if len({r.source for r in members}) > 1:
            report.leaks.append(members)
    return report


def usable(report: AuditReport, policy: str = "official") -> list[Record]:
    """Readable records, one per content, each with its resolved label, lesion and origin.

    Keeping one copy per content means no picture can sit in two splits. A
    picture in both Train and Test is kept in Test only, so a test score is
    never inflated by a training copy. Labels: with ``policy="official"`` a
    content with an official ISIC diagnosis is kept once under it (a folder
    label it agrees with, for BKL's two folders); contents filed under two
    classes with no official label are dropped, as with ``policy="folder"``.
    """
    if policy not in POLICIES:
        raise DatasetError(f"label policy must be one of {', '.join(POLICIES)}; received {policy!r}")
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in report.records:
        digest = report.hashes.get(record.path)
        if digest is not None:
            groups[digest].append(record)
    kept = [r for members in groups.values() if (r := _resolve(members, report.metadata, policy)) is not None]
    return sorted(kept, key=lambda r: (r.source, r.label, str(r.path)))


def _resolve(members: list[Record], metadata: meta.Metadata, policy: str) -> Record | None:
    """The one record kept for a content (Test first), or None when its label cannot be trusted."""
    members = sorted(members, key=lambda r: (r.source != "Test", str(r.path)))
    infos = [metadata.info(r.path) for r in members]
    official = next((i for i in infos if i.official), None) if policy == "official" else None
    labels = {r.label for r in members}
    if official is not None:
        agreeing = [r for r in members if official.agrees(r.label)]
        keep = agreeing[0] if agreeing else replace(members[0], label=meta.OFFICIAL[official.official][0])
    elif len(labels) > 1:
        return None
    else:
        keep = members[0]
    info = next((i for i in infos if i.lesion_id or i.source), infos[0])
    return replace(keep, lesion=info.lesion_id or f"image:{keep.path.stem}", origin=info.source or "unknown")
