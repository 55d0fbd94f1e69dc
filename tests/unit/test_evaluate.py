"""Metrics on plain arrays: confusion, balanced accuracy, AUC, calibration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from skin_model import CLASSES
from skin_model import evaluate as ev


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    return float(-np.log(ev.softmax(logits, temperature)[np.arange(len(y)), y]).mean())


def test_confusion_rows_are_true_classes_and_columns_predictions():
    matrix = ev.confusion(np.array([0, 1, 1, 2]), np.array([1, 1, 0, 2]), k=3)

    assert matrix.tolist() == [[0, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_balanced_accuracy_averages_recall_per_class():
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 0, 0, 1])  # recall 1.0 and 0.5; plain accuracy would be 5/6

    assert ev.balanced_accuracy(y, pred) == pytest.approx(0.75)


def test_balanced_accuracy_ignores_classes_absent_from_the_labels():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])  # class 2 is predicted but has no true images

    assert ev.balanced_accuracy(y, pred) == pytest.approx((0.5 + 1.0) / 2)


def test_roc_auc_is_one_for_a_perfect_ranking_and_zero_for_a_reversed_one():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    positive = np.array([0, 0, 0, 1, 1, 1])

    assert ev.roc_auc(scores, positive) == 1.0
    assert ev.roc_auc(scores, 1 - positive) == 0.0


def test_roc_auc_is_one_half_when_every_score_ties():
    assert ev.roc_auc(np.full(6, 0.4), np.array([0, 1, 0, 1, 1, 0])) == 0.5


def test_roc_auc_counts_half_for_each_tied_pair():
    # one positive above both negatives, one tied with a negative: (2 + 1 + 0.5) / 4
    assert ev.roc_auc(np.array([0.2, 0.5, 0.5, 0.9]), np.array([0, 0, 1, 1])) == pytest.approx(0.875)


@pytest.mark.parametrize("positive", [np.zeros(4), np.ones(4)], ids=["no-positives", "no-negatives"])
def test_roc_auc_is_none_with_only_one_class(positive):
    assert ev.roc_auc(np.array([0.1, 0.4, 0.6, 0.9]), positive) is None


def test_sensitivity_and_specificity_count_alerts_at_the_threshold():
    p_mel = np.array([0.9, 0.6, 0.3, 0.6, 0.1])
    is_mel = np.array([True, True, True, False, False])

    assert ev.sensitivity_specificity(p_mel, is_mel, 0.6) == (pytest.approx(2 / 3), 0.5)
    each = np.array([0.5, 0.6, 0.2, 0.7, 0.05])  # an image's own threshold: the third melanoma is caught now
    assert ev.sensitivity_specificity(p_mel, is_mel, each) == (1.0, 0.5)


def test_operating_curve_covers_the_slider_and_sensitivity_never_rises():
    rng = np.random.default_rng(1)
    rows = ev.operating_curve(rng.uniform(size=100), rng.uniform(size=100) < 0.3)

    assert [row["threshold"] for row in rows] == [round(t / 100, 2) for t in range(1, 100)]
    sensitivity = [row["sensitivity"] for row in rows]
    assert all(a >= b for a, b in itertools.pairwise(sensitivity))


def overconfident(scale: float, n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); logits returned as scale * z, so T = scale is right."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, len(CLASSES)))
    p = ev.softmax(z)
    y = np.array([rng.choice(len(CLASSES), p=row) for row in p])
    return scale * z, y


def test_fit_temperature_softens_overconfident_logits_and_lowers_nll():
    logits, y = overconfident(4.0)

    temperature = ev.fit_temperature(logits, y)

    assert 3.0 < temperature < 5.0
    assert nll(logits, y, temperature) < nll(logits, y, 1.0) - 0.5


def test_fit_temperature_leaves_calibrated_logits_near_one():
    logits, y = overconfident(1.0)

    assert 0.85 < ev.fit_temperature(logits, y) < 1.15


def calibrated(n: int = 40_000, seed: int = 0, boost: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Top-class confidence c, right with probability c (minus ``boost`` to make it overconfident)."""
    rng = np.random.default_rng(seed)
    k = len(CLASSES)
    confidence = rng.uniform(0.3, 1.0, size=n)
    top = rng.integers(0, k, size=n)
    probs = np.repeat(((1 - confidence) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(n), top] = confidence
    right = rng.uniform(size=n) < confidence - boost
    wrong = (top + rng.integers(1, k, size=n)) % k
    return probs, np.where(right, top, wrong)


def test_expected_calibration_error_is_near_zero_when_confidence_matches_accuracy():
    probs, y = calibrated()

    assert ev.expected_calibration_error(probs, y) < 0.015


def test_expected_calibration_error_measures_overconfidence():
    probs, y = calibrated(boost=0.2)

    assert ev.expected_calibration_error(probs, y) == pytest.approx(0.2, abs=0.02)


def test_a_splits_metrics_have_every_field_the_model_card_shows():
    logits, y = overconfident(2.0, n=300)

    result = ev.metrics(logits, y, temperature=2.0, threshold=0.3)

    assert set(result) == {
        "images", "accuracy", "balanced_accuracy", "melanoma_sensitivity", "melanoma_specificity",
        "melanoma_roc_auc", "challenge_2017", "ece_before_temperature", "ece", "per_class", "confusion",
        "melanoma_roc",
    }  # fmt: skip
    assert result["images"] == 300
    assert list(result["per_class"]) == list(CLASSES)
    assert set(result["per_class"]["melanoma"]) == {"precision", "recall", "f1", "support", "roc_auc"}
    assert np.array(result["confusion"]).sum() == 300
    assert result["ece"] < result["ece_before_temperature"]
    assert set(result["melanoma_roc"]) == {"fpr", "tpr", "threshold"}


def test_the_2017_challenge_yardstick_is_the_two_one_vs_rest_aucs_and_their_mean():
    mel, sk, nevus = CLASSES.index("melanoma"), CLASSES.index("seborrheic keratosis"), CLASSES.index("nevus")
    y = np.array([mel, mel, sk, sk, nevus, nevus])
    logits = np.full((6, len(CLASSES)), -5.0)
    logits[:, mel] = [3, 1, 0, 2, 2, -2]  # one nevus outranks one melanoma: AUC 7/8
    logits[:, sk] = [0, 0, 6, 6, 0, 0]  # keratoses first: AUC 1

    result = ev.metrics(logits, y, temperature=1.0, threshold=0.5)

    assert result["challenge_2017"] == {"melanoma_roc_auc": 0.875, "seborrheic_keratosis_roc_auc": 1.0, "mean": 0.9375}
    no_keratosis = ev.metrics(logits[[0, 1, 4, 5]], y[[0, 1, 4, 5]], temperature=1.0, threshold=0.5)
    assert no_keratosis["challenge_2017"] is None  # undefined without both classes: never a made-up 0.5


def test_a_version_whose_test_split_cannot_be_dealt_again_is_not_scored_on_its_training_data(make_dataset):
    """Scoring a version on its own training data re-deals its test split; when the dealing rule has changed
    since it trained, the re-dealt "test" images may be ones it trained on: refuse, never score them."""
    from types import SimpleNamespace

    from skin_model.audit import audit, usable
    from skin_model.config import TrainConfig
    from skin_model.dataset import fingerprint
    from skin_model.errors import DatasetError
    from skin_model.robustness import evaluate_folder

    data = make_dataset(per_class=8)
    found = audit(data.root)
    config = TrainConfig(image_size=32)
    everything = fingerprint(usable(found, config.label_policy), found.hashes)
    prints = {"all": everything, "test": "dealt-otherwise"}
    record = SimpleNamespace(config=config, data=SimpleNamespace(fingerprint=everything, fingerprints=prints))

    with pytest.raises(DatasetError, match="cannot be dealt again"):
        evaluate_folder(SimpleNamespace(record=record), data.root)
