"""Near copies: the same picture resized, recompressed, flipped, turned or with a few pixels changed.

An exact pixel hash misses all of these, so a copy of one lesion could land in two splits (or be added as
a "new" confirmed case). :func:`perceptual_hash` is a 64-bit DCT hash (the signs of the lowest 8x8
frequencies of a 32x32 greyscale copy). A flip or quarter turn permutes and negates those frequencies, so
the hashes of all 8 orientations follow from one hash, and :func:`distance` compares two images in the
orientations that agree best. Two images are near copies when that distance is at most ``MAX_DISTANCE``.

Why 8 bits (``python -m bench.nearcopy``: 200 images of the shared ISIC training set, drawn with seed 0,
at up to 600 px): an image and its copy resized to 60 %, recompressed as JPEG quality 60, flipped, turned
or with one pixel inverted differ by 0 to 6 bits (99th percentile 3); two different images differ by 25
bits at the median, 17 at the 1st percentile, and 3 of the 19,900 pairs (0.015 %) by 8 or fewer, the
closest by 5. Generated blob "lesions" (the tests') are far more alike: draw them with distinct seeds and
check their distance before relying on them as different images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

MAX_DISTANCE = 8
SIDE = 32  # the greyscale copy the DCT is taken of
KEEP = 8  # the lowest 8x8 frequencies: 64 bits


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return matrix


_DCT = _dct_matrix(SIDE)


def _pack(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def _unpack(value: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(int(value).to_bytes(8, "big"), np.uint8)).reshape(KEEP, KEEP).astype(bool)


def perceptual_hash(pixels: np.ndarray) -> int:
    """A 64-bit hash of ``pixels`` (H, W) or (H, W, C) uint8 that survives resizing and recompression.

    Bit ``8u + v`` is the sign of the DCT coefficient of vertical frequency ``u`` and horizontal frequency
    ``v``: a flip negates the odd frequencies along its axis and a transpose swaps ``u`` and ``v``, so the
    hash of every flip or quarter turn follows from this one (:func:`orientations`).
    """
    image = Image.fromarray(np.ascontiguousarray(pixels)).convert("L").resize((SIDE, SIDE), Image.Resampling.BOX)
    grey = np.asarray(image, dtype=np.float64)
    grey -= grey.mean()  # the DC term carries brightness only: a sign would waste the bit
    low = (_DCT @ grey @ _DCT.T)[:KEEP, :KEEP]
    return _pack(low > 0)


_ODD = np.arange(KEEP) % 2 == 1
_FLIPS = [np.zeros((KEEP, KEEP), bool), _ODD[None, :], _ODD[:, None], _ODD[None, :] ^ _ODD[:, None]]
_FLIPS = [np.broadcast_to(mask, (KEEP, KEEP)) for mask in _FLIPS]


def orientations(value: int) -> list[int]:
    """The hashes of the 8 flips and quarter turns of the image that hashed to ``value``."""
    bits = _unpack(value)
    return [_pack(grid ^ mask) for grid in (bits, bits.T) for mask in _FLIPS]


def distance(a: int, b: int) -> int:
    """How many of the 64 bits differ, the images taken in the orientations that agree best."""
    return min((int(a) ^ other).bit_count() for other in orientations(b))


def near_copies(
    hashes_a: Sequence[int], hashes_b: Sequence[int], max_distance: int = MAX_DISTANCE
) -> list[tuple[int, int]]:
    """Every pair ``(i, j)`` with image ``i`` of ``a`` a near copy of image ``j`` of ``b`` (any orientation)."""
    if not len(hashes_a) or not len(hashes_b):
        return []
    a = np.array([int(h) for h in hashes_a], dtype=np.uint64)
    b = np.array([orientations(h) for h in hashes_b], dtype=np.uint64)  # (len(b), 8)
    pairs = []
    for i, value in enumerate(a):
        differing = np.unpackbits((b ^ value).view(np.uint8).reshape(*b.shape, 8), axis=2).sum(axis=2).min(axis=1)
        pairs += [(i, int(j)) for j in np.flatnonzero(differing <= max_distance)]
    return pairs
