"""The melanoma alert: thresholds that keep the sensitivity target under every condition, held image by image."""

from __future__ import annotations

import numpy as np
import pytest

from skin_model import alert, imaging, shift
from skin_model.alert import AlertRule
from skin_model.gate import Gate


@pytest.mark.parametrize("target", [0.85, 0.9])
def test_alert_threshold_is_the_highest_whose_sensitivity_bound_reaches_the_target(target):
    rng = np.random.default_rng(0)
    p_mel = rng.uniform(size=400)
    is_mel = rng.uniform(size=400) < p_mel  # higher score, more likely melanoma
    n = int(is_mel.sum())

    threshold = alert.alert_threshold(p_mel, is_mel, target)

    caught = int((p_mel[is_mel] >= threshold).sum())
    caught_above = int((p_mel[is_mel] >= np.nextafter(threshold, 1)).sum())
    assert alert.wilson_lower(caught, n) >= target
    assert alert.wilson_lower(caught_above, n) < target
    assert caught / n > target  # the point estimate sits above the promised floor


def test_wilson_lower_bound_is_below_the_proportion_and_tightens_with_more_data():
    assert alert.wilson_lower(45, 50) < 0.9
    assert alert.wilson_lower(450, 500) > alert.wilson_lower(45, 50)
    assert alert.wilson_lower(0, 0) == 0.0


def test_alert_threshold_catches_every_melanoma_when_there_are_too_few_for_the_bound():
    p_mel = np.array([0.2, 0.5, 0.9, 0.1])
    is_mel = np.array([True, True, True, False])
    assert alert.alert_threshold(p_mel, is_mel, 0.85) == 0.2


def test_alert_threshold_without_melanoma_examples_falls_back_to_one_half():
    assert alert.alert_threshold(np.array([0.2, 0.7]), np.array([False, False]), 0.9) == 0.5


def cool_cast_validation(found: float = 0.97, seed: int = 0):
    """Validation scores clean and under a cool cast that lowers P(melanoma), found on a share ``found`` of images."""
    rng = np.random.default_rng(seed)
    is_mel = rng.uniform(size=600) < 0.2
    clean = np.clip(np.where(is_mel, rng.beta(5, 2, 600), rng.beta(2, 5, 600)), 0, 1)
    p_mel = {"none": clean, "cool cast": clean * 0.5}
    unusual = {"none": rng.uniform(size=600) < 0.02, "cool cast": rng.uniform(size=600) < found}
    return p_mel, unusual, is_mel


def caught_in_each(p_mel, unusual, is_mel, usual, strict):
    return {c: int((p[is_mel] >= np.where(unusual[c][is_mel], strict, usual)).sum()) for c, p in p_mel.items()}


@pytest.mark.parametrize(
    ("found", "bound_by"),
    [(0.97, "the clean images"), (0.9, "the cast it misses")],
    ids=["mostly-found", "often-missed"],
)
def test_two_thresholds_keep_the_target_under_every_condition_and_the_usual_one_is_as_high_as_that_allows(
    found, bound_by
):
    p_mel, unusual, is_mel = cool_cast_validation(found)
    n = int(is_mel.sum())

    usual, strict = alert.alert_thresholds(p_mel, unusual, is_mel, 0.85)

    assert strict == min(alert.alert_threshold(p, is_mel, 0.85) for p in p_mel.values())  # the cool cast's own
    assert usual > strict * 1.2  # usual images no longer pay for the cool cast
    caught = caught_in_each(p_mel, unusual, is_mel, usual, strict)
    assert all(alert.wilson_lower(k, n) >= 0.85 for k in caught.values()), caught
    clean_alone = alert.alert_threshold(p_mel["none"], is_mel, 0.85)
    higher = caught_in_each(p_mel, unusual, is_mel, np.nextafter(usual, 1), strict)
    if bound_by == "the clean images":
        assert usual == clean_alone  # as high as clean validation alone would allow
    else:
        assert usual < clean_alone and any(alert.wilson_lower(k, n) < 0.85 for k in higher.values())


def test_when_no_image_under_a_condition_is_found_unusual_both_thresholds_are_the_strict_one():
    p_mel, unusual, is_mel = cool_cast_validation()
    unseen = {c: np.zeros_like(u) for c, u in unusual.items()}  # the cast goes unnoticed

    usual, strict = alert.alert_thresholds(p_mel, unseen, is_mel, 0.85)

    assert usual == strict == alert.alert_threshold(p_mel["cool cast"], is_mel, 0.85)


def test_with_every_melanoma_found_unusual_the_usual_threshold_stops_at_the_clean_images_own():
    p_mel, unusual, is_mel = cool_cast_validation()
    everything = {c: np.ones_like(u) for c, u in unusual.items()}  # nothing would bound it but the clean images

    usual, strict = alert.alert_thresholds(p_mel, everything, is_mel, 0.85)

    assert usual == alert.alert_threshold(p_mel["none"], is_mel, 0.85) > strict


def cast_and_vignette_validation(seed: int = 0):
    """The cool cast lowers P(melanoma); a vignette raises it. Each warning is found on most images of its condition,
    and both on a few of the vignette's (a vignette also darkens the image)."""
    p_mel, unusual, is_mel = cool_cast_validation(seed=seed)
    rng = np.random.default_rng(seed + 1)
    p_mel["dark vignette"] = np.clip(p_mel["none"] * 1.3 + 0.05, 0, 1)
    n = len(is_mel)
    found = {
        "none": {"cool": unusual["none"], "vignette": np.zeros(n, bool)},
        "cool cast": {"cool": unusual["cool cast"], "vignette": np.zeros(n, bool)},
        "dark vignette": {"cool": rng.uniform(size=n) < 0.1, "vignette": rng.uniform(size=n) < 0.97},
    }
    return p_mel, found, is_mel


def test_a_warning_that_does_not_lower_melanoma_scores_gets_a_higher_threshold_of_its_own():
    p_mel, found, is_mel = cast_and_vignette_validation()
    unusual = {c: f["cool"] | f["vignette"] for c, f in found.items()}
    usual, strict = alert.alert_thresholds(p_mel, unusual, is_mel, 0.85)

    own = alert.warning_thresholds(p_mel, found, is_mel, 0.85, usual, strict)

    assert own["cool"] == strict < own["vignette"] <= usual  # the cast still needs the strict one; the vignette not
    needed = alert.caught_needed(int(is_mel.sum()), 0.85)
    for condition, p in p_mel.items():  # the target holds everywhere with each image at its own threshold
        assert (p[is_mel] >= alert.held_to(found[condition], usual, strict, own)[is_mel]).sum() >= needed
    raised = own | {"vignette": np.nextafter(own["vignette"], 1)}
    if own["vignette"] < usual:  # and the vignette's is as high as that allows
        caught = [(p[is_mel] >= alert.held_to(found[c], usual, strict, raised)[is_mel]).sum() for c, p in p_mel.items()]
        assert min(caught) < needed


def test_an_image_is_held_to_the_lowest_threshold_of_its_warnings():
    found = {"cool": np.array([True, False, True, False]), "vignette": np.array([False, True, True, False])}

    held = alert.held_to(found, usual=0.3, strict=0.05, by_warning={"cool": 0.05, "vignette": 0.2})

    assert list(held) == [0.05, 0.2, 0.05, 0.3]
    assert list(alert.held_to(found, usual=0.3, strict=0.05)) == [0.05, 0.05, 0.05, 0.3]  # versions before: strict


def test_an_alert_rule_holds_unusual_images_to_the_strict_threshold(fitted_gate):
    reference, val = fitted_gate
    rule = AlertRule(usual=0.3, strict=0.1, ranges=reference["unusual_ranges"])
    images = [val[2], shift.apply("dark vignette", val[1])]

    assert list(rule.thresholds(imaging.stats_table(images))) == [0.3, 0.1]
    assert list(AlertRule(0.3, 0.1).thresholds(imaging.stats_table(images))) == [0.1, 0.1]  # no ranges: strict


def test_an_alert_rule_holds_an_image_to_the_lowest_threshold_of_its_own_warnings(fitted_gate):
    reference, val = fitted_gate
    own = {"dark vignette at the corners": 0.25, "cool (blue) colour cast": 0.1}
    rule = AlertRule(usual=0.3, strict=0.1, ranges=reference["unusual_ranges"], by_warning=own)
    images = [val[2], shift.apply("dark vignette", val[1]), shift.apply("cool cast + vignette", val[1])]
    warned = [Gate(reference).unusual(imaging.image_stats(p)) for p in images]

    assert warned[0] == [] and "dark vignette at the corners" in warned[1] and "cool (blue) colour cast" in warned[2]
    expected = [0.3, min(own.get(w, 0.1) for w in warned[1]), 0.1]
    assert list(rule.thresholds(imaging.stats_table(images))) == expected
    assert [rule.threshold_for(w) for w in warned] == expected  # one image at a time, as the app holds it
