"""Image statistics are each image's own, finite, and tell a usual picture from an unusual one."""

from __future__ import annotations

import numpy as np

from skin_model import imaging, shift


def test_statistics_measured_together_are_each_images_own(monkeypatch):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (size, size + 7, 3), dtype=np.uint8) for size in (1, 40, 64, 300, 90)]
    monkeypatch.setattr(imaging, "STATS_CHUNK", 2)  # chunks of 2, 2 and 1

    together = imaging.stats_table(images)

    alone = np.stack([list(imaging.image_stats(p).values()) for p in images])
    assert together.shape == (5, len(imaging.STAT_NAMES))
    np.testing.assert_array_equal(together, alone)
    assert len({tuple(row) for row in together}) == 5


def test_statistics_in_the_field_of_view_see_past_a_black_rim_and_leave_other_images_alone(lesion_images):
    lesion = lesion_images(1, seed=4, size=96)[0]
    framed = shift.apply("narrow field of view", lesion)
    column = lambda table, name: table[:, imaging.STAT_NAMES.index(name)]

    whole, inside = imaging.stats_table([lesion, framed]), imaging.stats_table([lesion, framed], field_of_view=True)

    np.testing.assert_array_equal(inside[0], whole[0])  # no rim: the same numbers
    for name in ("dark_fraction", "flat_fraction"):  # the rim is black and exactly flat; inside it, skin
        assert column(whole, name)[1] > 0.2 and column(inside, name)[1] < 0.05


def test_stats_are_finite_for_degenerate_images():
    for pixels in (np.zeros((1, 1, 3), np.uint8), np.full((50, 50, 3), 255, np.uint8)):
        assert all(np.isfinite(v) for v in imaging.image_stats(pixels).values())


def test_usual_ranges_leave_about_one_training_image_in_fifty_outside_and_catch_a_cool_cast(lesion_images):
    train = lesion_images(200, seed=11)
    ranges = imaging.usual_ranges(train)

    outside = imaging.any_unusual(ranges, imaging.stats_table(train))
    cooled = imaging.any_unusual(ranges, imaging.stats_table([shift.apply("cool cast", p) for p in train]))

    assert 0.0 < outside.mean() <= 0.1  # the central 98 % of each of four statistics: a few percent in all
    assert cooled.mean() > 0.5 > outside.mean()
