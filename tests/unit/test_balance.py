"""Balancing plans per-class counts, generates exactly that many image files, and caches them."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from skin_model import CLASSES
from skin_model.balance import MANIFEST, balance, counts_after, evict, plan, sources
from skin_model.config import BalanceConfig
from skin_model.dataset import STORAGE_SIZE, Record, load_pixels

BEFORE = {"melanoma": 5, "nevus": 12}  # every other class has no originals


@pytest.fixture
def training_split(blob, tmp_path):
    """Five melanoma and three nevus images, 48x48 PNG files."""
    folder = tmp_path / "originals"
    folder.mkdir()
    records = []
    for i, label in enumerate(["melanoma"] * 5 + ["nevus"] * 3):
        path = folder / f"{i}.png"
        Image.fromarray(blob(label, seed=i)).save(path)
        records.append(Record(path=path, label=label, source="Train"))
    return records


def pixels_of(result) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in result.paths])


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
    result = balance(training_split, CONFIG, "fingerprint", cache_dir=tmp_path / "cache")

    generated = {name: int((result.labels == i).sum()) for i, name in enumerate(CLASSES)}
    assert generated == plan(result.before, CONFIG)
    assert generated["melanoma"] == 2 and generated["nevus"] == 4
    assert len(result.paths) == len(result.labels) == 6 and all(p.is_file() for p in result.paths)
    assert result.after["melanoma"] == result.after["nevus"] == 7
    assert not result.cached


def test_generated_images_have_the_storage_shape_but_new_pixels(training_split, tmp_path):
    originals = load_pixels(training_split)

    result = balance(training_split, BalanceConfig(strategy="add", n=10, seed=3), "fp", cache_dir=tmp_path)

    generated = pixels_of(result)
    assert generated.shape[1:] == (STORAGE_SIZE, STORAGE_SIZE, 3) and generated.dtype == np.uint8
    copies = sum(any(np.array_equal(new, old) for old in originals) for new in generated)
    assert copies < len(generated) / 2


def test_generated_files_carry_no_metadata(training_split, tmp_path):
    result = balance(training_split, CONFIG, "fp", cache_dir=tmp_path)

    with Image.open(result.paths[0]) as image:
        assert image.format == "PNG" and not image.getexif() and set(image.info) <= {"dpi"}


def test_balance_is_reproducible_for_a_seed(training_split, tmp_path):
    first = balance(training_split, CONFIG, "fp", cache_dir=tmp_path / "a")
    second = balance(training_split, CONFIG, "fp", cache_dir=tmp_path / "b")

    assert np.array_equal(pixels_of(first), pixels_of(second))
    assert np.array_equal(first.labels, second.labels)


def test_balance_reuses_the_cache_for_the_same_data_and_settings(training_split, tmp_path):
    cache = tmp_path / "cache"
    first = balance(training_split, CONFIG, "fp", cache_dir=cache)

    again = balance(training_split, CONFIG, "fp", cache_dir=cache)

    assert again.cached
    assert again.paths == first.paths and np.array_equal(again.labels, first.labels)


def test_new_data_or_settings_do_not_reuse_the_cache(training_split, tmp_path):
    balance(training_split, CONFIG, "fp", cache_dir=tmp_path)

    other_data = balance(training_split, CONFIG, "other fp", cache_dir=tmp_path)
    other_settings = balance(training_split, BalanceConfig(strategy="target", n=8, seed=3), "fp", cache_dir=tmp_path)

    assert not other_data.cached and not other_settings.cached
    assert len(list(tmp_path.glob(f"*/{MANIFEST}"))) == 3


def test_the_cache_keeps_only_the_most_recently_used_entries(training_split, tmp_path):
    cache = tmp_path / "cache"
    kept = balance(training_split, CONFIG, "fp-0", cache_dir=cache)
    for i in range(1, 5):
        balance(training_split, CONFIG, f"fp-{i}", cache_dir=cache)
        if i == 2:
            balance(training_split, CONFIG, "fp-0", cache_dir=cache)  # used again: most recent

    entries = sorted(p.name for p in cache.iterdir())

    assert len(entries) == 3
    assert kept.paths[0].parent.name in entries
    assert balance(training_split, CONFIG, "fp-0", cache_dir=cache).cached


def test_evict_leaves_files_that_are_not_cache_entries(training_split, tmp_path):
    for i in range(4):
        balance(training_split, CONFIG, f"fp-{i}", cache_dir=tmp_path)

    assert all(r.path.is_file() for r in training_split)  # the originals folder sits in the same folder


def test_evict_removes_an_old_style_cache_file_too(tmp_path):
    old = tmp_path / "old.npz"
    old.write_bytes(b"x")
    os.utime(old, (0, 0))
    keep = tmp_path / "entry"
    keep.mkdir()
    (keep / MANIFEST).write_text("[]")

    evict(tmp_path, keep=keep, entries=1)

    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_a_large_class_decodes_a_bounded_number_of_sources(training_split):
    many = training_split * 200  # 1,600 records

    picked = sources(many, extra=10, seed=1)

    assert len(picked) == 500 and len(set(map(id, picked))) <= 500
    assert sources(training_split, extra=10, seed=1) == training_split


def test_balance_writes_one_entry_under_the_cache_dir_and_nothing_else(training_split, tmp_path, skin_home):
    cache = tmp_path / "cache"

    balance(training_split, CONFIG, "fp", cache_dir=cache)

    (entry,) = cache.iterdir()
    assert entry.is_dir() and (entry / MANIFEST).is_file()
    assert list(skin_home.iterdir()) == []


def test_balance_defaults_to_the_cache_under_skin_home(training_split, skin_home):
    balance(training_split, CONFIG, "fp")

    assert len(list((skin_home / "cache" / "balance").glob(f"*/{MANIFEST}"))) == 1


def test_balance_leaves_the_global_random_generators_as_they_were(training_split, tmp_path):
    import random

    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)

    balance(training_split, CONFIG, "fp", cache_dir=tmp_path)

    assert (random.random(), np.random.random()) == expected
