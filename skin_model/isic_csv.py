"""The ISIC metadata CSV (``<root>/metadata.csv``): official labels, lesions and acquisition sources.

Folder labels can be wrong and one lesion can have several pictures; an
ISIC metadata CSV (``<root>/metadata.csv``, columns as in the ISIC 2019
ground truth joined with HAM10000's metadata) says which. Optional: without
it every image is its own lesion from an unknown source.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from skin_model.errors import DatasetError

FILE_NAME = "metadata.csv"
REQUIRED = ("image",)
KNOWN = ("image", "isic2019_diagnosis", "lesion_id", "source", "dx_type", "age", "sex", "site")
MAX_BYTES = 20 * 1024 * 1024
ID_BLOCK = 1000  # ISIC ids were assigned in upload order: a block of 1,000 tends to share a contributor

# ISIC 2019 codes -> the folder classes they agree with (BKL covers both keratosis folders)
OFFICIAL = {
    "MEL": ("melanoma",),
    "NV": ("nevus",),
    "BCC": ("basal cell carcinoma",),
    "AK": ("actinic keratosis",),
    "BKL": ("pigmented benign keratosis", "seborrheic keratosis"),
    "DF": ("dermatofibroma",),
    "VASC": ("vascular lesion",),
    "SCC": ("squamous cell carcinoma",),
}
_ISIC_ID = re.compile(r"ISIC_(\d+)")


@dataclass(frozen=True)
class ImageInfo:
    """What the metadata says about one image; empty strings where it says nothing."""

    official: str = ""  # an ISIC 2019 code, e.g. "MEL"
    lesion_id: str = ""
    source: str = ""
    dx_type: str = ""

    def agrees(self, label: str) -> bool:
        """True when there is no official label or the folder label is one it allows."""
        return not self.official or label in OFFICIAL[self.official]


@dataclass(frozen=True)
class Metadata:
    """Per-image facts keyed by image id (the file name without its extension)."""

    path: Path | None
    images: dict[str, ImageInfo]

    def info(self, file: Path) -> ImageInfo:
        return self.images.get(file.stem, ImageInfo())


EMPTY = Metadata(path=None, images={})


def image_id(file: Path) -> str:
    return file.stem


def id_block(file: Path) -> str:
    """``isic-<n>k`` for ISIC ids (upload batch of 1,000), else the file's own name.

    A downloaded copy keeps its id's block: ``ISIC_0025509(1)`` is in the 25k block, not a block of its own.
    """
    match = _ISIC_ID.match(file.stem)
    return f"isic-{int(match.group(1)) // ID_BLOCK}k" if match else file.stem


def find(root: Path, explicit: Path | str | None = None) -> Metadata:
    """The explicit file, else ``<root>/metadata.csv`` when present, else no metadata."""
    if explicit is not None:
        return read(Path(explicit))
    candidate = Path(root) / FILE_NAME
    return read(candidate) if candidate.is_file() else EMPTY


def read(path: Path) -> Metadata:
    """Parse a metadata CSV; anything malformed is one line naming the file and the row."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DatasetError(f"{path}: metadata file is over {MAX_BYTES // 2**20} MB")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{path}: metadata is not UTF-8 text") from None
    except OSError as error:
        raise DatasetError(f"{path}: metadata cannot be read ({error.strerror or error})") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise DatasetError(f"{path}: metadata needs the column(s) {', '.join(missing)}; found {columns or 'none'}")
    images: dict[str, ImageInfo] = {}
    try:
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
            images[row["image"]] = _info(path, line, row)
    except csv.Error as error:
        raise DatasetError(f"{path}: malformed CSV ({error})") from None
    return Metadata(path=path, images=images)


def _info(path: Path, line: int, row: dict[str, str]) -> ImageInfo:
    if not row["image"]:
        raise DatasetError(f"{path}, line {line}: empty image id")
    official = row.get("isic2019_diagnosis", "").upper()
    if official and official not in OFFICIAL:
        raise DatasetError(
            f"{path}, line {line}: unknown diagnosis {official!r}; expected one of {', '.join(OFFICIAL)} or empty"
        )
    return ImageInfo(
        official=official,
        lesion_id=row.get("lesion_id", ""),
        source=row.get("source", ""),
        dx_type=row.get("dx_type", ""),
    )
