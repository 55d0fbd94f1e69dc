"""ISIC metadata: official labels win, lesions stay in one split, a bad file is one clear line."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from skin_model import isic_csv
from skin_model.audit import audit, usable
from skin_model.dataset import Record, folds, group_of, split
from skin_model.errors import DatasetError

HEADER = "image,isic2019_diagnosis,lesion_id,source,dx_type,age,sex,site,extra_column\n"


def write(path, rows: list[str], header: str = HEADER):
    path.write_text(header + "".join(row + "\n" for row in rows))
    return path


# -- the reader ---------------------------------------------------------------------
def test_a_good_file_is_read_and_unknown_columns_are_ignored(tmp_path):
    path = write(
        tmp_path / "m.csv",
        ["ISIC_0000001,MEL,,isic_archive,,,,,x", "ISIC_0024306,nv,HAM_1,ham10000/rosendahl,histo,45,male,back,y"],
    )

    found = isic_csv.read(path)

    assert found.images["ISIC_0000001"] == isic_csv.ImageInfo(official="MEL", source="isic_archive")
    assert found.images["ISIC_0024306"].official == "NV"  # codes are case-insensitive
    assert found.images["ISIC_0024306"].lesion_id == "HAM_1"


def test_no_metadata_file_means_no_metadata(clean_dataset):
    assert isic_csv.find(clean_dataset.root) is isic_csv.EMPTY


def test_a_missing_explicit_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(DatasetError, match="cannot be read") as error:
        isic_csv.find(tmp_path, tmp_path / "nope.csv")
    assert "\n" not in str(error.value) and "nope.csv" in str(error.value)


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        ("name,diagnosis\n", ["ISIC_1,MEL"], "needs the column"),
        (HEADER, ["ISIC_1,MELANOMA,,,,,,,"], "unknown diagnosis 'MELANOMA'"),
        (HEADER, [",MEL,,,,,,,"], "line 2: empty image id"),
        ("", [], "needs the column"),
    ],
)
def test_a_malformed_file_is_one_line_naming_the_problem(tmp_path, header, rows, message):
    path = write(tmp_path / "m.csv", rows, header)

    with pytest.raises(DatasetError, match=message) as error:
        isic_csv.read(path)
    assert "\n" not in str(error.value)


def test_a_binary_file_is_refused(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xff\xfe\x00\x81" * 100)

    with pytest.raises(DatasetError, match="not UTF-8"):
        isic_csv.read(path)


def test_id_blocks_follow_isic_upload_order():
    assert isic_csv.id_block(Path("ISIC_0000999.jpg")) == "isic-0k"
    assert isic_csv.id_block(Path("ISIC_0010123.jpg")) == "isic-10k"
    assert isic_csv.id_block(Path("photo.jpg")) == "photo"
    assert isic_csv.id_block(Path("ISIC_0025509(1).jpg")) == "isic-25k"  # a second download of one image


# -- the audit with metadata --------------------------------------------------------
@pytest.fixture
def labelled(make_dataset):
    """One nevus officially a melanoma, the planted conflict officially a nevus, two images of one lesion."""
    data = make_dataset(flaws=True)
    mel, nev, bcc = data.originals["melanoma"], data.originals["nevus"], data.originals["basal cell carcinoma"]
    conflict_a = data.conflict[0]  # the same picture is in melanoma/ and nevus/
    rows = [
        f"{nev[0].stem},MEL,,isic_archive,,,,,",  # a folder label the official label contradicts
        f"{conflict_a.stem},NV,,isic_archive,,,,,",  # official label resolves the conflict
        f"{bcc[0].stem},BCC,HAM_7,ham10000/rosendahl,histo,,,,",
        f"{bcc[1].stem},BCC,HAM_7,ham10000/rosendahl,histo,,,,",  # a second image of lesion HAM_7
        f"{mel[3].stem},BKL,,isic_archive,,,,,",
    ]
    write(data.root / "metadata.csv", rows)
    return data


def test_the_audit_lists_every_folder_label_the_official_label_contradicts(labelled):
    summary = audit(labelled.root).summary()

    found = {(d["file"], d["folder_label"], d["official_label"]) for d in summary["official_label_disagreements"]}
    nevus0 = labelled.originals["nevus"][0].name
    mel3 = labelled.originals["melanoma"][3].name
    assert found == {
        (f"Train/nevus/{nevus0}", "nevus", "MEL"),
        (f"Train/melanoma/{labelled.conflict[0].name}", "melanoma", "NV"),
        (f"Train/melanoma/{mel3}", "melanoma", "BKL"),
    }


def test_official_labels_win_and_a_resolved_conflict_is_kept_once(labelled):
    kept = {r.path.stem: r for r in usable(audit(labelled.root))}

    assert kept[labelled.originals["nevus"][0].stem].label == "melanoma"
    copies = [r for r in kept.values() if r.path.name in {labelled.conflict[0].name, labelled.conflict[1].name}]
    assert [r.label for r in copies] == ["nevus"]  # once, under the official label, from the agreeing folder
    assert kept[labelled.originals["melanoma"][3].stem].label == "pigmented benign keratosis"  # BKL's first folder


def test_bkl_agrees_with_both_keratosis_folders():
    info = isic_csv.ImageInfo(official="BKL")

    assert info.agrees("seborrheic keratosis") and info.agrees("pigmented benign keratosis")
    assert not info.agrees("melanoma")


def test_the_folder_policy_keeps_folder_labels_and_drops_conflicts(labelled):
    kept = {r.path.stem: r for r in usable(audit(labelled.root), policy="folder")}

    assert kept[labelled.originals["nevus"][0].stem].label == "nevus"
    assert labelled.conflict[0].stem not in kept and labelled.conflict[1].stem not in kept


def test_without_metadata_conflicts_are_dropped_and_labels_kept(make_dataset):
    data = make_dataset(flaws=True)
    kept = {r.path for r in usable(audit(data.root))}

    assert not {*data.conflict} & kept
    assert all(r.origin == "unknown" and r.lesion == f"image:{r.path.stem}" for r in usable(audit(data.root)))


def test_records_carry_their_lesion_and_origin(labelled):
    kept = {r.path.stem: r for r in usable(audit(labelled.root))}
    bcc = labelled.originals["basal cell carcinoma"]

    assert kept[bcc[0].stem].lesion == kept[bcc[1].stem].lesion == "HAM_7"
    assert kept[bcc[0].stem].origin == "ham10000/rosendahl"


def test_an_explicit_metadata_file_overrides_the_one_in_the_folder(labelled, tmp_path):
    other = write(tmp_path / "other.csv", [])

    assert audit(labelled.root, other).summary()["official_label_disagreements"] == []


# -- grouped splits --------------------------------------------------------------------
def lesion_records(n_lesions: int = 60, per_lesion: int = 3) -> list[Record]:
    """Records of several images per lesion, two classes, ISIC-like ids in upload blocks."""
    out = []
    for lesion in range(n_lesions):
        label = "melanoma" if lesion % 3 else "nevus"
        for k in range(per_lesion):
            image_id = 1000 * (lesion % 7) + 10 * lesion + k
            out.append(
                Record(Path(f"/d/{label}/ISIC_{image_id:07d}.jpg"), label, "Train", f"L{lesion}", f"site{lesion % 4}")
            )
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_lesion_lands_in_two_splits(seed):
    parts = split(lesion_records(), 0.15, 0.15, seed, "lesion")

    lesions = {name: {r.lesion for r in part} for name, part in parts.items()}
    assert not lesions["train"] & lesions["val"]
    assert not lesions["train"] & lesions["test"]
    assert not lesions["val"] & lesions["test"]
    assert sum(len(p) for p in parts.values()) == len(lesion_records())
    assert all(len(p) for p in parts.values())


def test_grouped_splits_stay_close_to_stratified():
    parts = split(lesion_records(120), 0.15, 0.15, 0, "lesion")

    for part in parts.values():
        share = Counter(r.label for r in part)["melanoma"] / len(part)
        assert 0.55 < share < 0.78  # two thirds of the lesions are melanomas


@pytest.mark.parametrize("group_by", ["source", "id-block"])
def test_whole_sources_or_id_blocks_stay_together_and_lesions_too(group_by):
    records = lesion_records(80)
    parts = split(records, 0.2, 0.2, 5, group_by)

    for key in (group_by, "lesion"):
        groups = {name: {group_of(r, key) for r in part} for name, part in parts.items()}
        assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
        assert not groups["val"] & groups["test"]


@pytest.mark.parametrize("k", [2, 5])
def test_folds_score_every_image_once_and_keep_each_lesion_in_one_fold(k):
    records = lesion_records(90)

    parts = folds(records, k, seed=3)

    assert len(parts) == k
    assert sorted(str(r.path) for part in parts for r in part) == sorted(str(r.path) for r in records)
    homes = Counter(lesion for part in parts for lesion in {r.lesion for r in part})
    assert set(homes.values()) == {1}
    for part in parts:  # dealt like split: sizes and the melanoma share stay close to even
        assert abs(len(part) - len(records) / k) <= 3
        assert 0.5 < Counter(r.label for r in part)["melanoma"] / len(part) < 0.85


def test_folds_are_seeded_and_refuse_a_count_that_is_no_cross_validation():
    records = lesion_records(60)

    assert folds(records, 3, seed=1) == folds(records, 3, seed=1)
    assert folds(records, 3, seed=1) != folds(records, 3, seed=2)
    with pytest.raises(DatasetError, match="folds must be between 2 and 20"):
        folds(records, 1, seed=1)


def test_an_unknown_grouping_is_refused():
    with pytest.raises(DatasetError, match="group-by must be one of"):
        split(lesion_records(5), 0.2, 0.2, 0, "clinic")


def test_a_lesion_id_in_metadata_keeps_a_real_lesion_together(labelled):
    records = usable(audit(labelled.root))
    for seed in range(5):
        parts = split(records, 0.3, 0.3, seed, "lesion")
        homes = {name for name, part in parts.items() for r in part if r.lesion == "HAM_7"}
        assert len(homes) == 1


def test_copying_the_metadata_file_elsewhere_changes_nothing(labelled, tmp_path):
    copy = tmp_path / "copy.csv"
    shutil.copy(labelled.root / "metadata.csv", copy)

    assert usable(audit(labelled.root, copy)) == usable(audit(labelled.root))
