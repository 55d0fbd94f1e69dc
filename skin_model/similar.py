"""Similar confirmed cases: the training images nearest to an upload in the classifier's own feature space.

A dermatologist trusts evidence more than a number: the images most alike
in what the network looked at, each with its known diagnosis (Tschandl et
al., Br J Dermatol 2019: retrieval on a CNN's features is about as accurate
as its softmax). The index holds the pooled features of every image a
version was trained and validated on, unit-length, with the diagnosis (the
official ISIC label where metadata gives one), the source and the path under
the data root. Never pixels: thumbnails are read from the dataset folder
when it is there, and otherwise the image's public ISIC page is linked.

Exact cosine search is one matrix-vector product: well under a millisecond
at this dataset's size, linear in the index (``bench/similar.py``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skin_model import CLASSES
from skin_model.config import skin_home
from skin_model.errors import RegistryError

INDEX_FILE = "similar.npz"
CASES_PREFIX = "cases/"  # an indexed confirmed case lives in SKIN_HOME/cases, not in the dataset folder
DEFAULT_K = 6
REPORT_K = 12  # the most a PDF report lists (a table on at most one more page)
MAX_K = 50  # the most the command line prints or returns for one image
ISIC_ID = re.compile(r"^ISIC_\d{7}$")


@dataclass(frozen=True)
class Neighbour:
    """One similar training image: what the CLI's JSON and the report show."""

    image: str  # the ISIC id (the file name without its suffix)
    diagnosis: str
    distance: float  # cosine distance, 0 = same direction
    source: str
    path: str  # under the data root, e.g. "Train/melanoma/ISIC_0000139.jpg"

    def to_dict(self) -> dict:
        return {"image": self.image, "diagnosis": self.diagnosis, "distance": self.distance, "source": self.source}

    @property
    def url(self) -> str | None:
        """The image's public page in the ISIC archive, for when the dataset folder is not at hand."""
        return f"https://api.isic-archive.com/images/{self.image}/" if ISIC_ID.match(self.image) else None


@dataclass(frozen=True)
class Index:
    vectors: np.ndarray  # (N, D) float32, unit rows
    diagnoses: tuple[str, ...]
    sources: tuple[str, ...]
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def nearest(self, feature: np.ndarray, k: int = DEFAULT_K) -> list[Neighbour]:
        """The ``k`` indexed images with the smallest cosine distance to ``feature``, nearest first."""
        k = max(0, min(int(k), len(self)))
        if k == 0:
            return []
        query = unit(np.asarray(feature, np.float32).reshape(1, -1))[0]
        similarity = self.vectors @ query
        top = np.argpartition(-similarity, k - 1)[:k]
        top = top[np.argsort(-similarity[top], kind="stable")]
        return [
            Neighbour(
                image=Path(self.paths[i]).stem,
                diagnosis=self.diagnoses[i],
                distance=round(float(1.0 - similarity[i]), 4),
                source=self.sources[i],
                path=self.paths[i],
            )
            for i in top
        ]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            vectors=self.vectors.astype(np.float16),  # half the size; cosine ranks are unchanged at 3 digits
            diagnoses=np.array(self.diagnoses, dtype=str),
            sources=np.array(self.sources, dtype=str),
            paths=np.array(self.paths, dtype=str),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "the similar-cases index") -> Index:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as saved:
                index = cls(
                    vectors=unit(saved["vectors"].astype(np.float32)),
                    diagnoses=tuple(str(s) for s in saved["diagnoses"]),
                    sources=tuple(str(s) for s in saved["sources"]),
                    paths=tuple(str(s) for s in saved["paths"]),
                )
        except (OSError, ValueError, KeyError) as error:
            raise RegistryError(f"{where} cannot be read ({error})") from None
        if not len(index.vectors) == len(index.diagnoses) == len(index.sources) == len(index.paths):
            raise RegistryError(f"{where} is inconsistent: its columns differ in length")
        unknown = sorted(set(index.diagnoses) - set(CLASSES))
        if unknown:  # the pages and the report print diagnoses as our own words: only the nine class names
            raise RegistryError(f"{where} holds diagnoses that are not class names: {unknown[:3]!r}")
        return index


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def build(embed: Callable[[list[np.ndarray]], np.ndarray], records: Sequence, pixels: Iterable[np.ndarray]) -> Index:
    """Index ``records`` (dataset Records, their labels already resolved) with the features of ``pixels``.

    ``embed`` maps a list of images to their pooled features; ``pixels`` yields each record's image, in order.
    """
    vectors, batch = [], []
    for image in pixels:
        batch.append(image)
        if len(batch) == 64:
            vectors.append(embed(batch))
            batch = []
    if batch:
        vectors.append(embed(batch))
    found = np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, 1), np.float32)
    return Index(
        vectors=unit(found),
        diagnoses=tuple(r.label for r in records),
        sources=tuple(r.origin or "unknown" for r in records),
        paths=tuple(_stored_path(r) for r in records),
    )


def _stored_path(record) -> str:
    """Under its dataset root as it is; a confirmed case (a job's copy) as ``cases/<file>`` under SKIN_HOME."""
    try:
        return Path(record.path).resolve().relative_to(Path(record.root).resolve()).as_posix()
    except (TypeError, ValueError):
        return f"{CASES_PREFIX}{Path(record.path).name}"


def local_file(neighbour: Neighbour, roots: Sequence[Path]) -> Path | None:
    """The neighbour's image inside one of the dataset folders ``roots`` (a case: the cases folder), when there."""
    from skin_model.dataset import within_data_root

    ours = neighbour.path.startswith(CASES_PREFIX)  # the cases folder is ours, not a dataset: no SKIN_DATA_ROOT
    for root in [skin_home()] if ours else roots:
        path = (root / neighbour.path).resolve()
        if path.is_relative_to(root.resolve()) and (ours or within_data_root(path)) and path.is_file():
            return path
    return None


def summary(neighbours: Sequence[Neighbour]) -> str | None:
    """One line a clinician reads first: "4 of the 6 most similar training images are melanomas"."""
    if not neighbours:
        return None
    total = len(neighbours)
    counts: dict[str, int] = {}
    for n in neighbours:
        counts[n.diagnosis] = counts.get(n.diagnosis, 0) + 1
    # the commonest diagnosis; a tie goes to the one nearer the top of the list
    diagnosis = min(counts, key=lambda d: (-counts[d], next(i for i, n in enumerate(neighbours) if n.diagnosis == d)))
    count = counts[diagnosis]
    if total == 1:
        return f"The most similar training image is {_a(diagnosis)}"
    if count == 1:
        return f"The {total} most similar training images have {total} different diagnoses"
    lead = f"All {total}" if count == total else f"{count} of the {total}"
    return f"{lead} most similar training images are {_plural(diagnosis)}"


def _plural(diagnosis: str) -> str:
    if diagnosis == "nevus":
        return "nevi"
    if diagnosis.endswith("keratosis"):
        return diagnosis[: -len("is")] + "es"
    return diagnosis + "s"


def _a(diagnosis: str) -> str:
    return ("an " if diagnosis[0] in "aeiou" else "a ") + diagnosis
