"""What is wrong with a dataset, found by reading every file.

Unreadable files, exact duplicates (by decoded pixels, so a re-saved PNG of
a JPEG counts), the same picture filed under two classes (conflicting
labels) and pictures in both Train and Test (leaks). :func:`usable` turns a
report into the records training may use.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from skin_model.dataset import Layout, Record, find_layout, list_files
from skin_model.errors import ImageError
from skin_model.images import decode


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
            "usable": len(usable(self)),
        }


def audit(root: Path | str | Layout) -> AuditReport:
    """Read every image once and report the dataset's flaws."""
    layout = root if isinstance(root, Layout) else find_layout(root)
    records, not_images = list_files(layout)
    hashes: dict[Path, str] = {}
    sizes: Counter = Counter()
    unreadable = []
    for record in records:
        try:
            pixels = decode(record.path, max_side=None)
        except ImageError as error:
            unreadable.append((record.path, str(error).split(": ", 1)[-1]))
            continue
        sizes[(pixels.shape[1], pixels.shape[0])] += 1
        hashes[record.path] = hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.path in hashes:
            groups[hashes[record.path]].append(record)
    report = AuditReport(root=layout.root, records=records, hashes=hashes, sizes=sizes)
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


def usable(report: AuditReport, drop_conflicts: bool = True) -> list[Record]:
    """Readable records, one per content; conflicting labels dropped by default.

    Keeping one copy per content means no picture can sit in two splits. A
    picture in both Train and Test is kept in Test only, so a test score is
    never inflated by a training copy.
    """
    conflicted = {report.hashes[r.path] for g in report.conflicts for r in g} if drop_conflicts else set()
    chosen: dict[str, Record] = {}
    for record in report.records:
        digest = report.hashes.get(record.path)
        if digest is None or digest in conflicted:
            continue
        kept = chosen.get(digest)
        if kept is None or (record.source == "Test" and kept.source != "Test"):
            chosen[digest] = record
    return sorted(chosen.values(), key=lambda r: (r.source, r.label, str(r.path)))
