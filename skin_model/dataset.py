"""The ISIC folder layout, splits without leaks, and data fingerprints.

Accepted layouts: ``<root>/Train/<class>/`` with an optional
``<root>/Test/<class>/``, or a bare ``<root>/<class>/``. Class folder names
must be among the nine ISIC diagnoses (case does not matter).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
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
    """One labelled image file; ``source`` is "Train", "Test" or "" for a bare layout."""

    path: Path
    label: str
    source: str = ""


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
    allowed = allowed_data_root()
    if allowed is not None and not resolved.is_relative_to(allowed):
        raise DatasetError(f"{shown}: outside the allowed data folder {allowed} (SKIN_DATA_ROOT)")
    return resolved


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
    """Image records of every source, plus the files that are not images by name."""
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
                if path.suffix.lower() in EXTENSIONS:
                    records.append(Record(path=path, label=label, source=source))
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


def split(records: list[Record], val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[Record]]:
    """Stratified random split into train/val/test.

    Records must already be de-duplicated (see ``audit.usable``), so no content
    appears in two splits. A ``Test`` source is used as the test split as is.
    """
    test = [r for r in records if r.source == "Test"]
    pool = [r for r in records if r.source != "Test"]
    if test:
        test_fraction = 0.0
    by_class: dict[str, list[Record]] = defaultdict(list)
    for record in pool:
        by_class[record.label].append(record)
    rng = random.Random(seed)
    parts: dict[str, list[Record]] = {"train": [], "val": [], "test": list(test)}
    for label in sorted(by_class):
        items = sorted(by_class[label], key=lambda r: str(r.path))
        rng.shuffle(items)
        n_test = round(len(items) * test_fraction)
        n_val = round(len(items) * val_fraction)
        if len(items) >= 3:  # every split sees a class that has enough images
            n_test = max(n_test, 1) if test_fraction else 0
            n_val = max(n_val, 1) if val_fraction else 0
        parts["test"] += items[:n_test]
        parts["val"] += items[n_test : n_test + n_val]
        parts["train"] += items[n_test + n_val :]
    return parts


def labels_of(records: list[Record]) -> np.ndarray:
    """Class indices in ``CLASSES`` order."""
    index = {name: i for i, name in enumerate(CLASSES)}
    return np.array([index[r.label] for r in records], dtype=np.int32)
