"""Class balancing with Augmentor, generated from the training split only.

New images are drawn from the training originals of each class (never from
validation or test images) and written as PNG files to a cache under
``SKIN_HOME/cache/balance``, keyed by the training data and the settings and
reused when neither changed; training streams them from disk like the
originals. The user's dataset folder is never written to.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from skin_model import CLASSES
from skin_model.config import BalanceConfig, skin_home
from skin_model.dataset import STORAGE_SIZE, Record, load_pixels

MANIFEST = "manifest.json"
SOURCES_CAP = 500  # originals decoded per class at most, whatever the dataset size
CACHE_ENTRIES = 3  # balancing settings kept on disk


@dataclass(frozen=True)
class Balanced:
    """Generated image files and where they came from."""

    paths: list[Path]  # PNG files in the cache, generated only
    labels: np.ndarray  # (M,) class indices
    before: dict[str, int]
    after: dict[str, int]
    cached: bool
    seconds: float


def plan(before: dict[str, int], config: BalanceConfig) -> dict[str, int]:
    """How many new images each class gets; a class with no originals gets none."""
    extra = {}
    for name in CLASSES:
        have = before.get(name, 0)
        if have == 0 or config.strategy == "none":
            extra[name] = 0
        elif config.strategy == "add":
            extra[name] = config.n
        else:
            extra[name] = max(config.n - have, 0)
    return extra


def counts_after(before: dict[str, int], config: BalanceConfig) -> dict[str, int]:
    """Per-class totals once balancing is applied (for the charts)."""
    extra = plan(before, config)
    return {name: before.get(name, 0) + extra[name] for name in CLASSES}


def pipeline(images: list[np.ndarray], config: BalanceConfig):
    """An Augmentor pipeline over in-memory images with the configured operations."""
    import Augmentor

    pipe = Augmentor.DataPipeline([[image] for image in images])
    if config.rotate > 0:
        pipe.rotate(probability=config.rotate_p, max_left_rotation=config.rotate, max_right_rotation=config.rotate)
    if config.flip:
        pipe.flip_left_right(probability=0.5)
        pipe.flip_top_bottom(probability=0.5)
    if config.zoom:
        pipe.zoom(probability=0.3, min_factor=1.05, max_factor=1.2)
    return pipe


def sample(images: np.ndarray, n: int, config: BalanceConfig, seed: int) -> np.ndarray:
    """``n`` augmented images drawn from ``images``; reproducible for a seed.

    Augmentor draws from Python's and NumPy's global generators, so they are
    seeded here and restored afterwards.
    """
    if n == 0 or len(images) == 0:
        return np.empty((0, *images.shape[1:]), dtype=np.uint8)
    state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        batch = pipeline(list(images), config).sample(n)
    finally:
        random.setstate(state)
        np.random.set_state(np_state)
    return np.stack([np.asarray(item[0], dtype=np.uint8) for item in batch])


def cache_key(train_fingerprint: str, config: BalanceConfig) -> str:
    payload = json.dumps({"data": train_fingerprint, "config": asdict(config), "size": STORAGE_SIZE}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def sources(records: list[Record], extra: int, seed: int) -> list[Record]:
    """The originals a class's new images are drawn from: all, or a seeded subset when the class is large.

    Bounds memory by the number of images generated, not by the dataset size.
    """
    cap = max(extra, SOURCES_CAP)
    if len(records) <= cap:
        return records
    rng = np.random.default_rng(seed)
    return [records[i] for i in sorted(rng.choice(len(records), cap, replace=False))]


def balance(
    records: list[Record], config: BalanceConfig, train_fingerprint: str, cache_dir: Path | None = None
) -> Balanced:
    """Generate (or reuse) the image files that balance the training split.

    Written to a private folder and renamed into place, so a crash never
    leaves half an entry and two workers generating the same entry at once
    (they draw identical images from the same seed) both end up reading one.
    """
    start = time.perf_counter()
    before = {name: sum(r.label == name for r in records) for name in CLASSES}
    extra = plan(before, config)
    after = {name: before[name] + extra[name] for name in CLASSES}
    cache_dir = cache_dir or skin_home() / "cache" / "balance"
    folder = cache_dir / cache_key(train_fingerprint, config)
    if not (folder / MANIFEST).exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".staging-"))
        try:
            _generate(records, extra, config, staging)
            try:
                os.rename(staging, folder)
            except OSError:  # another worker finished the same entry first
                if not (folder / MANIFEST).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        cached = False
    else:
        cached = True
    now = time.time_ns()  # explicit: the file system's own clock may be too coarse to order two uses
    os.utime(folder, ns=(now, now))  # most recently used: kept by evict()
    entries = json.loads((folder / MANIFEST).read_text())
    evict(cache_dir, keep=folder)
    return Balanced(
        paths=[folder / e["file"] for e in entries],
        labels=np.array([CLASSES.index(e["label"]) for e in entries], dtype=np.int32),
        before=before,
        after=after,
        cached=cached,
        seconds=time.perf_counter() - start,
    )


def _generate(records: list[Record], extra: dict[str, int], config: BalanceConfig, folder: Path) -> None:
    """One class at a time, so at most one class's sources are decoded at once."""
    entries = []
    for i, name in enumerate(CLASSES):
        if not extra[name]:
            continue
        seed = config.seed * 1000 + i
        originals = load_pixels(sources([r for r in records if r.label == name], extra[name], seed))
        for j, pixels in enumerate(sample(originals, extra[name], config, seed)):
            file = f"{i}-{j:05d}.png"
            Image.fromarray(pixels).save(folder / file, compress_level=1)  # pixels only: no metadata
            entries.append({"file": file, "label": name})
    (folder / MANIFEST).write_text(json.dumps(entries))


def evict(cache_dir: Path, keep: Path, entries: int = CACHE_ENTRIES) -> None:
    """Remove all but the most recently used entries (each is hundreds of MB at the default settings)."""
    ours = (p for p in cache_dir.iterdir() if (p / MANIFEST).is_file() or p.suffix == ".npz")  # .npz: older format
    stale = sorted(
        (p for p in ours if p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )[max(entries - 1, 0) :]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
