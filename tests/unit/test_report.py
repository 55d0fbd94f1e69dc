"""What the PDF report says about the threshold an image was held to."""

from __future__ import annotations

from skin_model import report

METADATA = {
    "alert_threshold": 0.103,
    "alert_threshold_unusual": 0.0618,
    "alert_threshold_by_warning": {"cool (blue) colour cast": 0.0618, "dark vignette at the corners": 0.1022},
    "metrics": {"test": {"melanoma_sensitivity": 0.931, "melanoma_specificity": 0.619, "images": 307}},
    "operating_curve": [{"threshold": 0.2, "sensitivity": 0.8, "specificity": 0.7}],
}


def test_a_warnings_own_threshold_is_reported_as_the_versions_own():
    for threshold in (0.103, 0.0618, 0.1022):
        assert "This is the version's own threshold" in report._validated(METADATA, threshold)
    assert "a stricter one for unusual imaging conditions" in report._validated(METADATA, 0.1022)


def test_a_threshold_the_user_chose_is_reported_as_chosen():
    assert "Chosen by the user" in report._validated(METADATA, 0.2)
