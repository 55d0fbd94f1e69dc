"""Stress conditions are deterministic, keep the picture's shape and change it the way their name says."""

from __future__ import annotations

import numpy as np
import pytest

from skin_model import shift

REQUIRED = {"cool cast", "warm cast", "dim", "bright", "desaturated", "strong JPEG", "dark vignette"}


@pytest.fixture
def lesion(blob):
    return blob("nevus", 3, size=90)


def test_every_required_condition_exists():
    assert set(shift.CONDITIONS) >= REQUIRED


@pytest.mark.parametrize("name", sorted(shift.CONDITIONS))
def test_a_condition_is_deterministic_and_keeps_shape_and_type(name, lesion):
    first, again = shift.apply(name, lesion), shift.apply(name, lesion)

    assert first.shape == lesion.shape and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, lesion)


def channel_means(pixels):
    return pixels.reshape(-1, 3).astype(float).mean(axis=0)


def test_casts_move_blue_against_red_in_opposite_directions(lesion):
    r0, _, b0 = channel_means(lesion)
    rc, _, bc = channel_means(shift.apply("cool cast", lesion))
    rw, _, bw = channel_means(shift.apply("warm cast", lesion))

    assert bc / rc > b0 / r0 > bw / rw


def test_dim_and_bright_change_exposure(lesion):
    assert lesion.mean() * 0.6 > shift.apply("dim", lesion).mean()
    assert shift.apply("bright", lesion).mean() > lesion.mean() * 1.2


def test_desaturation_pulls_channels_together(lesion):
    spread = lambda x: x.astype(float).std(axis=-1).mean()
    assert spread(shift.apply("desaturated", lesion)) < 0.5 * spread(lesion)


def test_the_vignette_blackens_the_corners_and_keeps_the_centre(lesion):
    out = shift.apply("dark vignette", lesion)

    assert out[:5, :5].max() == 0 and out[-5:, -5:].max() == 0
    assert np.array_equal(out[40:50, 40:50], lesion[40:50, 40:50])


def test_strong_jpeg_loses_detail_but_not_the_picture(lesion):
    out = shift.apply("strong JPEG", lesion).astype(float)

    assert 1.0 < np.abs(out - lesion).mean() < 25.0


def test_the_older_dermatoscope_is_the_cool_cast_inside_the_vignette(lesion):
    both = shift.apply("cool cast + vignette", lesion)

    assert np.array_equal(both, shift.apply("dark vignette", shift.apply("cool cast", lesion)))


def test_a_narrow_field_of_view_blackens_more_than_the_vignette_and_keeps_the_centre(lesion):
    narrow, vignette = shift.apply("narrow field of view", lesion), shift.apply("dark vignette", lesion)

    black = lambda x: (x.max(axis=-1) == 0).mean()
    assert black(narrow) >= black(vignette) > 0.15
    assert black(narrow) < 0.75  # radius at least 0.65 of the inscribed circle: most of the lesion is left
    assert np.array_equal(narrow[40:50, 40:50], lesion[40:50, 40:50])


def test_a_narrow_field_of_view_differs_between_images(blob):
    shown = [shift.apply("narrow field of view", blob("nevus", seed, size=90)) for seed in range(6)]
    sizes = {int((x.max(axis=-1) == 0).sum()) for x in shown}

    assert len(sizes) > 3  # each image's own aperture, drawn from its pixels


def test_a_pair_of_conditions_is_seeded_and_unlike_any_one_condition(lesion_images):
    images = lesion_images(12, seed=3)

    paired = shift.under(shift.PAIRED, images)

    assert all(np.array_equal(a, b) for a, b in zip(paired, shift.under(shift.PAIRED, images), strict=True))
    for shown, image in zip(paired, images, strict=True):
        assert not any(np.array_equal(shown, shift.apply(name, image)) for name in shift.CONDITIONS)
