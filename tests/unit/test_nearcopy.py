"""Near copies: one 64-bit perceptual hash, compared in all 8 orientations."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from skin_model.nearcopy import MAX_DISTANCE, distance, near_copies, perceptual_hash


def textured(seed: int, size: int = 160) -> np.ndarray:
    """A picture with structure at every scale (smoothed noise), unlike a flat generated blob."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def jpeg(pixels: np.ndarray, quality: int = 60) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_resized_recompressed_flipped_and_turned_copies_are_near_and_other_pictures_are_not():
    image = textured(1)
    copies = [
        np.asarray(Image.fromarray(image).resize((96, 96))),
        jpeg(image),
        image[:, ::-1],
        image[::-1],
        np.rot90(image),
        image.transpose(1, 0, 2),
    ]
    for copy in copies:
        assert distance(perceptual_hash(image), perceptual_hash(np.ascontiguousarray(copy))) <= MAX_DISTANCE
    others = [perceptual_hash(textured(seed)) for seed in range(2, 12)]
    assert min(distance(perceptual_hash(image), h) for h in others) > MAX_DISTANCE


def test_near_copies_lists_every_matching_pair_in_order():
    a = [perceptual_hash(textured(s)) for s in (1, 2, 3)]
    b = [perceptual_hash(textured(3)[:, ::-1].copy()), perceptual_hash(textured(9)), perceptual_hash(jpeg(textured(1)))]

    assert near_copies(a, b) == [(0, 2), (2, 0)]
    assert near_copies(a, []) == [] and near_copies([], b) == []
    assert 0 <= perceptual_hash(np.zeros((1, 1, 3), np.uint8)) < 2**64  # any size, 64 bits
