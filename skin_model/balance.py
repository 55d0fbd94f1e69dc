"""Class balancing with Augmentor, generated from the training split only.

New images are drawn from the training originals of each class (never from
validation or test images), kept in a cache under ``SKIN_HOME/cache`` keyed
by the training data and the settings, and reused when neither changed.
The user's dataset folder is never written to.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skin_model import CLASSES
from skin_model.config import BalanceConfig, skin_home


@dataclass(frozen=True)
class Balanced:
    """Generated images and where they came from."""

    images: np.ndarray  # (M, H, W, 3) uint8, generated only
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


def cache_key(train_fingerprint: str, config: BalanceConfig, shape: tuple[int, ...]) -> str:
    payload = json.dumps({"data": train_fingerprint, "config": asdict(config), "shape": shape}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def balance(
    images: np.ndarray, labels: np.ndarray, config: BalanceConfig, train_fingerprint: str, cache_dir: Path | None = None
) -> Balanced:
    """Generate (or reuse) the extra images that balance the training split."""
    start = time.perf_counter()
    before = {name: int((labels == i).sum()) for i, name in enumerate(CLASSES)}
    extra = plan(before, config)
    after = {name: before[name] + extra[name] for name in CLASSES}
    cache_dir = cache_dir or skin_home() / "cache" / "balance"
    path = cache_dir / f"{cache_key(train_fingerprint, config, images.shape[1:])}.npz"
    if path.exists():
        with np.load(path) as stored:
            return Balanced(stored["images"], stored["labels"], before, after, True, time.perf_counter() - start)
    parts, part_labels = [], []
    for i, name in enumerate(CLASSES):
        if extra[name]:
            parts.append(sample(images[labels == i], extra[name], config, seed=config.seed * 1000 + i))
            part_labels.append(np.full(extra[name], i, dtype=np.int32))
    generated = np.concatenate(parts) if parts else np.empty((0, *images.shape[1:]), dtype=np.uint8)
    new_labels = np.concatenate(part_labels) if part_labels else np.empty(0, dtype=np.int32)
    _save_npz(path, images=generated, labels=new_labels)
    return Balanced(generated, new_labels, before, after, False, time.perf_counter() - start)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write atomically so a crash never leaves a half cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
