"""Near-copies: the same picture at another size, JPEG quality, colour rendering or orientation is found; another
picture is not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance

from skin_model import nearcopy
from tests.conftest import textured_lesions


def recoded(pixels: np.ndarray, side: int, quality: int, colour: float = 1.0) -> np.ndarray:
    """Another mirror's copy: resized, re-coloured, JPEG re-encoded."""
    image = ImageEnhance.Color(Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC)).enhance(colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_a_resized_recompressed_recoloured_and_flipped_copy_is_found():
    originals = textured_lesions(6, seed=1)
    copies = [
        recoded(originals[0], 256, 75),
        recoded(originals[1], 256, 60, colour=0.6),
        np.ascontiguousarray(recoded(originals[2], 128, 90)[:, ::-1]),
        np.ascontiguousarray(np.rot90(originals[3])),
    ]

    found = nearcopy.near_copies(nearcopy.Thumbs.of(copies), nearcopy.Thumbs.of(originals))

    assert sorted((i, j) for i, j, _ in found) == [(0, 0), (1, 1), (2, 2), (3, 3)]


def test_different_pictures_of_the_same_make_are_not_copies():
    pictures = textured_lesions(40, seed=2)

    assert nearcopy.near_copies(nearcopy.Thumbs.of(pictures)) == []


def test_within_one_collection_each_pair_is_given_once_and_no_picture_is_its_own_copy():
    pictures = textured_lesions(3, seed=3)
    pictures.append(recoded(pictures[1], 200, 80))

    found = nearcopy.near_copies(nearcopy.Thumbs.of(pictures))

    assert [(i, j) for i, j, _ in found] == [(1, 3)]


def test_an_empty_collection_has_no_copies():
    empty = nearcopy.Thumbs.of([])

    assert nearcopy.near_copies(empty) == []
    assert nearcopy.near_copies(nearcopy.Thumbs.of(textured_lesions(2, seed=4)), empty) == []
