"""The ISIC folder layout is recognised or refused with a clear line; splits never leak."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from skin_model import CLASSES, dataset
from skin_model.dataset import Record
from skin_model.errors import DatasetError


def make_folders(root: Path, *relative: str, image: bytes | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in relative:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        if image is not None:
            (folder / "one.jpg").write_bytes(image)
    return root


def assert_one_line_naming(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message


# -- layouts ----------------------------------------------------------------------
def test_train_and_test_folders_are_both_sources(flawed_dataset):
    layout = dataset.find_layout(flawed_dataset.root)

    assert layout.sources == {"Train": flawed_dataset.root / "Train", "Test": flawed_dataset.root / "Test"}
    assert layout.has_test


def test_train_alone_is_a_layout_without_test(clean_dataset):
    layout = dataset.find_layout(clean_dataset.root)

    assert layout.sources == {"Train": clean_dataset.root / "Train"}
    assert not layout.has_test


def test_class_folders_directly_under_root_are_a_bare_layout(clean_dataset):
    bare = clean_dataset.root / "Train"

    layout = dataset.find_layout(bare)
    records, _ = dataset.list_files(layout)

    assert layout.sources == {"": bare}
    assert {r.source for r in records} == {""}
    assert Counter(r.label for r in records) == {label: 6 for label in clean_dataset.classes}


def test_folder_and_class_names_match_whatever_their_case(tmp_path, blob, encode):
    root = make_folders(tmp_path, "train/MELANOMA", "train/Basal Cell Carcinoma", image=encode(blob()))

    layout = dataset.find_layout(root)
    records, _ = dataset.list_files(layout)

    assert set(layout.sources) == {"Train"}
    assert sorted(r.label for r in records) == ["basal cell carcinoma", "melanoma"]


def test_list_files_returns_images_and_sets_aside_other_files(flawed_dataset):
    records, skipped = dataset.list_files(dataset.find_layout(flawed_dataset.root))

    assert skipped == [flawed_dataset.text]
    assert flawed_dataset.corrupt in {r.path for r in records}  # unreadable content is the audit's job
    assert {r.source for r in records if r.path.parent.parent.name == "Test"} == {"Test"}


# -- refused folders -------------------------------------------------------------
def test_a_missing_folder_is_refused_naming_it(tmp_path):
    missing = tmp_path / "nowhere"

    with pytest.raises(DatasetError, match="does not exist") as error:
        dataset.find_layout(missing)

    assert_one_line_naming(error, missing)


def test_a_file_is_refused_as_a_dataset_folder(tmp_path):
    a_file = tmp_path / "data.zip"
    a_file.write_bytes(b"PK")

    with pytest.raises(DatasetError, match="is a file") as error:
        dataset.find_layout(a_file)

    assert_one_line_naming(error, a_file)


@pytest.mark.parametrize("folders", [(), ("holiday photos", "scans")], ids=["empty", "only-unknown-folders"])
def test_a_folder_without_class_folders_is_refused(tmp_path, folders):
    root = make_folders(tmp_path / "data", *folders)

    with pytest.raises(DatasetError, match="no class folders") as error:
        dataset.find_layout(root)

    assert_one_line_naming(error, root)


def test_an_unknown_class_folder_beside_known_ones_is_refused_by_name(tmp_path):
    root = make_folders(tmp_path / "data", "Train/melanoma", "Train/moles")

    with pytest.raises(DatasetError, match="moles") as error:
        dataset.find_layout(root)

    assert_one_line_naming(error, root / "Train")


def test_empty_class_folders_are_refused_when_listing(tmp_path):
    root = make_folders(tmp_path / "data", "Train/melanoma", "Train/nevus")
    layout = dataset.find_layout(root)

    with pytest.raises(DatasetError, match="hold no images") as error:
        dataset.list_files(layout)

    assert_one_line_naming(error, root)


def test_test_folder_without_train_folder_is_refused(tmp_path):
    root = make_folders(tmp_path / "data", "Test/melanoma")

    with pytest.raises(DatasetError, match="no Train"):
        dataset.find_layout(root)


# -- splits -----------------------------------------------------------------------
SIZES = {"melanoma": 40, "nevus": 13, "dermatofibroma": 3, "vascular lesion": 2}


def records(sizes: dict[str, int] = SIZES, source: str = "Train") -> list[Record]:
    return [
        Record(Path(f"/data/{source}/{label}/{i}.jpg"), label, source) for label, n in sizes.items() for i in range(n)
    ]


def paths(parts: dict[str, list[Record]], name: str) -> set[Path]:
    return {r.path for r in parts[name]}


def test_split_parts_are_disjoint_and_cover_every_record():
    items = records()

    parts = dataset.split(items, 0.15, 0.15, seed=1)

    assert set(parts) == {"train", "val", "test"}
    assert sum(len(p) for p in parts.values()) == len(items)
    assert paths(parts, "train") | paths(parts, "val") | paths(parts, "test") == {r.path for r in items}
    assert not paths(parts, "train") & paths(parts, "val")
    assert not paths(parts, "train") & paths(parts, "test")
    assert not paths(parts, "val") & paths(parts, "test")


def test_split_puts_every_class_with_enough_images_for_its_share_in_every_part():
    parts = dataset.split(records(), 0.15, 0.15, seed=1)

    for name, part in parts.items():  # 13 nevi: about 2 each for val and test; 3 dermatofibromas may all train
        labels = {r.label for r in part}
        assert {"melanoma", "nevus"} <= labels, name


def test_split_keeps_class_proportions():
    parts = dataset.split(records(), 0.15, 0.15, seed=1)

    melanoma = Counter(r.label for r in parts["test"])["melanoma"]
    assert melanoma == round(40 * 0.15)


def test_split_is_the_same_for_the_same_seed_and_differs_for_another():
    first = dataset.split(records(), 0.15, 0.15, seed=7)
    again = dataset.split(records(), 0.15, 0.15, seed=7)
    other = dataset.split(records(), 0.15, 0.15, seed=8)

    assert first == again
    assert paths(first, "test") != paths(other, "test")


def test_a_test_source_is_the_test_split_as_is():
    train = records({"melanoma": 20, "nevus": 10})
    test = records({"melanoma": 4, "nevus": 3}, source="Test")

    parts = dataset.split(train + test, 0.2, 0.15, seed=0)

    assert parts["test"] == test
    assert {r.source for r in parts["train"] + parts["val"]} == {"Train"}
    assert len(parts["train"]) + len(parts["val"]) == len(train)


def test_labels_follow_the_order_of_classes():
    labelled = [Record(Path(f"{name}.jpg"), name) for name in reversed(CLASSES)]

    assert dataset.labels_of(labelled).tolist() == list(reversed(range(len(CLASSES))))


def test_load_pixels_decodes_every_record_at_one_size(clean_dataset):
    recs, _ = dataset.list_files(dataset.find_layout(clean_dataset.root))

    pixels = dataset.load_pixels(recs[:4], size=40)

    assert pixels.shape == (4, 40, 40, 3)
    assert pixels.std() > 0


def test_user_folder_refuses_paths_outside_the_allowed_root(tmp_path, monkeypatch):
    from skin_model.dataset import user_folder

    allowed = tmp_path / "data"
    (allowed / "isic").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (allowed / "link").symlink_to(outside)
    monkeypatch.setenv("SKIN_DATA_ROOT", str(allowed))
    assert user_folder(str(allowed / "isic")) == (allowed / "isic").resolve()
    for attempt in (str(allowed / ".." / "secret"), str(allowed / "link"), "/etc"):
        with pytest.raises(DatasetError, match="outside the allowed data folder"):
            user_folder(attempt)


# -- SKIN_DATA_ROOT holds for every reader (issue 32, item 11) ------------------------------------------------


@pytest.fixture
def fenced(tmp_path, monkeypatch, clean_dataset):
    """SKIN_DATA_ROOT = tmp/allowed; the clean dataset lies outside it (tmp/...), reachable only through links."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("SKIN_DATA_ROOT", str(allowed))
    return allowed


def test_a_dataset_root_that_links_out_of_skin_data_root_is_refused(fenced, clean_dataset):
    (fenced / "link").symlink_to(clean_dataset.root, target_is_directory=True)
    with pytest.raises(DatasetError, match="outside the allowed data folder"):
        dataset.find_layout(fenced / "link")


def test_a_file_that_links_out_of_skin_data_root_is_skipped_and_reported_by_the_audit(fenced, clean_dataset):
    import shutil

    from skin_model.audit import audit

    inside = fenced / "ds"
    shutil.copytree(clean_dataset.root, inside)
    victim = next(p for p in sorted(inside.rglob("*")) if p.suffix.lower() in dataset.EXTENSIONS)
    victim.unlink()
    outside_file = clean_dataset.root / victim.relative_to(inside)
    victim.symlink_to(outside_file)

    report = audit(inside)
    assert victim not in [r.path for r in report.records]
    assert report.summary()["outside_data_root"] == [victim.relative_to(inside).as_posix()]


def test_similar_case_thumbnails_are_never_read_through_a_link_out_of_skin_data_root(fenced, clean_dataset):
    from skin_model import similar

    image = next(p for p in sorted(clean_dataset.root.rglob("*")) if p.suffix.lower() in dataset.EXTENSIONS)
    neighbour = similar.Neighbour(image.stem, "nevus", 0.1, "Train", image.relative_to(clean_dataset.root).as_posix())
    (fenced / "link").symlink_to(clean_dataset.root, target_is_directory=True)
    assert similar.local_file(neighbour, [fenced / "link"]) is None


def several_pictures() -> list[Record]:
    single = [Record(Path(f"/data/Train/nevus/{i}.jpg"), "nevus", "Train", lesion=f"n{i}") for i in range(60)]
    several = [
        Record(Path(f"/data/Train/nevus/m{k}-{i}.jpg"), "nevus", "Train", lesion=f"m{k}")
        for k in range(20)
        for i in range(3)
    ]
    return single + several


def test_lesions_with_several_pictures_reach_every_split_not_only_training():
    """Big groups are dealt first; each must go where its classes are furthest below their share *relatively*,
    or the training split, whose share is largest, takes every lesion with several pictures."""
    parts = dataset.split(several_pictures(), 0.15, 0.15, seed=3)

    for name in ("val", "test"):
        kept = {r.lesion for r in parts[name] if r.lesion.startswith("m")}
        assert 2 <= len(kept) <= 4, (name, kept)  # 15 % of 20 lesions: 3, give or take one


def test_a_version_dealt_by_images_is_dealt_again_the_same_way():
    from skin_model.config import TrainConfig

    old = TrainConfig.from_dict({k: v for k, v in TrainConfig().to_dict().items() if k != "deal"})
    parts = dataset.split(several_pictures(), 0.15, 0.15, seed=3, deal=old.deal)

    assert old.deal == "images" and TrainConfig().deal == "relative"
    assert all(not r.lesion.startswith("m") for name in ("val", "test") for r in parts[name])  # as it was dealt
