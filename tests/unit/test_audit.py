"""The audit finds every planted flaw, and usable() keeps exactly one trustworthy copy of each picture."""

from __future__ import annotations

from collections import Counter

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
