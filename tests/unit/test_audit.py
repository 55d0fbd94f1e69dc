"""The audit finds every planted flaw, and usable() keeps exactly one trustworthy copy of each picture."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from skin_model import images
from skin_model.audit import audit, usable


@pytest.fixture
def report(flawed_dataset):
    return audit(flawed_dataset.root)


def group_paths(groups) -> list[set]:
    return [{r.path for r in group} for group in groups]


def test_unreadable_lists_the_truncated_jpeg_with_a_reason(report, flawed_dataset):
    assert [path for path, _ in report.unreadable] == [flawed_dataset.corrupt]
    reason = report.unreadable[0][1]
    assert "corrupt or truncated" in reason and "\n" not in reason


def test_not_images_lists_the_text_file(report, flawed_dataset):
    assert report.not_images == [flawed_dataset.text]


def test_an_exact_copy_within_a_class_is_a_duplicate(report, flawed_dataset):
    assert set(flawed_dataset.duplicate) in group_paths(report.duplicates)


def test_the_same_picture_under_two_classes_is_a_conflict(report, flawed_dataset):
    assert group_paths(report.conflicts) == [set(flawed_dataset.conflict)]
    assert len({r.label for r in report.conflicts[0]}) == 2


def test_a_train_picture_copied_into_test_is_a_leak(report, flawed_dataset):
    assert group_paths(report.leaks) == [set(flawed_dataset.leak)]
    assert {r.source for r in report.leaks[0]} == {"Train", "Test"}


def test_a_png_resave_of_a_jpeg_counts_as_a_duplicate(clean_dataset, encode):
    original = clean_dataset.originals["nevus"][0]
    resaved = original.with_name("resaved.png")
    resaved.write_bytes(encode(images.decode(original), "PNG"))

    found = audit(clean_dataset.root)

    assert group_paths(found.duplicates) == [{original, resaved}]


def test_a_clean_dataset_has_no_findings(clean_dataset):
    found = audit(clean_dataset.root)

    assert (found.unreadable, found.not_images, found.duplicates, found.conflicts, found.leaks) == ([], [], [], [], [])
    assert len(usable(found)) == 3 * 6


def test_usable_drops_both_copies_of_a_conflicting_picture(report, flawed_dataset):
    kept = {r.path for r in usable(report)}

    assert not kept & set(flawed_dataset.conflict)


def test_usable_keeps_one_copy_of_a_duplicated_picture(report, flawed_dataset):
    kept = {r.path for r in usable(report)}

    assert len(kept & set(flawed_dataset.duplicate)) == 1


def test_usable_keeps_a_leaked_picture_only_in_test(report, flawed_dataset):
    train_copy, test_copy = flawed_dataset.leak
    kept = {r.path: r for r in usable(report)}

    assert test_copy in kept and kept[test_copy].source == "Test"
    assert train_copy not in kept


def test_no_two_usable_records_share_content(report):
    hashes = [report.hashes[r.path] for r in usable(report)]

    assert len(hashes) == len(set(hashes))


def test_usable_is_every_distinct_readable_picture_except_conflicts(report, flawed_dataset):
    distinct = 3 * 6 + len(flawed_dataset.test_images)  # originals + genuine Test pictures
    conflicted = 1

    records = usable(report)

    assert len(records) == distinct - conflicted
    assert flawed_dataset.corrupt not in {r.path for r in records}


def test_counts_are_per_source_and_class_before_cleaning(report):
    counts = report.counts()

    assert counts["Train"] == {"melanoma": 6 + 1, "nevus": 6 + 2, "basal cell carcinoma": 6}
    assert counts["Test"] == {"melanoma": 2, "nevus": 1, "basal cell carcinoma": 1}


def test_summary_names_files_relative_to_the_dataset(report):
    summary = report.summary()

    assert summary["not_images"] == ["Train/basal cell carcinoma/notes.txt"]
    assert summary["unreadable"][0]["file"] == "Train/nevus/truncated.jpg"
    assert summary["usable"] == len(usable(report))
    assert Counter(item["label"] for item in summary["conflicts"][0]) == {"melanoma": 1, "nevus": 1}


def test_audit_never_writes_into_the_dataset_folder(flawed_dataset, snapshot):
    before = snapshot(flawed_dataset.root)

    usable(audit(flawed_dataset.root))

    assert snapshot(flawed_dataset.root) == before


# -- several dataset roots ------------------------------------------------------------------------------------
def write_jpeg(path, pixels, quality: int = 95) -> None:
    import io as _io

    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = _io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    path.write_bytes(buffer.getvalue())


@pytest.fixture
def two_roots(tmp_path):
    """Root ``a`` (180 px, its own metadata) and root ``b`` (another mirror: 256 px, JPEG quality 75), planted with
    the same picture three ways: identical pixels, one ISIC id at another size, and a near-copy under another id;
    and a held-out folder that repeats one picture of ``a``."""
    from PIL import Image

    from tests.conftest import textured_lesions

    pictures = textured_lesions(12, seed=11)
    bigger = lambda p: np.asarray(Image.fromarray(p).resize((256, 256), Image.Resampling.BICUBIC))
    a, b, held = tmp_path / "a", tmp_path / "b", tmp_path / "held"
    for i in range(4):
        write_jpeg(a / "Train" / "nevus" / f"ISIC_000000{i}.jpg", pictures[i])
        write_jpeg(a / "Train" / "melanoma" / f"ISIC_000001{i}.jpg", pictures[4 + i])
    for i in range(2):
        write_jpeg(b / "Train" / "nevus" / f"ISIC_000100{i}.jpg", bigger(pictures[8 + i]), 75)
    write_jpeg(b / "Train" / "melanoma" / "ISIC_0001010.jpg", bigger(pictures[10]), 75)
    (b / "Train" / "nevus" / "ISIC_0002000.jpg").write_bytes((a / "Train" / "nevus" / "ISIC_0000000.jpg").read_bytes())
    write_jpeg(b / "Train" / "nevus" / "ISIC_0000001.jpg", bigger(pictures[1]), 75)  # same id, other pixels
    write_jpeg(b / "Train" / "nevus" / "ISIC_0003000.jpg", bigger(pictures[2]), 75)  # near-copy, another id
    write_jpeg(b / "Train" / "melanoma" / "ISIC_0009999.jpg", bigger(pictures[11]), 75)
    (a / "metadata.csv").write_text("image,isic2019_diagnosis,lesion_id\nISIC_0009999,BCC,\nISIC_0000010,,HAM_1\n")
    (b / "metadata.csv").write_text("image,isic2019_diagnosis,lesion_id\nISIC_0009999,NV,\n")
    write_jpeg(held / "melanoma" / "ISIC_0005000.jpg", bigger(pictures[5]), 75)  # repeats a/Train/melanoma/...011
    return a, b, held


def test_several_roots_are_audited_as_one_and_each_root_is_counted(two_roots):
    a, b, _ = two_roots

    found = audit([a, b])

    assert found.roots == [a.resolve(), b.resolve()]
    summary = found.summary()
    assert {root: counts["images"] for root, counts in summary["roots"].items()} == {str(a): 8, str(b): 7}
    assert summary["images"] == 15


def test_the_same_picture_across_roots_is_found_by_pixels_by_id_and_as_a_near_copy(two_roots):
    a, b, _ = two_roots
    nevus_a, nevus_b = a / "Train" / "nevus", b / "Train" / "nevus"

    found = audit([a, b])

    assert {nevus_a / "ISIC_0000000.jpg", nevus_b / "ISIC_0002000.jpg"} in group_paths(found.duplicates)
    assert group_paths(found.same_id) == [{nevus_a / "ISIC_0000001.jpg", nevus_b / "ISIC_0000001.jpg"}]
    assert [{x.path, y.path} for x, y, _ in found.near_copies] == [
        {nevus_a / "ISIC_0000002.jpg", nevus_b / "ISIC_0003000.jpg"}
    ]
    kept = {r.path.stem for r in usable(found)}
    assert len(kept) == 15 - 3  # each copy kept once
    assert {"ISIC_0000001", "ISIC_0001000"} <= kept


def test_each_root_metadata_speaks_for_its_own_images(two_roots):
    a, b, _ = two_roots

    found = audit([a, b])

    melanoma_b = b / "Train" / "melanoma" / "ISIC_0009999.jpg"
    assert [(r.path, code) for r, code in found.disagreements()] == [(melanoma_b, "NV")]  # b's label, not a's BCC
    lesions = {r.path.stem: r.lesion for r in usable(found)}
    assert lesions["ISIC_0000010"] == "HAM_1"


def test_a_held_out_picture_and_its_copy_are_never_usable_for_training(two_roots):
    a, b, held = two_roots

    found = audit([a, b], hold_out=[held])

    assert [(r.path.name, p.name) for r, p in found.held_out] == [("ISIC_0000011.jpg", "ISIC_0005000.jpg")]
    assert "ISIC_0000011" not in {r.path.stem for r in usable(found)}
    assert found.summary()["held_out"] == [
        {"file": "a/Train/melanoma/ISIC_0000011.jpg", "repeats": str(held / "melanoma" / "ISIC_0005000.jpg")}
    ]


def test_one_metadata_file_for_several_roots_is_refused_with_one_line(two_roots):
    from skin_model.errors import DatasetError

    a, b, _ = two_roots
    with pytest.raises(DatasetError, match=r"each root's metadata\.csv"):
        audit([a, b], metadata=a / "metadata.csv")


def test_a_root_inside_another_is_refused_and_the_same_root_twice_is_one(two_roots):
    from skin_model.errors import DatasetError

    a, _, _ = two_roots
    assert audit([a, a]).roots == [a.resolve()]
    with pytest.raises(DatasetError, match="inside or around another dataset root"):
        audit([a, a / "Train"])


def test_splits_of_several_roots_keep_every_copy_on_one_side(two_roots):
    from skin_model.config import BalanceConfig, TrainConfig
    from skin_model.splits import training_split

    a, b, _ = two_roots
    found = audit([a, b])
    for seed in range(5):
        _, parts = training_split(found, TrainConfig(seed=seed, balance=BalanceConfig(n=0)))
        stems = [r.path.stem for part in parts.values() for r in part]
        assert len(stems) == len(set(stems)) == 12
        paths = {r.path for part in parts.values() for r in part}
        assert not ({a / "Train" / "nevus" / "ISIC_0000002.jpg", b / "Train" / "nevus" / "ISIC_0003000.jpg"} <= paths)


def test_no_dataset_folder_at_all_is_one_clear_line():
    from skin_model.errors import DatasetError

    with pytest.raises(DatasetError, match="no dataset folder given"):
        audit([])
