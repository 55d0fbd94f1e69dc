"""The gate refuses what is not dermoscopy and never refuses a lesion for its camera."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from skin_model import gate, negatives, shift
from skin_model.gate import Gate


@pytest.fixture(scope="module")
def negative_set():
    return negatives.generate(seed=3, per_photo=3, per_kind=6)


def test_the_negatives_are_real_photographs_and_drawings_from_installed_packages(negative_set):
    bases = {n.base for n in negative_set}

    assert set(negatives.PHOTOS) | set(negatives.SYNTHETIC) == bases
    assert all(
        n.pixels.dtype == np.uint8 and n.pixels.shape == (negatives.SIZE, negatives.SIZE, 3) for n in negative_set
    )
    assert len({n.pixels.tobytes() for n in negative_set}) == len(negative_set)  # no two alike


def test_logistic_regression_separates_separable_points():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 1, (100, 3)), rng.normal(2, 1, (100, 3))])
    y = np.concatenate([np.zeros(100), np.ones(100)])

    weights, bias = gate.fit_logistic(x, y, l2=0.1)

    assert ((x @ weights + bias > 0) == y.astype(bool)).mean() > 0.97


def test_the_network_separates_a_ring_from_its_centre_which_no_line_can():
    rng = np.random.default_rng(0)
    angle, radius = rng.uniform(0, 2 * np.pi, 400), np.concatenate([rng.uniform(0, 1, 200), rng.uniform(2, 3, 200)])
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    y = np.concatenate([np.ones(200), np.zeros(200)])  # inside: positive; the ring around it: negative

    weights, bias = gate.fit_logistic(x, y, l2=0.1)
    net = gate.fit_ensemble(x, y)
    hidden = np.maximum(x @ net["hidden_weights"] + net["hidden_bias"], 0)

    assert ((x @ weights + bias > 0) == y.astype(bool)).mean() < 0.8
    assert ((hidden @ net["weights"] + net["bias"] > 0) == y.astype(bool)).mean() > 0.97


def test_a_negative_just_outside_the_lesions_gets_through_one_fit_and_is_refused_after_a_refit():
    rng = np.random.default_rng(0)

    def disk(n: int, inner: float, outer: float) -> np.ndarray:
        angle, radius = rng.uniform(0, 2 * np.pi, n), np.sqrt(rng.uniform(inner**2, outer**2, n))
        return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)

    positives, negatives, val = disk(400, 0, 1), disk(400, 2.5, 4), [disk(300, 0, 1)]
    x = np.concatenate([positives, negatives, [[1.35, 0.0]]])  # one negative close to the lesions
    y = np.concatenate([np.ones(400), np.zeros(401)])

    def missed(net) -> int:
        cut = gate.threshold_for([gate.ensemble_scores(net, v) for v in val])
        assert (gate.ensemble_scores(net, val[0]) < cut).mean() <= gate.FALSE_REFUSALS
        return int(((y == 0) & (gate.ensemble_scores(net, x) >= cut)).sum())

    net, refits = gate.fit_mined(x, y, val)

    assert missed(gate.fit_ensemble(x, y)) == 1
    assert missed(net) == 0 and refits == 1


def test_a_version_with_the_first_logistic_gate_is_still_served_on_its_own_statistics():
    first = gate.FIRST_STAT_NAMES
    width = 4 + len(first)
    reference = {"mean": [0.0] * width, "scale": [1.0] * width, "weights": [0.0] * 4 + [1e-3] * len(first)}
    reference |= {"bias": 0.0, "threshold": 0.5, "unusual_ranges": {}}
    pixels = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    stats = gate.stats_table([pixels])[0, : len(first)]

    score = Gate(reference).scores(np.zeros((1, 4)), stats[None])[0]

    assert len(first) == 13 < len(gate.STAT_NAMES)
    assert score == pytest.approx(1 / (1 + np.exp(-1e-3 * stats.sum())))


def test_statistics_measured_together_are_each_images_own(monkeypatch):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (size, size + 7, 3), dtype=np.uint8) for size in (1, 40, 64, 300, 90)]
    monkeypatch.setattr(gate, "STATS_CHUNK", 2)  # chunks of 2, 2 and 1

    together = gate.stats_table(images)

    alone = np.stack([list(gate.image_stats(p).values()) for p in images])
    assert together.shape == (5, len(gate.STAT_NAMES))
    np.testing.assert_array_equal(together, alone)
    assert len({tuple(row) for row in together}) == 5


def test_statistics_in_the_field_of_view_see_past_a_black_rim_and_leave_other_images_alone(lesion_images):
    lesion = lesion_images(1, seed=4, size=96)[0]
    framed = shift.apply("narrow field of view", lesion)
    column = lambda table, name: table[:, gate.STAT_NAMES.index(name)]

    whole, inside = gate.stats_table([lesion, framed]), gate.stats_table([lesion, framed], field_of_view=True)

    np.testing.assert_array_equal(inside[0], whole[0])  # no rim: the same numbers
    for name in ("dark_fraction", "flat_fraction"):  # the rim is black and exactly flat; inside it, skin
        assert column(whole, name)[1] > 0.2 and column(inside, name)[1] < 0.05


def test_a_gate_reads_its_statistics_where_it_was_fitted(fitted):
    reference, val = fitted
    framed = [shift.apply("dark vignette", p) for p in val[:3]]
    whole = {k: v for k, v in reference.items() if k != "stats_in_field_of_view"}  # as gates before 6 December

    assert reference["stats_in_field_of_view"] is True
    np.testing.assert_array_equal(Gate(whole).stats(framed), Gate(whole).fitted_columns(gate.stats_table(framed)))
    np.testing.assert_array_equal(Gate(reference).stats(framed), gate.stats_table(framed, field_of_view=True))


def test_stats_are_finite_for_degenerate_images():
    for pixels in (np.zeros((1, 1, 3), np.uint8), np.full((50, 50, 3), 255, np.uint8)):
        assert all(np.isfinite(v) for v in gate.image_stats(pixels).values())


@pytest.fixture(scope="module")
def fitted(negative_set, lesion_images):
    """A gate fitted on generated lesions (features: colour histograms) and the generated negatives."""
    train, val = lesion_images(80, seed=1), lesion_images(100, seed=2)
    reference = gate.fit(colour_features, train, val, [n.pixels for n in negative_set])
    return reference, val


def colour_features(images: list[np.ndarray]) -> np.ndarray:
    """A stand-in for the network's pooled features: a 6x6 thumbnail (108 numbers)."""
    return np.stack([np.asarray(Image.fromarray(p).resize((6, 6)), np.float32).ravel() / 255 for p in images])


def verdicts(reference, images):
    checker = Gate(reference)
    return [checker.check(p, colour_features([p])) for p in images]


def test_the_distance_from_the_lesions_is_small_for_lesions_and_large_for_pictures_that_are_not(
    fitted, lesion_images, negative_set
):
    reference, _ = fitted
    typical = gate.Typical.unpacked(reference["typical"])
    fresh = lesion_images(40, seed=5)

    lesions = typical.distance(colour_features(fresh))
    others = typical.distance(colour_features([n.pixels for n in negative_set]))

    assert np.median(others) > np.quantile(lesions, 0.9)
    assert len(reference["mean"]) == 108 + len(gate.STAT_NAMES) + 1  # features, statistics, the distance


def test_a_gate_fitted_before_the_distance_is_served_on_its_own_inputs(fitted, lesion_images):
    reference, val = fitted
    older = {k: v for k, v in reference.items() if k != "typical"}
    older["mean"], older["scale"] = reference["mean"][:-1], reference["scale"][:-1]
    hidden = gate.unpack(reference["hidden_weights"])[:-1]
    older["hidden_weights"] = gate.pack(hidden)
    features = colour_features(val[:5])
    stats = gate.stats_table(val[:5])

    scores = Gate(older).scores(features, stats)

    assert scores.shape == (5,) and np.all((scores >= 0) & (scores <= 1))
    assert Gate(older).typical is None and Gate(reference).typical is not None


def test_every_fitting_negative_is_refused(fitted):
    reference, _ = fitted

    assert reference["negatives_refused"] == 1.0


def test_new_negatives_of_every_kind_are_refused(fitted):
    reference, _ = fitted
    unseen = negatives.generate(seed=99, per_photo=1, per_kind=3)

    refused = [not v.lesion_like for v in verdicts(reference, [n.pixels for n in unseen])]

    assert np.mean(refused) >= 0.95


@pytest.mark.parametrize("condition", gate.FITTED)
def test_at_most_one_percent_of_validation_lesions_are_refused_under_any_condition(fitted, condition):
    reference, val = fitted
    shown = gate.under(condition, val)

    refused = [not v.lesion_like for v in verdicts(reference, shown)]

    assert np.mean(refused) <= 0.01


def test_new_lesions_are_rarely_refused_under_any_condition(fitted, lesion_images):
    reference, _ = fitted
    fresh = lesion_images(60, seed=7)

    for condition in gate.FITTED:
        shown = gate.under(condition, fresh)
        assert np.mean([not v.lesion_like for v in verdicts(reference, shown)]) <= 0.035, condition


def test_a_pair_of_conditions_is_seeded_and_unlike_any_one_condition(fitted, lesion_images):
    reference, _ = fitted
    images = lesion_images(12, seed=3)

    paired = gate.under(gate.PAIRED, images)

    assert all(np.array_equal(a, b) for a, b in zip(paired, gate.under(gate.PAIRED, images), strict=True))
    for shown, image in zip(paired, images, strict=True):
        assert not any(np.array_equal(shown, shift.apply(name, image)) for name in shift.CONDITIONS)
    assert reference["fitted_under"] == ["as taken", *shift.CONDITIONS, gate.PAIRED]


def test_unusual_conditions_are_named_without_refusing(fitted):
    reference, val = fitted

    cool = verdicts(reference, [shift.apply("cool cast", val[0])])[0]
    vignette = verdicts(reference, [shift.apply("dark vignette", val[1])])[0]

    assert cool.lesion_like and "cool (blue) colour cast" in cool.unusual
    assert vignette.lesion_like and "dark vignette at the corners" in vignette.unusual
    assert verdicts(reference, [val[2]])[0].unusual == []


def test_usual_ranges_leave_about_one_training_image_in_fifty_outside_and_catch_a_cool_cast(lesion_images):
    train = lesion_images(200, seed=11)
    ranges = gate.usual_ranges(train)

    outside = gate.any_unusual(ranges, gate.stats_table(train))
    cooled = gate.any_unusual(ranges, gate.stats_table([shift.apply("cool cast", p) for p in train]))

    assert 0.0 < outside.mean() <= 0.1  # the central 98 % of each of four statistics: a few percent in all
    assert cooled.mean() > 0.5 > outside.mean()


def test_an_alert_rule_holds_unusual_images_to_the_strict_threshold(fitted):
    reference, val = fitted
    rule = gate.AlertRule(usual=0.3, strict=0.1, ranges=reference["unusual_ranges"])
    images = [val[2], shift.apply("dark vignette", val[1])]

    assert list(rule.thresholds(gate.stats_table(images))) == [0.3, 0.1]
    assert list(gate.AlertRule(0.3, 0.1).thresholds(gate.stats_table(images))) == [0.1, 0.1]  # no ranges: strict


def test_an_alert_rule_holds_an_image_to_the_lowest_threshold_of_its_own_warnings(fitted):
    reference, val = fitted
    own = {"dark vignette at the corners": 0.25, "cool (blue) colour cast": 0.1}
    rule = gate.AlertRule(usual=0.3, strict=0.1, ranges=reference["unusual_ranges"], by_warning=own)
    images = [val[2], shift.apply("dark vignette", val[1]), shift.apply("cool cast + vignette", val[1])]
    warned = [Gate(reference).unusual(gate.image_stats(p)) for p in images]

    assert warned[0] == [] and "dark vignette at the corners" in warned[1] and "cool (blue) colour cast" in warned[2]
    expected = [0.3, min(own.get(w, 0.1) for w in warned[1]), 0.1]
    assert list(rule.thresholds(gate.stats_table(images))) == expected
    assert [rule.threshold_for(w) for w in warned] == expected  # one image at a time, as the app holds it
