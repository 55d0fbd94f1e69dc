"""Cheap image statistics, and whether an image's imaging conditions are usual for the training images.

The not-a-lesion gate reads these statistics beside the network's features;
the "unusual imaging conditions" warning and the stricter melanoma alert
threshold (``alert``) read four of them against the training images' usual
ranges. Every statistic is measured at one small size, so none depends on
the upload's resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

STATS_SIZE = 64  # statistics are scale-dependent: measure every image at one size (small: 1-2 ms an image)
STAT_NAMES = (
    "brightness",
    "contrast",
    "saturation",
    "saturation_spread",
    "white_fraction",
    "dark_fraction",
    "redness",
    "detail",
    "chroma_r",
    "chroma_g",
    "chroma_spread",
    "cast_blue_red",
    "dark_corners",
    # drawings, documents and blank frames: few colours, large exactly-flat areas
    "distinct_colours",
    "flat_fraction",
    # a lesion: a darker centre on skin-coloured surroundings, structure at a coarse scale
    "centre_darkness",
    "skin_fraction",
    "coarse_structure",
)
RANGED = ("cast_blue_red", "dark_corners", "brightness", "saturation")  # behind the "unusual conditions" warning
USUAL = (0.01, 0.99)  # the quantiles of the training images that bound the usual conditions (see usual_ranges)
STATS_CHUNK = 256  # images measured together: one numpy pass each, not 30 small ones an image


def _small(pixels: np.ndarray, box: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The image (or the ``box`` of it, ``[y0, x0, y1, x1]`` as shares) at ``STATS_SIZE`` as RGB and HSV (uint8)."""
    # a large upload is first box-reduced by a whole factor (a 600 px one to 150 px): half the time, same statistics;
    # an image under 4x STATS_SIZE (every training image) is resized in one step, as the gate was fitted
    h, w = pixels.shape[:2]
    region = None if box is None else (box[1] * w, box[0] * h, box[3] * w, box[2] * h)
    image = Image.fromarray(pixels).resize(
        (STATS_SIZE, STATS_SIZE), Image.Resampling.BILINEAR, box=region, reducing_gap=2.0
    )
    return np.asarray(image), np.asarray(image.convert("HSV"))


def stats_table(images: Sequence[np.ndarray], field_of_view: bool = False) -> np.ndarray:
    """Cheap, scale-free statistics of each image (measured at ``STATS_SIZE``): ``(N, len(STAT_NAMES))``.

    ``field_of_view``: inside the box the network's ``FieldOfView`` layer zooms to, so a black
    dermatoscope rim, which the network never sees, does not make a lesion look like a flat, dark
    drawing to the gate either. Measured a chunk of images at a time, on contiguous channel planes:
    the gate's fit measures about ten thousand images, at 0.5 ms each this way and 1.4 ms one at a
    time (the same values; a test holds them to each image's own).
    """
    parts = []
    for i in range(0, len(images), STATS_CHUNK):
        chunk = images[i : i + STATS_CHUNK]
        small = [_small(p) for p in chunk]
        if field_of_view and small:
            from skin_model.network import compiled_boxes

            boxes = np.asarray(compiled_boxes()(np.stack([rgb for rgb, _ in small])), np.float64)
            whole = np.all(boxes == [0.0, 0.0, 1.0, 1.0], axis=1)
            small = [s if full else _small(p, b) for s, p, b, full in zip(small, chunk, boxes, whole, strict=True)]
        parts.append(_table(small))
    return np.concatenate(parts) if parts else np.zeros((0, len(STAT_NAMES)))


def _table(small: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    n, s = len(small), STATS_SIZE
    # channel planes, contiguous: reductions over a trailing axis of 3 are numpy's slowest path
    r, g, b = np.stack([rgb for rgb, _ in small]).transpose(3, 0, 1, 2).astype(np.float32)
    hue, saturation = np.stack([hsv for _, hsv in small]).transpose(3, 0, 1, 2)[:2].astype(np.float32)
    total = r + g + b
    grey = total / 3
    lap = -4 * grey[:, 1:-1, 1:-1] + grey[:, :-2, 1:-1] + grey[:, 2:, 1:-1] + grey[:, 1:-1, :-2] + grey[:, 1:-1, 2:]
    chroma = [channel / (total + 1.0) for channel in (r, g, b)]
    illuminant = np.stack([np.mean(np.power(c / 255.0 + 1e-6, 6), axis=(1, 2)) for c in (r, g, b)], axis=1) ** (1 / 6)
    illuminant = illuminant / (np.linalg.norm(illuminant, axis=-1, keepdims=True) + 1e-6)
    c, q = s // 8, s // 4
    flatten = lambda *parts: np.concatenate([p.reshape(n, -1) for p in parts], axis=1)
    corners = flatten(grey[:, :c, :c], grey[:, :c, -c:], grey[:, -c:, :c], grey[:, -c:, -c:])
    ring = flatten(grey[:, :c], grey[:, -c:], grey[:, c:-c, :c], grey[:, c:-c, -c:])
    levels = [channel.astype(np.int32) >> 3 for channel in (r, g, b)]  # 32 levels a channel
    codes = np.sort((levels[0] * 1024 + levels[1] * 32 + levels[2]).reshape(n, -1), axis=1)
    flat = (np.abs(np.diff(grey, axis=1))[:, :, :-1] < 0.5) & (np.abs(np.diff(grey, axis=2))[:, :-1, :] < 0.5)
    blocks = grey.reshape(n, 8, s // 8, 8, s // 8).mean(axis=(2, 4))
    spread = grey.std(axis=(1, 2))
    hue = hue * (360 / 255)
    columns = {
        "brightness": grey.mean(axis=(1, 2)),
        "contrast": spread,
        "saturation": saturation.mean(axis=(1, 2)),
        "saturation_spread": saturation.std(axis=(1, 2)),
        "white_fraction": (np.minimum(np.minimum(r, g), b) > 235).mean(axis=(1, 2)),
        "dark_fraction": (np.maximum(np.maximum(r, g), b) < 25).mean(axis=(1, 2)),
        "redness": (r - b).mean(axis=(1, 2)),
        "detail": np.log1p(lap.var(axis=(1, 2))),
        "chroma_r": chroma[0].mean(axis=(1, 2)),
        "chroma_g": chroma[1].mean(axis=(1, 2)),
        "chroma_spread": np.mean([p.std(axis=(1, 2)) for p in chroma], axis=0),
        "cast_blue_red": np.log((illuminant[:, 2] + 1e-3) / (illuminant[:, 0] + 1e-3)),
        "dark_corners": (corners < 25).mean(axis=1),
        "distinct_colours": (1 + (np.diff(codes, axis=1) != 0).sum(axis=1)) / (s * s),
        "flat_fraction": flat.mean(axis=(1, 2)),
        "centre_darkness": (ring.mean(axis=1) - grey[:, q:-q, q:-q].mean(axis=(1, 2))) / (spread + 1.0),
        "skin_fraction": (((hue < 50) | (hue > 330)) & (saturation > 20)).mean(axis=(1, 2)),
        "coarse_structure": blocks.std(axis=(1, 2)) / (spread + 1.0),
    }
    return np.stack([columns[name] for name in STAT_NAMES], axis=1).astype(np.float64)


def image_stats(pixels: np.ndarray, field_of_view: bool = False) -> dict[str, float]:
    """One image's statistics by name (see ``stats_table``)."""
    return dict(zip(STAT_NAMES, stats_table([pixels], field_of_view)[0].tolist(), strict=True))


def unusual_conditions(ranges: dict, stats: Mapping) -> dict[str, Any]:
    """Each unusual imaging condition, found or not: one image's statistics by name, or a column of them per name."""
    cast, brightness = stats["cast_blue_red"], stats["brightness"]
    return {
        "cool (blue) colour cast": cast > ranges["cast_blue_red"][1],
        "warm (yellow) colour cast": cast < ranges["cast_blue_red"][0],
        "dark vignette at the corners": stats["dark_corners"] > ranges["dark_corners"][1],
        "unusual exposure": (brightness < ranges["brightness"][0]) | (brightness > ranges["brightness"][1]),
        "washed-out colours": stats["saturation"] < ranges["saturation"][0],
    }


def usual_ranges(images: Sequence[np.ndarray]) -> dict[str, list[float]]:
    """The central 98 % of the training images' colour cast, corner darkness, brightness and saturation.

    Outside it an image gets a warning and the stricter melanoma alert
    threshold (see ``alert.alert_thresholds``): tight enough that a
    stress condition is mostly caught, which is what lets the usual threshold
    stay higher; 1 % of the training images a side fall outside by construction.
    """
    table = stats_table(images)
    return {k: _range(table[:, STAT_NAMES.index(k)]) for k in RANGED}


def warnings_in(ranges: dict, table: np.ndarray) -> dict[str, np.ndarray]:
    """Per unusual-conditions warning, which rows of a ``stats_table`` carry it."""
    found = unusual_conditions(ranges, {k: table[:, STAT_NAMES.index(k)] for k in RANGED})
    return {name: np.asarray(f) for name, f in found.items()}


def any_unusual(ranges: dict, table: np.ndarray) -> np.ndarray:
    """Per row of a ``stats_table``: is any imaging condition unusual? (What the app warns about, many at once.)"""
    return np.any(np.stack(list(warnings_in(ranges, table).values())), axis=0)


def _range(values: np.ndarray) -> list[float]:
    lo, hi = np.quantile(values, USUAL)
    return [round(float(lo), 4), round(float(hi), 4)]
