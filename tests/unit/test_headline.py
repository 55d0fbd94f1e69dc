"""The words a clinician reads first: one headline per result, the alert's cost, the triage order."""

from __future__ import annotations

import pytest

from skin_model import CLASSES
from skin_model.headline import alert_cost, alert_line, headline, percent_pair, risk_line, triage_rows
from skin_model.predict import Prediction
from skin_model.record import VersionRecord


def result(p_mel: float, threshold: float = 0.0618, top: str = "nevus", lesion: bool = True, name: str = "x"):
    if not lesion:
        return Prediction(name, {}, None, None, None, None, None, threshold, ["not a lesion"], lesion_like=False)
    probs = {c: 0.0 for c in CLASSES} | {top: 1 - p_mel, "melanoma": p_mel}
    return Prediction(
        file=name,
        probabilities=probs,
        top_class=top,
        top_probability=probs[top],
        risk_group="low",
        melanoma_probability=p_mel,
        melanoma_alert=p_mel >= threshold,
        alert_threshold=threshold,
        alert_probability=p_mel,
        malignant_probability=p_mel,
    )


def test_an_alert_heads_the_result_and_the_top_diagnosis_is_not_the_headline():
    shown = headline(result(0.07, top="nevus"))

    assert shown.kind == "alert" and shown.title == "Melanoma alert: consider excision or biopsy"
    assert "nevus" not in shown.title
    assert "P(melanoma) 7.0 % reaches the alert threshold 6.2 %." in shown.detail
    assert "miss few melanomas" in shown.detail


def test_without_an_alert_the_headline_is_the_most_likely_diagnosis():
    shown = headline(result(0.01, top="nevus"))

    assert shown.kind == "result" and shown.title == "No melanoma alert. Most likely: nevus (99.0 %)"
    assert shown.detail == "P(melanoma) 1.0 % is below the alert threshold 6.2 %."


def test_a_probability_just_under_the_threshold_never_reads_as_equal_to_it():
    assert percent_pair(0.0615, 0.0618) == ("6.15 %", "6.18 %")
    assert "6.15 % is below the alert threshold 6.18 %" in alert_line(result(0.0615))


def test_the_risk_line_names_what_sets_the_group():
    assert risk_line(result(0.07)).startswith("Risk group: low (the malignant diagnoses together 7.0 %;")


def test_the_alert_cost_comes_from_images_from_elsewhere_when_measured_else_the_test_split():
    test = {"metrics": {"test": {"images": 307, "melanoma_sensitivity": 0.931, "melanoma_specificity": 0.619}}}
    external = {"isic2017/Validation": {"images": 150, "melanoma_sensitivity": 0.8, "melanoma_specificity": 0.7}}

    assert alert_cost(VersionRecord.from_dict(test)).sentence() == (
        "This alert is raised on 38 of 100 benign lesions and catches 93 of 100 melanomas "
        "(measured on the held-out test split, 307 images from the training sources)."
    )
    both = alert_cost(VersionRecord.from_dict(test | {"external": external}))
    assert (both.benign, both.melanomas) == ("30 of 100", "80 of 100")
    assert "150 images from elsewhere, isic2017/Validation" in both.measured_on
    assert alert_cost(VersionRecord.from_dict({})) is None


def test_triage_puts_alerts_then_refusals_first_with_readable_columns():
    batch = [result(0.01, name="calm"), result(0, lesion=False, name="photo"), result(0.3, name="alerted")]

    rows = triage_rows(batch)

    assert [i for i, _ in rows] == [2, 1, 0]
    assert list(rows[0][1]) == ["image", "result", "P(melanoma)", "risk group", "warnings"]
    assert rows[0][1]["result"].startswith("Melanoma alert") and rows[0][1]["P(melanoma)"] == "30.0 %"
    # a refused image: blank cells, as a "-" would be quoted as a formula in the table shown
    assert rows[1][1]["result"].startswith("No diagnosis") and rows[1][1]["P(melanoma)"] == ""


@pytest.mark.parametrize("p_mel", [0.0, 0.5])
def test_the_headline_and_the_alert_field_never_disagree(p_mel):
    p = result(p_mel, threshold=0.25)
    assert (headline(p).kind == "alert") == p.melanoma_alert
