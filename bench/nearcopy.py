"""The near-copy distance (``skin_model.nearcopy.MAX_DISTANCE``): copies vs different images of the shared data.

``python -m bench.nearcopy [DATA_ROOT]``: 200 training images drawn with seed 0, each at up to 600 px, and
its copy resized to 60 %, recompressed (JPEG 60), flipped, turned and with one pixel inverted.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from skin_model.nearcopy import distance, perceptual_hash


def edits() -> dict:
    def jpeg(p: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(p).save(buffer, format="JPEG", quality=60)
        return np.asarray(Image.open(buffer).convert("RGB"))

    def one_pixel(p: np.ndarray) -> np.ndarray:
        q = p.copy()
        q[q.shape[0] // 2, q.shape[1] // 2] = 255 - q[q.shape[0] // 2, q.shape[1] // 2]
        return q

    def resized(p: np.ndarray) -> np.ndarray:
        size = (p.shape[1] * 6 // 10, p.shape[0] * 6 // 10)
        return np.asarray(Image.fromarray(p).resize(size, Image.Resampling.LANCZOS))

    return {
        "resized 60%": resized,
        "jpeg 60": jpeg,
        "flipped": lambda p: p[:, ::-1],
        "turned": np.rot90,
        "one pixel": one_pixel,
    }


def main(root: Path, count: int = 200) -> None:
    files = sorted((root / "Train").rglob("*.jpg"))
    random.Random(0).shuffle(files)
    images = []
    for path in files[:count]:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((600, 600))
            images.append(np.asarray(image))
    hashes = [perceptual_hash(p) for p in images]
    copies = {
        name: [distance(h, perceptual_hash(edit(p))) for p, h in zip(images, hashes, strict=True)]
        for name, edit in edits().items()
    }
    every = np.concatenate(list(copies.values()))
    different = np.array([distance(hashes[i], hashes[j]) for i in range(count) for j in range(i + 1, count)])
    for name, found in copies.items():
        print(f"{name:12s} copy distance: max {max(found)}, mean {np.mean(found):.2f}")
    print(f"copies: max {every.max()}, p99 {np.percentile(every, 99):.0f}")
    print(
        f"different: min {different.min()}, p1 {np.percentile(different, 1):.0f}, median {np.median(different):.0f}, "
        f"<= 8 bits: {(different <= 8).sum()} of {len(different)}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/isic9"))
