"""Balancing plans per-class counts, generates exactly that many images, and caches them."""

from __future__ import annotations

import numpy as np
import pytest

from skin_model import CLASSES
from skin_model.balance import balance, counts_after, plan
from skin_model.config import BalanceConfig

BEFORE = {"melanoma": 5, "nevus": 12}  # every other class has no originals


@pytest.fixture
def training_split(blob):
    """Five melanoma and three nevus images, 48x48."""
    labels = ["melanoma"] * 5 + ["nevus"] * 3
    pixels = np.stack([blob(label, seed=i) for i, label in enumerate(labels)])
    return pixels, np.array([CLASSES.index(label) for label in labels], dtype=np.int32)


CONFIG = BalanceConfig(strategy="target", n=7, seed=3)


def test_add_gives_every_class_with_originals_n_new_images():
    extra = plan(BEFORE, BalanceConfig(strategy="add", n=10))

    assert extra == {name: (10 if name in BEFORE else 0) for name in CLASSES}


def test_target_tops_each_class_up_to_n_and_never_removes():
    extra = plan(BEFORE, BalanceConfig(strategy="target", n=8))

    assert extra["melanoma"] == 3
    assert extra["nevus"] == 0
    assert sum(extra.values()) == 3


def test_none_adds_nothing():
    assert set(plan(BEFORE, BalanceConfig(strategy="none", n=400)).values()) == {0}


@pytest.mark.parametrize("strategy", ["add", "target"])
def test_a_class_without_originals_gets_no_new_images(strategy):
    after = counts_after(BEFORE, BalanceConfig(strategy=strategy, n=50))

    assert after["dermatofibroma"] == 0
    assert set(after) == set(CLASSES)


def test_counts_after_are_originals_plus_plan():
    config = BalanceConfig(strategy="target", n=20)

    after = counts_after(BEFORE, config)

    assert after["melanoma"] == 20 and after["nevus"] == 20
    assert all(after[name] == BEFORE.get(name, 0) + plan(BEFORE, config)[name] for name in CLASSES)


def test_an_unknown_strategy_is_refused_naming_it():
    from skin_model.errors import SkinModelError

    with pytest.raises(SkinModelError, match="'more'"):
        BalanceConfig(strategy="more")


def test_balance_generates_exactly_the_planned_count_per_class(training_split, tmp_path):
    pixels, labels = training_split

    result = balance(pixels, labels, CONFIG, "fingerprint", cache_dir=tmp_path / "cache")

    generated = {name: int((result.labels == i).sum()) for i, name in enumerate(CLASSES)}
    assert generated == plan(result.before, CONFIG)
    assert generated["melanoma"] == 2 and generated["nevus"] == 4
    assert len(result.images) == len(result.labels) == 6
    assert result.after["melanoma"] == result.after["nevus"] == 7
    assert not result.cached


def test_generated_images_have_the_originals_shape_but_new_pixels(training_split, tmp_path):
    pixels, labels = training_split

    result = balance(pixels, labels, BalanceConfig(strategy="add", n=10, seed=3), "fp", cache_dir=tmp_path)

    assert result.images.shape[1:] == pixels.shape[1:] and result.images.dtype == np.uint8
    copies = sum(any(np.array_equal(new, old) for old in pixels) for new in result.images)
    assert copies < len(result.images) / 2


def test_balance_is_reproducible_for_a_seed(training_split, tmp_path):
    pixels, labels = training_split

    first = balance(pixels, labels, CONFIG, "fp", cache_dir=tmp_path / "a")
    second = balance(pixels, labels, CONFIG, "fp", cache_dir=tmp_path / "b")

    assert np.array_equal(first.images, second.images)
    assert np.array_equal(first.labels, second.labels)


def test_balance_reuses_the_cache_for_the_same_data_and_settings(training_split, tmp_path):
    pixels, labels = training_split
    cache = tmp_path / "cache"
    first = balance(pixels, labels, CONFIG, "fp", cache_dir=cache)

    again = balance(pixels, labels, CONFIG, "fp", cache_dir=cache)

    assert again.cached
    assert np.array_equal(again.images, first.images) and np.array_equal(again.labels, first.labels)


def test_new_data_or_settings_do_not_reuse_the_cache(training_split, tmp_path):
    pixels, labels = training_split
    balance(pixels, labels, CONFIG, "fp", cache_dir=tmp_path)

    other_data = balance(pixels, labels, CONFIG, "other fp", cache_dir=tmp_path)
    other_settings = balance(pixels, labels, BalanceConfig(strategy="target", n=8, seed=3), "fp", cache_dir=tmp_path)

    assert not other_data.cached and not other_settings.cached
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_balance_writes_one_file_under_the_cache_dir_and_nothing_else(training_split, tmp_path, skin_home):
    pixels, labels = training_split
    cache = tmp_path / "cache"

    balance(pixels, labels, CONFIG, "fp", cache_dir=cache)

    assert [p.suffix for p in cache.iterdir()] == [".npz"]
    assert list(skin_home.iterdir()) == []


def test_balance_defaults_to_the_cache_under_skin_home(training_split, skin_home):
    pixels, labels = training_split

    balance(pixels, labels, CONFIG, "fp")

    assert len(list((skin_home / "cache" / "balance").glob("*.npz"))) == 1


def test_balance_leaves_the_global_random_generators_as_they_were(training_split, tmp_path):
    import random

    pixels, labels = training_split
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)

    balance(pixels, labels, CONFIG, "fp", cache_dir=tmp_path)

    assert (random.random(), np.random.random()) == expected
