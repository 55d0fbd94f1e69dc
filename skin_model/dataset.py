"""The ISIC folder layout, splits without leaks, and data fingerprints.

Accepted layouts: ``<root>/Train/<class>/`` with an optional
``<root>/Test/<class>/``, or a bare ``<root>/<class>/``. Class folder names
must be among the nine ISIC diagnoses (case does not matter).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from skin_model import CLASSES
from skin_model.errors import DatasetError
from skin_model.images import EXTENSIONS, decode

STORAGE_SIZE = 180  # training arrays are kept at the dataset's native size


@dataclass(frozen=True)
class Record:
    """One labelled image file.

    ``source`` is the folder it came from ("Train", "Test" or "" for a bare
    layout); ``lesion`` and ``origin`` (acquisition source, e.g.
    ``ham10000/rosendahl``) come from the metadata once the audit resolves it;
    ``root`` is the dataset root it was listed from (one of several).
    """

    path: Path
    label: str
    source: str = ""
    lesion: str = ""
    origin: str = ""
    root: Path | None = None

    @property
    def shown(self) -> str:
        """The file as a person reads it: its dataset root's name, then its place in that root."""
        if self.root is None:
            return self.path.name
        return f"{self.root.name}/{self.path.relative_to(self.root).as_posix()}"


@dataclass(frozen=True)
class Layout:
    """Where the class folders of each source live."""

    root: Path
    sources: dict[str, Path]

    @property
    def has_test(self) -> bool:
        return "Test" in self.sources


def _class_dirs(folder: Path) -> dict[str, Path]:
    lookup = {name.lower(): name for name in CLASSES}
    found, unknown = {}, []
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if child.name.lower() in lookup:
            found[lookup[child.name.lower()]] = child
        else:
            unknown.append(child.name)
    if unknown and found:
        raise DatasetError(
            f"{folder}: unknown class folder(s) {', '.join(unknown)}; expected names among: {', '.join(CLASSES)}"
        )
    return found


def within_data_root(path: Path | str) -> bool:
    """Whether ``path``, every symbolic link followed, lies inside ``SKIN_DATA_ROOT`` (anywhere when it is unset).

    The one check every reader of dataset files makes: typed folders, dataset roots, each listed image (the
    audit, training), similar-case thumbnails.
    """
    from skin_model.config import allowed_data_root

    allowed = allowed_data_root()
    if allowed is None:
        return True
    try:
        return Path(path).expanduser().resolve().is_relative_to(allowed)
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte: not somewhere we may read
        return False


def user_folder(text: str) -> Path:
    """A folder typed by a user, resolved (symlinks followed) and kept inside ``SKIN_DATA_ROOT``."""
    from skin_model.config import allowed_data_root

    if not text.strip():
        raise DatasetError("no dataset folder given")
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.strip())  # a NUL or newline stays visible
    try:
        resolved = Path(text.strip()).expanduser().resolve()
    except (ValueError, OSError, RuntimeError) as error:  # a NUL byte, an unknown ~user, a symlink loop
        raise DatasetError(f"{shown}: not a usable folder ({error})") from None
    if not within_data_root(resolved):
        raise DatasetError(f"{shown}: outside the allowed data folder {allowed_data_root()} (SKIN_DATA_ROOT)")
    return resolved


def find_layouts(roots: Path | str | Sequence[Path | str]) -> list[Layout]:
    """Each dataset root checked (one, or several learnt from as one); the same folder twice is one root."""
    listed = [roots] if isinstance(roots, (str, Path)) else list(roots)
    if not listed:
        raise DatasetError("no dataset given: pass --data DIR (several: --data A --data B) or set SKIN_DATA_DIR")
    layouts: list[Layout] = []
    for root in listed:
        layout = find_layout(root)
        if any(layout.root == other.root for other in layouts):
            continue
        nested = next(
            (o.root for o in layouts if layout.root.is_relative_to(o.root) or o.root.is_relative_to(layout.root)), None
        )
        if nested is not None:
            raise DatasetError(f"{layout.root}: lies inside or around another dataset root ({nested}); give each once")
        layouts.append(layout)
    return layouts


def find_layout(root: Path | str) -> Layout:
    """Check a dataset folder and say what was expected when it is wrong."""
    try:
        return _find_layout(Path(root).expanduser())
    except OSError as error:
        raise DatasetError(f"{root}: cannot be read ({error.strerror or error})") from None


def _find_layout(root: Path) -> Layout:
    root = Path(root).expanduser()
    expected = "expected <root>/Train/<class>/ (optionally <root>/Test/<class>/) or <root>/<class>/"
    if not root.exists():
        raise DatasetError(f"{root}: folder does not exist; {expected}")
    if not root.is_dir():
        raise DatasetError(f"{root}: is a file, not a folder; {expected}")
    if not within_data_root(root):
        from skin_model.config import allowed_data_root

        raise DatasetError(f"{root}: outside the allowed data folder {allowed_data_root()} (SKIN_DATA_ROOT)")
    root = root.resolve()
    sources: dict[str, Path] = {}
    for name in ("Train", "Test"):
        folder = next((c for c in root.iterdir() if c.is_dir() and c.name.lower() == name.lower()), None)
        if folder is not None and _class_dirs(folder):
            sources[name] = folder
    if "Test" in sources and "Train" not in sources:
        raise DatasetError(f"{root}: has Test/ but no Train/ folder; {expected}")
    if not sources:
        if not _class_dirs(root):
            raise DatasetError(f"{root}: no class folders found; {expected}")
        sources[""] = root
    return Layout(root=root, sources=sources)


def list_files(layout: Layout) -> tuple[list[Record], list[Path]]:
    """Image records of every source, plus the files left out: not images by name, or (a link) outside
    ``SKIN_DATA_ROOT`` (``within_data_root`` tells which)."""
    try:
        return _list_files(layout)
    except OSError as error:
        raise DatasetError(f"{layout.root}: a folder cannot be read ({error.strerror or error})") from None


def _list_files(layout: Layout) -> tuple[list[Record], list[Path]]:
    records, skipped = [], []
    for source, folder in layout.sources.items():
        for label, class_dir in _class_dirs(folder).items():
            for path in sorted(class_dir.iterdir()):
                if not path.is_file() or path.name.startswith("."):
                    continue
                if path.suffix.lower() in EXTENSIONS and within_data_root(path):
                    records.append(Record(path=path, label=label, source=source, root=layout.root))
                else:
                    skipped.append(path)
    if not records:
        raise DatasetError(f"{layout.root}: the class folders hold no images ({', '.join(EXTENSIONS)})")
    return records, skipped


def load_pixels(records: list[Record], size: int = STORAGE_SIZE) -> np.ndarray:
    """Decode records into one ``(N, size, size, 3)`` uint8 array (audited files only)."""
    out = np.empty((len(records), size, size, 3), dtype=np.uint8)
    for i, record in enumerate(records):
        out[i] = read_pixels(record.path, size)
    return out


class Pixels(Sequence):
    """Records that decode on access: a slice loads only its own images, so a pass over them stays small."""

    def __init__(self, records: list[Record], size: int = STORAGE_SIZE):
        self.records, self.size = records, size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return load_pixels(self.records[index], self.size)
        return read_pixels(self.records[index].path, self.size)


def read_pixels(path: Path | str, size: int = STORAGE_SIZE) -> np.ndarray:
    """One audited file as ``(size, size, 3)`` uint8: the only decode training uses, in memory or streamed."""
    pixels = decode(Path(path))
    if pixels.shape[:2] != (size, size):
        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))
    return pixels


def fingerprint(records: list[Record], hashes: dict[Path, str]) -> str:
    """A short id of exactly which labelled contents were used."""
    digest = hashlib.sha256()
    for line in sorted(f"{r.label}\t{hashes[r.path]}" for r in records):
        digest.update(line.encode())
    return digest.hexdigest()[:16]


GROUPINGS = ("lesion", "source", "id-block")


def group_of(record: Record, group_by: str) -> str:
    """What must stay together in one split: a lesion, an acquisition source, or an upload block of ids."""
    from skin_model.isic_csv import id_block

    if group_by == "lesion":
        return record.lesion or f"image:{record.path.stem}"
    if group_by == "source":
        return record.origin or "unknown"
    if group_by == "id-block":
        return id_block(record.path)
    raise DatasetError(f"group-by must be one of {', '.join(GROUPINGS)}; received {group_by!r}")


class Linked:
    """Keys joined into groups (union-find): each group is named by its smallest key."""

    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, key):
        while self.parent.setdefault(key, key) != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def link(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _linked_groups(records: list[Record], group_by: str) -> dict[Path, str]:
    """Each record's group, where groups sharing a lesion are merged: a lesion never spans two blocks' splits."""
    groups = Linked()
    for record in records:
        groups.link(group_of(record, group_by), "lesion:" + group_of(record, "lesion"))
    return {r.path: groups.find(group_of(r, group_by)) for r in records}


def split(
    records: list[Record],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    group_by: str = "lesion",
    deal: str = "relative",
) -> dict[str, list[Record]]:
    """Grouped, stratified split into train/val/test: no group (lesion by default) in two splits.

    Records must already be de-duplicated (see ``audit.usable``), so no content
    appears in two splits. Groups are dealt in a seeded order, largest first,
    each to the split furthest below its share of the group's classes: the
    class proportions stay close to stratified while a lesion's images, an
    upload block or a whole source land together. A ``Test`` source is used
    as the test split as is. ``deal``: "relative" measures "below its share"
    as a share of that share; "images" (versions before it) in images, which
    gave the training split every lesion with several pictures.
    """
    test = [r for r in records if r.source == "Test"]
    pool = [r for r in records if r.source != "Test"]
    if test:
        test_fraction = 0.0
    fractions = {"test": test_fraction, "val": val_fraction, "train": 1.0 - test_fraction - val_fraction}
    parts = _deal(pool, fractions, seed, group_by, relative=deal == "relative")
    return {"train": parts["train"], "val": parts["val"], "test": test + parts["test"]}


def folds(records: list[Record], k: int, seed: int, group_by: str = "lesion") -> list[list[Record]]:
    """``k`` grouped, stratified folds dealt as ``split`` deals: each image in exactly one, no group in two.

    For cross-validation: scoring every image once by a model that never saw
    its lesion gives a small source (the oldest upload block) k times the
    test images of one split, so a recipe change can be told from noise.
    """
    if not 2 <= k <= 20:
        raise DatasetError(f"folds must be between 2 and 20; received {k}")
    parts = _deal(records, {str(i): 1.0 / k for i in range(k)}, seed, group_by)
    return [parts[str(i)] for i in range(k)]


def _deal(
    pool: list[Record], fractions: dict[str, float], seed: int, group_by: str, relative: bool = True
) -> dict[str, list[Record]]:
    """Groups in a seeded order, largest first, each to the part furthest below its share of the group's classes."""
    groups: dict[str, list[Record]] = defaultdict(list)
    root = _linked_groups(pool, group_by)
    for record in sorted(pool, key=lambda r: str(r.path)):
        groups[root[record.path]].append(record)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda g: -len(groups[g]))  # stable: big groups first, ties in the seeded order
    per_class = Counter(r.label for r in pool)
    have: dict[str, Counter] = {name: Counter() for name in fractions}
    parts: dict[str, list[Record]] = {name: [] for name in fractions}
    for key in order:
        members = groups[key]
        labels = Counter(r.label for r in members)
        target = max(fractions, key=lambda name: _deficit(fractions[name], have[name], labels, per_class, relative))
        have[target].update(labels)
        parts[target] += members
    return parts


def _deficit(fraction: float, have: Counter, labels: Counter, per_class: Counter, relative: bool = True) -> float:
    """How far below its share a split stands for a group's classes (the group goes where this is largest).

    Relative: as a share of that share, so a small split gets its turn among the big groups dealt first.
    Measured in images instead, the training split took every lesion with several pictures (288 of 290 in isic9).
    """
    if fraction <= 0:
        return float("-inf")
    if relative:  # two sums, not one divided by ``fraction``: that rounds ties otherwise and re-deals old versions
        gaps = sum(n * (1.0 - have[c] / (fraction * per_class[c])) for c, n in labels.items())
    else:
        gaps = sum(n * (fraction * per_class[c] - have[c]) / per_class[c] for c, n in labels.items())
    return gaps / sum(labels.values())


def labels_of(records: list[Record]) -> np.ndarray:
    """Class indices in ``CLASSES`` order."""
    index = {name: i for i, name in enumerate(CLASSES)}
    return np.array([index[r.label] for r in records], dtype=np.int32)
