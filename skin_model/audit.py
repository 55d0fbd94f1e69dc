"""What is wrong with a dataset, found by reading every file.

Unreadable files, exact duplicates (by decoded pixels, so a re-saved PNG of
a JPEG counts), the same picture filed under two classes (conflicting
labels), pictures in both Train and Test (leaks) and, with ISIC metadata,
folder labels that disagree with the official diagnosis. Several dataset
roots are audited as one: each root's ``metadata.csv`` speaks for its own
images, and the same picture in two roots is found by its pixels, by its
ISIC id, or as a near-copy (another size, compression or colour rendering;
``nearcopy``). Pictures of a held-out set (one scored on, never trained on)
and their copies are kept out. :func:`usable` turns a report into the
records training may use, labels resolved, one picture once.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from skin_model import isic_csv, nearcopy
from skin_model.dataset import Layout, Linked, Record, find_layouts, list_files, within_data_root
from skin_model.errors import DatasetError, ImageError
from skin_model.images import decode, pixel_hash

POLICIES = ("official", "folder")  # official: the ISIC label wins where one exists; folder: folder labels only
_ISIC_ID = re.compile(r"ISIC_\d{7}")


def isic_id(record: Record) -> str | None:
    """The ISIC id in a file's name (``ISIC_0025509(1).jpg`` is ISIC_0025509), or None."""
    match = _ISIC_ID.match(record.path.stem)
    return match.group(0) if match else None


@dataclass
class AuditReport:
    """Findings as plain data; ``summary()`` is what the CLI and pages show."""

    roots: list[Path]
    records: list[Record]
    hashes: dict[Path, str]
    sizes: Counter
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    not_images: list[Path] = field(default_factory=list)
    outside_data_root: list[Path] = field(default_factory=list)  # files that link out of SKIN_DATA_ROOT: never read
    duplicates: list[list[Record]] = field(default_factory=list)
    conflicts: list[list[Record]] = field(default_factory=list)
    leaks: list[list[Record]] = field(default_factory=list)
    metadata: dict[Path, isic_csv.Metadata] = field(default_factory=dict)  # per root
    same_id: list[list[Record]] = field(default_factory=list)  # one ISIC id, different pixels
    near_copies: list[tuple[Record, Record, float]] = field(default_factory=list)  # other ids, or no id
    held_out: list[tuple[Record, Path]] = field(default_factory=list)  # a training picture a held-out picture repeats
    thumbs: nearcopy.Thumbs | None = None  # of each readable file, in ``thumbed`` order: what a new case is held to
    thumbed: list[Path] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """The first root (the only one, usually)."""
        return self.roots[0]

    def info(self, record: Record) -> isic_csv.ImageInfo:
        """What the metadata of the record's own root says about it."""
        return self.metadata.get(record.root, isic_csv.EMPTY).info(record.path)

    def disagreements(self) -> list[tuple[Record, str]]:
        """Readable files whose folder label the official ISIC diagnosis contradicts, with that diagnosis."""
        found = []
        for record in self.records:
            info = self.info(record)
            if record.path in self.hashes and not info.agrees(record.label):
                found.append((record, info.official))
        return found

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class per source (all files found, before cleaning)."""
        table: dict[str, dict[str, int]] = defaultdict(dict)
        for (source, label), n in sorted(Counter((r.source or "Train", r.label) for r in self.records).items()):
            table[source][label] = n
        return dict(table)

    def per_root(self) -> dict[str, dict[str, int]]:
        """Images per class in each root (all files found), keyed by the root's path."""
        table: dict[str, dict[str, int]] = {str(root): {} for root in self.roots}
        for (root, label), n in sorted(Counter((str(r.root), r.label) for r in self.records).items()):
            table[root][label] = n
        return table

    def shown(self, path: Path) -> str:
        """A file of any root as a person reads it (root name first when there are several)."""
        root = next((r for r in self.roots if path.is_relative_to(r)), None)
        if root is None:
            return str(path)
        relative = path.relative_to(root).as_posix()
        return f"{root.name}/{relative}" if len(self.roots) > 1 else relative

    def _root_summary(self, root: Path, kept: list[Record]) -> dict:
        found = self.metadata.get(root, isic_csv.EMPTY).path
        return {
            "images": sum(r.root == root for r in self.records),
            "usable": sum(r.root == root for r in kept),
            "metadata": str(found) if found else None,
        }

    def summary(self) -> dict:
        group = lambda g: [{"file": self.shown(r.path), "label": r.label} for r in g]
        kept = usable(self)
        return {
            "root": str(self.root) if len(self.roots) == 1 else [str(r) for r in self.roots],
            "roots": {str(root): self._root_summary(root, kept) for root in self.roots},
            "images": len(self.records),
            "counts": self.counts(),
            "sizes": {f"{w}x{h}": n for (w, h), n in self.sizes.most_common()},
            "unreadable": [{"file": self.shown(p), "reason": why} for p, why in self.unreadable],
            "not_images": [self.shown(p) for p in self.not_images],
            "outside_data_root": [self.shown(p) for p in self.outside_data_root],
            "duplicates": [group(g) for g in self.duplicates],
            "conflicts": [group(g) for g in self.conflicts],
            "leaks": [group(g) for g in self.leaks],
            "same_id": [group(g) for g in self.same_id],
            "near_copies": [
                {"files": [self.shown(a.path), self.shown(b.path)], "labels": [a.label, b.label], "similarity": s}
                for a, b, s in self.near_copies
            ],
            "held_out": [{"file": self.shown(r.path), "repeats": str(p)} for r, p in self.held_out],
            "metadata": next((str(m.path) for m in self.metadata.values() if m.path), None),
            "official_label_disagreements": [
                {"file": self.shown(r.path), "folder_label": r.label, "official_label": code}
                for r, code in self.disagreements()
            ],
            "label_policy": "official label wins where one exists; conflicts without one are dropped"
            if any(m.path for m in self.metadata.values())
            else "no metadata: conflicting folder labels are dropped",
            "usable": len(kept),
        }


def audit(
    roots: Path | str | Layout | Sequence[Path | str | Layout],
    metadata: Path | str | None = None,
    hold_out: Sequence[Path | str] = (),
) -> AuditReport:
    """Read every image once and report the dataset's flaws, across every root given.

    ``metadata``: an ISIC metadata CSV for a single root; by default each root's own ``metadata.csv``.
    ``hold_out``: labelled folders scored on and never trained on (e.g. ISIC 2017 validation): a training
    picture they repeat (same pixels, same ISIC id or a near-copy) is reported and never usable.
    """
    listed = list(roots) if isinstance(roots, (list, tuple)) else [roots]
    if not listed:
        raise DatasetError("no dataset folder given: set SKIN_DATA_DIR or pass --data")
    layouts = listed if all(isinstance(r, Layout) for r in listed) else find_layouts(listed)
    if metadata is not None and len(layouts) > 1:
        raise DatasetError(
            "--metadata names the file of one dataset root; with several, each root's metadata.csv is read"
        )
    report = AuditReport(roots=[layout.root for layout in layouts], records=[], hashes={}, sizes=Counter())
    decoded = {}
    for layout in layouts:
        report.metadata[layout.root] = isic_csv.find(layout.root, metadata)
        records, left_out = list_files(layout)
        report.records += records
        report.outside_data_root += [p for p in left_out if not within_data_root(p)]
        report.not_images += [p for p in left_out if within_data_root(p)]
        for record in records:
            try:
                pixels = decode(record.path, max_side=None)
            except ImageError as error:
                report.unreadable.append((record.path, str(error).split(": ", 1)[-1]))
                continue
            report.sizes[(pixels.shape[1], pixels.shape[0])] += 1
            report.hashes[record.path] = pixel_hash(pixels)
            decoded[record.path] = pixels
    _exact(report)
    readable = [r for r in report.records if r.path in report.hashes]
    thumbs = nearcopy.Thumbs.of(decoded[r.path] for r in readable)
    del decoded
    report.thumbs, report.thumbed = thumbs, [r.path for r in readable]
    _copies(report, readable, thumbs)
    if hold_out:
        _held_out(report, readable, thumbs, hold_out)
    return report


def _exact(report: AuditReport) -> None:
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in report.records:
        if record.path in report.hashes:
            groups[report.hashes[record.path]].append(record)
    for members in groups.values():
        if len(members) < 2:
            continue
        if len({r.label for r in members}) > 1:
            report.conflicts.append(members)
        else:
            report.duplicates.append(members)
        if len({r.source for r in members}) > 1:
            report.leaks.append(members)


def _copies(report: AuditReport, readable: list[Record], thumbs: nearcopy.Thumbs) -> None:
    """The same picture under other pixels: one ISIC id twice, or a near-copy under another id (or none)."""
    by_id: dict[str, list[Record]] = defaultdict(list)
    for record in readable:
        if (found := isic_id(record)) is not None:
            by_id[found].append(record)
    report.same_id = [m for m in by_id.values() if len({report.hashes[r.path] for r in m}) > 1]
    for i, j, similarity in nearcopy.near_copies(thumbs):
        a, b = readable[i], readable[j]
        if report.hashes[a.path] != report.hashes[b.path] and (isic_id(a) is None or isic_id(a) != isic_id(b)):
            report.near_copies.append((a, b, similarity))


def _held_out(report: AuditReport, readable: list[Record], thumbs: nearcopy.Thumbs, hold_out) -> None:
    held = [r for layout in find_layouts(hold_out) for r in list_files(layout)[0]]
    pixels = {r.path: decode(r.path, max_side=None) for r in held}
    hashes = {pixel_hash(p): path for path, p in pixels.items()}
    ids = {found: r.path for r in held if (found := isic_id(r)) is not None}
    repeats: dict[Path, Path] = {}
    for record in readable:
        match = hashes.get(report.hashes[record.path]) or ids.get(isic_id(record) or "")
        if match is not None:
            repeats[record.path] = match
    for i, j, _ in nearcopy.near_copies(thumbs, nearcopy.Thumbs.of(pixels[r.path] for r in held)):
        repeats.setdefault(readable[i].path, held[j].path)
    report.held_out = [(r, repeats[r.path]) for r in readable if r.path in repeats]


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
    held = {r.path for r, _ in report.held_out}
    kept = [r for members in pictures(report) if (r := _resolve(members, report, policy)) is not None]
    return sorted((r for r in kept if r.path not in held), key=lambda r: (r.source, r.label, str(r.path)))


def pictures(report: AuditReport) -> list[list[Record]]:
    """Readable records grouped by picture: the same pixels, the same ISIC id, or near-copies, linked."""
    linked = Linked()
    first: dict[str, Path] = {}
    for record in report.records:
        if (digest := report.hashes.get(record.path)) is not None:
            linked.link(record.path, first.setdefault(digest, record.path))
    for group in report.same_id:
        for record in group[1:]:
            linked.link(record.path, group[0].path)
    for a, b, _ in report.near_copies:
        linked.link(a.path, b.path)
    groups: dict[Path, list[Record]] = defaultdict(list)
    for record in report.records:
        if record.path in report.hashes:
            groups[linked.find(record.path)].append(record)
    return list(groups.values())


def _resolve(members: list[Record], report: AuditReport, policy: str) -> Record | None:
    """The one record kept for a picture (Test first), or None when its label cannot be trusted."""
    members = sorted(members, key=lambda r: (r.source != "Test", str(r.path)))
    infos = [report.info(r) for r in members]
    official = next((i for i in infos if i.official), None) if policy == "official" else None
    labels = {r.label for r in members}
    if official is not None:
        agreeing = [r for r in members if official.agrees(r.label)]
        keep = agreeing[0] if agreeing else replace(members[0], label=isic_csv.OFFICIAL[official.official][0])
    elif len(labels) > 1:
        return None
    else:
        keep = members[0]
    info = next((i for i in infos if i.lesion_id or i.source), infos[0])
    return replace(keep, lesion=info.lesion_id or f"image:{keep.path.stem}", origin=info.source or "unknown")
