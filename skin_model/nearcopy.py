"""The same picture at another size, compression, orientation or colour rendering: near-copies.

Identical pixels are caught by ``images.pixel_hash``; a picture re-uploaded
under a second ISIC id, or stored by two mirrors at 180 and 256 px and two
JPEG qualities, is not. Such copies must never sit on both sides of a split,
nor in training when an evaluation set holds them.

Dermoscopic pictures all look alike at low resolution (a brown blob on skin),
so one number cannot tell a copy from another lesion (a 64-bit DCT hash put
hundreds of unrelated pairs of the shared data within 6 bits). Two are used:
the grey layout at 32 px (correlation), and the fine detail at 64 px (a
high-pass image, correlation), which only the same exposure shares, each
taken as the best of the eight flips and quarter turns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

# Measured on isic9 + isic2017 (every pair, by eye on the borderline ones): re-uploads of one old-archive picture
# under a second id, re-coloured and re-encoded, reach layout 0.970-0.996 and detail 0.39-0.91; distinct lesions
# reached layout 0.974 with detail 0.32 at most (the detail alone reached 0.84: one camera's pattern on two
# lesions). A copy re-coloured harder than that (layout 0.957) is missed.
LAYOUT, DETAIL = 0.970, 0.35  # both must hold
_COARSE = 0.93  # the first, cheap filter at 16 px: every pair above was over 0.95 there


@dataclass(frozen=True)
class Thumbs:
    """Normalised (zero mean, unit length) grey thumbnails of a collection of pictures, upright."""

    coarse: np.ndarray  # (N, 16 * 16) float32
    layout: np.ndarray  # (N, 32 * 32) float16
    detail: np.ndarray  # (N, 64 * 64) float16, high-pass

    def __len__(self) -> int:
        return len(self.coarse)

    @classmethod
    def of(cls, pictures) -> Thumbs:
        """Thumbnails of an iterable of ``(H, W, 3)`` uint8 pictures."""
        rows = [_thumbs(pixels) for pixels in pictures]
        if not rows:
            return cls(np.zeros((0, 256), np.float32), np.zeros((0, 1024), np.float16), np.zeros((0, 4096), np.float16))
        coarse, layout, detail = (np.stack(part) for part in zip(*rows, strict=True))
        return cls(coarse.astype(np.float32), layout.astype(np.float16), detail.astype(np.float16))


def _unit(values: np.ndarray) -> np.ndarray:
    flat = values.ravel() - values.mean()
    return flat / (np.linalg.norm(flat) + 1e-9)


def _thumbs(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grey = Image.fromarray(pixels).convert("L")
    side = lambda n: np.asarray(grey.resize((n, n), Image.Resampling.BOX), np.float64)
    fine = grey.resize((64, 64), Image.Resampling.BOX)
    high = np.asarray(fine, np.float64) - np.asarray(fine.filter(ImageFilter.GaussianBlur(2)), np.float64)
    return _unit(side(16)), _unit(side(32)), _unit(high)


def _views(rows: np.ndarray) -> np.ndarray:
    """``(N, S*S)`` square thumbnails as ``(8, N, S*S)``: each of the eight flips and quarter turns."""
    n, area = rows.shape
    side = round(area**0.5)
    square = rows.reshape(n, side, side)
    views = []
    for turned in (square, square.transpose(0, 2, 1)):
        views += [turned, turned[:, ::-1], turned[:, :, ::-1], turned[:, ::-1, ::-1]]
    return np.stack(views).reshape(8, n, area)


def _best(a: np.ndarray, b: np.ndarray) -> float:
    """Highest correlation of upright ``a`` with any view of ``b`` (both one normalised thumbnail)."""
    return float((_views(b[None].astype(np.float32))[:, 0] @ a.astype(np.float32)).max())


def near_copies(a: Thumbs, b: Thumbs | None = None, chunk: int = 256) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, layout)`` where picture ``i`` of ``a`` is a near-copy of picture ``j`` of ``b``.

    ``b`` None: within ``a``, each pair once (``i < j``).
    """
    others = a if b is None else b
    if not len(a) or not len(others):
        return []
    views = _views(others.coarse)  # (8, M, 256)
    found = []
    for start in range(0, len(a), chunk):
        block = np.max(views @ a.coarse[start : start + chunk].T, axis=0).T  # (chunk, M)
        for i, j in zip(*np.nonzero(block >= _COARSE), strict=True):
            i, j = int(i) + start, int(j)
            if b is None and i >= j:
                continue
            layout = _best(a.layout[i], others.layout[j])
            if layout >= LAYOUT and _best(a.detail[i], others.detail[j]) >= DETAIL:
                found.append((i, j, round(layout, 4)))
    return found
