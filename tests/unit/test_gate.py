"""The gate refuses what is not dermoscopy and never refuses a lesion for its camera."""

from __future__ import annotations

import numpy as np
import pytest

from skin_model import gate, imaging, negatives, shift
from skin_model.gate import Gate
from tests.conftest import colour_features


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
    stats = imaging.stats_table([pixels])[0, : len(first)]

    score = Gate(reference).scores(np.zeros((1, 4)), stats[None])[0]

    assert len(first) == 13 < len(imaging.STAT_NAMES)
    assert score == pytest.approx(1 / (1 + np.exp(-1e-3 * stats.sum())))


def test_a_gate_reads_its_statistics_where_it_was_fitted(fitted_gate):
    reference, val = fitted_gate
    framed = [shift.apply("dark vignette", p) for p in val[:3]]
    whole = {k: v for k, v in reference.items() if k != "stats_in_field_of_view"}  # as gates before 6 December

    assert reference["stats_in_field_of_view"] is True
    np.testing.assert_array_equal(Gate(whole).stats(framed), Gate(whole).fitted_columns(imaging.stats_table(framed)))
    np.testing.assert_array_equal(Gate(reference).stats(framed), imaging.stats_table(framed, field_of_view=True))


def verdicts(reference, images):
    checker = Gate(reference)
    return [checker.check(p, colour_features([p])) for p in images]


def test_the_distance_from_the_lesions_is_small_for_lesions_and_large_for_pictures_that_are_not(
    fitted_gate, lesion_images, negative_set
):
    reference, _ = fitted_gate
    typical = gate.Typical.unpacked(reference["typical"])
    fresh = lesion_images(40, seed=5)

    lesions = typical.distance(colour_features(fresh))
    others = typical.distance(colour_features([n.pixels for n in negative_set]))

    assert np.median(others) > np.quantile(lesions, 0.9)
    assert len(reference["mean"]) == 108 + len(imaging.STAT_NAMES) + 1  # features, statistics, the distance


def test_a_gate_fitted_before_the_distance_is_served_on_its_own_inputs(fitted_gate, lesion_images):
    reference, val = fitted_gate
    older = {k: v for k, v in reference.items() if k != "typical"}
    older["mean"], older["scale"] = reference["mean"][:-1], reference["scale"][:-1]
    hidden = gate.unpack(reference["hidden_weights"])[:-1]
    older["hidden_weights"] = gate.pack(hidden)
    features = colour_features(val[:5])
    stats = imaging.stats_table(val[:5])

    scores = Gate(older).scores(features, stats)

    assert scores.shape == (5,) and np.all((scores >= 0) & (scores <= 1))
    assert Gate(older).typical is None and Gate(reference).typical is not None


def test_every_fitting_negative_is_refused(fitted_gate):
    reference, _ = fitted_gate

    assert reference["negatives_refused"] == 1.0


def test_new_negatives_of_every_kind_are_refused(fitted_gate):
    reference, _ = fitted_gate
    unseen = negatives.generate(seed=99, per_photo=1, per_kind=3)

    refused = [not v.lesion_like for v in verdicts(reference, [n.pixels for n in unseen])]

    assert np.mean(refused) >= 0.95


@pytest.mark.parametrize("condition", shift.LOOKS)
def test_at_most_one_percent_of_validation_lesions_are_refused_under_any_condition(fitted_gate, condition):
    reference, val = fitted_gate
    shown = shift.under(condition, val)

    refused = [not v.lesion_like for v in verdicts(reference, shown)]

    assert np.mean(refused) <= 0.01


def test_new_lesions_are_rarely_refused_under_any_condition(fitted_gate, lesion_images):
    reference, _ = fitted_gate
    fresh = lesion_images(60, seed=7)

    for condition in shift.LOOKS:
        shown = shift.under(condition, fresh)
        assert np.mean([not v.lesion_like for v in verdicts(reference, shown)]) <= 0.035, condition


def test_the_gate_is_fitted_under_every_condition_and_a_pair_of_them(fitted_gate):
    reference, _ = fitted_gate

    assert reference["fitted_under"] == ["as taken", *shift.CONDITIONS, shift.PAIRED]


def test_unusual_conditions_are_named_without_refusing(fitted_gate):
    reference, val = fitted_gate

    cool = verdicts(reference, [shift.apply("cool cast", val[0])])[0]
    vignette = verdicts(reference, [shift.apply("dark vignette", val[1])])[0]

    assert cool.lesion_like and "cool (blue) colour cast" in cool.unusual
    assert vignette.lesion_like and "dark vignette at the corners" in vignette.unusual
    assert verdicts(reference, [val[2]])[0].unusual == []
