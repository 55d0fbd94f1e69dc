"""The colour-look transfer behind the look probe and the re-toned external estimate (bench.look)."""

from __future__ import annotations

import numpy as np

from bench.look import look_stats, restyle


def lesion(seed: int, tint: tuple[float, float, float]) -> np.ndarray:
    """A brownish blob on skin under a tinted light: smooth, so re-toning clips little."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    blob = np.exp(-((yy - 48) ** 2 + (xx - 50) ** 2) / (2 * 18.0**2))[..., None]
    skin, spot = np.array([200.0, 150.0, 130.0]), np.array([110.0, 70.0, 50.0])
    img = (skin * (1 - blob) + spot * blob) * np.array(tint) + rng.normal(0, 3, (96, 96, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_retoned_image_takes_the_looks_colours():
    cool, warm = lesion(0, (0.8, 0.95, 1.15)), lesion(1, (1.1, 1.0, 0.8))
    target = look_stats(cool)
    mean, spread = look_stats(restyle(warm, target))
    assert np.allclose(mean, target[0], atol=1.5)  # L*, a*, b* means within 1.5 units
    assert np.allclose(spread, target[1], rtol=0.1)
    # and it moved: the warm image's own b* (yellow) mean was far from the cool one's
    assert abs(look_stats(warm)[0][2] - target[0][2]) > 5


def test_retoning_to_its_own_look_keeps_the_image():
    img = lesion(2, (1.0, 1.0, 1.0))
    again = restyle(img, look_stats(img))
    assert np.abs(again.astype(int) - img.astype(int)).max() <= 2


def spot_centre(img: np.ndarray) -> np.ndarray:
    """Where the dark spot sits: the centroid of how much darker than the brightest pixel each pixel is."""
    darkness = img.astype(float).sum(axis=2)
    weight = (darkness.max() - darkness) ** 2
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(weight * yy).sum(), (weight * xx).sum()]) / weight.sum()


def test_retoning_keeps_the_content_where_it_was():
    img = lesion(3, (1.1, 1.0, 0.8))
    out = restyle(img, look_stats(lesion(4, (0.8, 0.95, 1.15))))
    assert np.allclose(spot_centre(img), (48, 50), atol=3)
    assert np.allclose(spot_centre(out), spot_centre(img), atol=2)
