"""Tiny, strip-shaped and flat images get defined quality scores and the right warnings, with no numpy warnings."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from skin_model import images


@pytest.mark.parametrize(
    "shape",
    [(1, 1), (2, 2), (1, 500), (500, 2), (10, 3000)],
    ids=["1x1", "2x2", "one-row", "two-columns", "wide-strip"],
)
def test_a_degenerate_image_is_flagged_low_resolution_and_blurry_with_a_defined_score(shape):
    pixels = np.full((*shape, 3), 128, np.uint8)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Degrees of freedom <= 0" or "Mean of empty slice" fail here
        found = images.quality(pixels)

    assert math.isfinite(found.sharpness) and math.isfinite(found.brightness)
    assert found.warnings() == [f"low resolution ({shape[1]}x{shape[0]} pixels)", "image looks blurry"]


def test_a_flat_full_size_image_is_flagged_blurry():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = images.quality(np.full((300, 400, 3), 128, np.uint8))

    assert found.sharpness == 0.0 and found.warnings() == ["image looks blurry"]


def test_a_one_pixel_upload_is_classified_with_its_warnings_and_no_numpy_warning(live_tiny_model, encode):
    from skin_model.predict import Predictor

    predictor = Predictor.load()
    data = encode(np.full((1, 1, 3), 90, np.uint8), "PNG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = predictor.predict_bytes(data, "dot.png")

    assert "image looks blurry" in result.warnings and "low resolution (1x1 pixels)" in result.warnings
