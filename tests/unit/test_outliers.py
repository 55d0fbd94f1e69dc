"""The not-a-lesion check: images unlike the training set get flagged, lesions do not."""

from __future__ import annotations

import numpy as np
import pytest

from skin_model.outliers import OutlierCheck, fit_reference


@pytest.fixture(scope="module")
def reference(tiny_model):
    from tests.conftest import COLOURS, blob_image

    rng = np.random.default_rng(0)
    train_x = np.stack([blob_image(COLOURS[c], int(s), 64) for c in COLOURS for s in rng.integers(0, 10_000, 40)])
    val_x = np.stack([blob_image(COLOURS[c], 20_000 + s, 64) for c in COLOURS for s in range(10)])
    return fit_reference(tiny_model, train_x, val_x), val_x


def features(tiny_model, pixels):
    from skin_model.outliers import _embed, _embedder

    return _embed(_embedder(tiny_model), pixels[None])


def test_held_out_lesions_mostly_pass(tiny_model, reference):
    ref, val_x = reference
    check = OutlierCheck(ref)
    flagged = sum(bool(check.reasons(p, features(tiny_model, p))) for p in val_x)
    assert flagged <= 1


@pytest.mark.parametrize(
    "name, pixels",
    [
        ("blank frame", np.full((64, 64, 3), 128, np.uint8)),
        ("white page with text", np.where(np.arange(64)[:, None, None] % 8 < 2, 0, 255).repeat(64, 1).repeat(3, 2)),
        ("random noise", np.random.default_rng(1).integers(0, 256, (64, 64, 3))),
        ("blue sky", np.dstack([np.full((64, 64), 90), np.full((64, 64), 150), np.full((64, 64), 240)])),
    ],
)
def test_images_unlike_the_training_set_are_flagged(tiny_model, reference, name, pixels):
    pixels = pixels.astype(np.uint8)
    assert OutlierCheck(reference[0]).reasons(pixels, features(tiny_model, pixels)), name


def test_without_a_reference_nothing_is_flagged():
    assert OutlierCheck(None).reasons(np.zeros((8, 8, 3), np.uint8), np.zeros((1, 4))) == []
