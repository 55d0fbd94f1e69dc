"""Confirmed cases: add, refuse duplicates, remove, export in the ISIC layout, concurrent adds lose nothing."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from skin_model import cases, isic_csv
from skin_model.audit import audit
from skin_model.cli import main
from skin_model.config import REPO_ROOT
from skin_model.dataset import find_layout
from skin_model.images import decode, pixel_hash
from skin_model.record import CasesRecord, VersionRecord
from tests.conftest import written


@pytest.fixture
def three(lesion_images) -> list[np.ndarray]:
    return lesion_images(3, seed=21, size=64)


def test_an_added_case_is_a_metadata_free_png_and_a_record(three, skin_home):
    case = cases.add(three[0], "melanoma", "histopathology", note="  raised,\n irregular  ", model_version=3)

    stored = cases.image_path(case)
    assert stored.parent == skin_home / "cases" and stored.suffix == ".png"
    assert np.array_equal(decode(stored), three[0])
    assert not Image.open(stored).info  # no EXIF, no text chunks
    assert case.note == "raised, irregular" and case.model_version == 3
    assert cases.all_cases() == [case]


@pytest.mark.parametrize(
    ("diagnosis", "confirmed", "note", "message"),
    [
        ("melanoma in situ", "histopathology", "", "diagnosis must be one of"),
        ("melanoma", "gut feeling", "", "confirmation must be one of"),
        ("melanoma", "consensus", "x" * 400, "keep it under"),
    ],
)
def test_an_invalid_case_is_refused_and_nothing_is_stored(three, skin_home, diagnosis, confirmed, note, message):
    with pytest.raises(cases.CaseError, match=message):
        cases.add(three[0], diagnosis, confirmed, note)
    assert cases.all_cases() == []
    assert not list(skin_home.glob("cases/*.png"))


def test_the_same_pixels_are_refused_naming_the_case_even_from_another_format(three, skin_home, encode, tmp_path):
    first = cases.add(three[1], "nevus", "follow-up")
    again = decode(encode(three[1], "PNG"), name="again.png")  # another file, same picture
    with pytest.raises(cases.CaseError, match=f"already confirmed case {first.id}"):
        cases.add(again, "melanoma", "histopathology")
    assert len(cases.all_cases()) == 1


def test_an_image_already_in_the_dataset_is_refused_naming_its_file(clean_dataset):
    report = audit(clean_dataset.root)
    path = next(iter(report.hashes))
    with pytest.raises(cases.CaseError, match="already in the dataset as Train/"):
        cases.add(decode(path), "nevus", "consensus", dataset=cases.dataset_hashes(report))
    assert cases.all_cases() == []


def test_remove_deletes_the_record_and_the_image(three):
    kept, gone = cases.add(three[0], "nevus", "follow-up"), cases.add(three[1], "melanoma", "histopathology")
    assert cases.remove(gone.id) == gone
    assert cases.all_cases() == [kept]
    assert not cases.image_path(gone).exists() and cases.image_path(kept).exists()
    with pytest.raises(cases.CaseError, match="no confirmed case"):
        cases.remove(gone.id)


def test_export_writes_the_isic_layout_and_a_metadata_file_the_data_layer_reads(three, tmp_path):
    added = [
        cases.add(three[0], "melanoma", "histopathology"),
        cases.add(three[1], "seborrheic keratosis", "consensus"),
        cases.add(three[2], "nevus", "follow-up"),
    ]
    out = tmp_path / "export"
    assert cases.export(out).written == 3

    layout = find_layout(out)  # the folder is a dataset like the shared one
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == sorted(
        f"Train/{c.diagnosis}/{c.id}.png" for c in added
    )
    read = isic_csv.read(out / "metadata.csv")
    assert read.images[added[0].id].official == "MEL" and read.images[added[0].id].dx_type == "histo"
    assert read.images[added[1].id].official == "BKL" and read.images[added[1].id].source == "clinic"
    assert read.images[added[2].id].dx_type == "follow_up"
    assert {r.label for r in audit(layout).records} == {"melanoma", "seborrheic keratosis", "nevus"}
    with open(out / "metadata.csv", newline="") as handle:
        assert next(csv.reader(handle))[:5] == ["image", "isic2019_diagnosis", "lesion_id", "source", "dx_type"]
    with pytest.raises(cases.CaseError, match="not empty"):
        cases.export(out)


def test_cases_train_as_their_own_source_each_its_own_lesion(three):
    added = [cases.add(p, "melanoma", "histopathology") for p in three]
    records = cases.records(added)
    assert [r.origin for r in records] == ["clinic"] * 3
    assert len({r.lesion for r in records}) == 3
    assert cases.fingerprint(added) == cases.fingerprint(list(reversed(added)))
    assert cases.fingerprint(added[:2]) != cases.fingerprint(added)


ADD_MANY = """
import sys
import numpy as np
from skin_model import cases
worker = int(sys.argv[1])
for i in range(8):
    # 24 different pictures (flat frames one pixel apart would be near copies of each other, and refused)
    pixels = np.random.default_rng(100 * worker + i).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    cases.add(pixels, "nevus", "follow-up", note=f"worker {worker} image {i}")
"""


def test_two_processes_adding_at_once_lose_nothing(skin_home):
    env = {"SKIN_HOME": str(skin_home), "PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}
    workers = [subprocess.Popen([sys.executable, "-c", ADD_MANY, str(w)], env=env, cwd=REPO_ROOT) for w in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    found = cases.all_cases()
    assert len(found) == 24 and len({c.id for c in found}) == 24
    assert all(cases.image_path(c).is_file() for c in found)


def test_cli_add_list_remove_export(capsys, three, encode, tmp_path, live_tiny_model):
    image = tmp_path / "lesion.jpg"
    image.write_bytes(encode(three[0], "PNG"))

    assert (
        main(["cases", "add", str(image), "--diagnosis", "melanoma", "--confirmed-by", "histopathology", "--json"]) == 0
    )
    added = json.loads(capsys.readouterr().out)
    assert added["prediction"]["top_class"] and added["model_version"] == live_tiny_model.number
    assert added["pixel_hash"] == pixel_hash(decode(image))

    assert main(["cases", "add", str(image), "--diagnosis", "nevus", "--confirmed-by", "consensus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already confirmed case" in err[0]

    assert main(["cases", "list", "--json"]) == 0
    assert [c["id"] for c in json.loads(capsys.readouterr().out)] == [added["id"]]
    assert main(["cases", "export", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "Train" / "melanoma" / f"{added['id']}.png").is_file()
    capsys.readouterr()
    assert main(["cases", "remove", added["id"]]) == 0
    assert "no confirmed cases yet" in (main(["cases", "list"]) == 0 and capsys.readouterr().out)


# -- training with and without the cases ---------------------------------------------------------------------


def test_training_uses_the_cases_as_the_clinic_source_and_records_them(clean_dataset, lesion_images):
    from skin_model import train
    from skin_model.config import BalanceConfig, TrainConfig

    added = [cases.add(p, "melanoma", "histopathology") for p in lesion_images(3, seed=40, size=64)]
    quick = TrainConfig(epochs=1, image_size=32, batch_size=8, width=4, balance=BalanceConfig(strategy="none"))

    with_cases = train.run(clean_dataset.root, quick)
    without = train.run(
        clean_dataset.root,
        TrainConfig(**{**quick.to_dict(), "balance": BalanceConfig(strategy="none"), "cases": False}),
    )

    recorded = with_cases.record.data.cases
    assert recorded.count == 3 and recorded.fingerprint == cases.fingerprint(added)
    assert set(recorded.learned_from) <= {c.pixel_hash for c in added}
    assert with_cases.record.data.fingerprint != without.record.data.fingerprint
    assert without.record.data.cases == CasesRecord(count=0, fingerprint=None, learned_from=())
    assert written(without)["config"]["cases"] is False
    # the dataset's own test split is the same with and without cases: versions compare on one test set
    dataset_test = lambda v: (
        v.record.metrics.test.images - sum(1 for s in v.record.robustness.per_source if s == "clinic")
    )
    assert dataset_test(with_cases) >= dataset_test(without)
    assert all(cases.image_path(c).is_file() for c in added)  # training copied them, left the originals


def test_a_case_added_while_a_job_trains_is_not_in_that_job(clean_dataset, lesion_images, stop_job):
    import time

    from skin_model import jobs
    from skin_model.config import BalanceConfig, TrainConfig

    first = cases.add(lesion_images(1, seed=50, size=64)[0], "nevus", "follow-up")
    endless = TrainConfig(epochs=200, image_size=32, batch_size=4, width=4, balance=BalanceConfig(strategy="none"))
    job = jobs.start(clean_dataset.root, endless)
    try:
        deadline = time.time() + 90
        while not any(e["event"] == "step" for e in job.progress()):
            assert time.time() < deadline, jobs.refresh(job).status
            time.sleep(0.3)
        later = cases.add(255 - lesion_images(1, seed=51, size=64)[0], "melanoma", "histopathology")  # no near copy
        cases.remove(first.id)  # and one removed: the job keeps its own copy
        taken = cases.load_snapshot(job.path / "cases")
        assert [c.id for c in taken] == [first.id] and later.id not in {c.id for c in taken}
        assert (job.path / "cases" / first.file).is_file()
        assert jobs.refresh(job).state == "RUNNING"
    finally:
        assert stop_job(job).state == "KILLED"


# -- copies and pictures the gate refuses (issue 32, item 4) ---------------------------------------------


def test_a_copy_of_a_large_dataset_image_is_refused_though_the_case_is_reduced_to_1024_px(tmp_path, lesion_images):
    from PIL import Image

    from skin_model.audit import audit
    from skin_model.images import decode, pixel_hash

    root = tmp_path / "data"
    (root / "Train" / "nevus").mkdir(parents=True)
    big = np.asarray(Image.fromarray(lesion_images(1, seed=90, size=300)[0]).resize((2400, 1800)))
    path = root / "Train" / "nevus" / "big_nevus.png"
    Image.fromarray(big).save(path)
    known = cases.dataset_hashes(audit(root))

    pixels = decode(path)  # as the app and the CLI decode a case: reduced to 1024 px
    assert pixels.shape[1] == 1024
    with pytest.raises(cases.CaseError, match=r"already in the dataset as Train/nevus/big_nevus\.png"):
        cases.add(
            pixels, "nevus", "histopathology", dataset=known, full_size_hash=pixel_hash(decode(path, max_side=None))
        )


@pytest.mark.parametrize(
    "copy",
    [lambda p: p[:, ::-1], lambda p: np.rot90(p), lambda p: np.where(np.arange(p.size).reshape(p.shape) == 0, 0, p)],
    ids=["flipped", "turned", "one pixel"],
)
def test_a_near_copy_of_a_case_is_refused(copy, lesion_images):
    original = lesion_images(1, seed=91, size=96)[0]
    first = cases.add(original, "melanoma", "histopathology")

    with pytest.raises(cases.CaseError, match=f"already confirmed case {first.id}"):
        cases.add(np.ascontiguousarray(copy(original)).astype(np.uint8), "melanoma", "histopathology")
    assert len(cases.all_cases()) == 1


def test_a_near_copy_of_a_dataset_image_is_refused(tmp_path, lesion_images):
    from PIL import Image

    from skin_model.audit import audit

    root = tmp_path / "data"
    (root / "Train" / "nevus").mkdir(parents=True)
    original = lesion_images(1, seed=92, size=200)[0]
    Image.fromarray(original).save(root / "Train" / "nevus" / "a.png")

    with pytest.raises(cases.CaseError, match=r"near copy .* of Train/nevus/a\.png"):
        cases.add(original[::-1].copy(), "nevus", "histopathology", dataset=cases.dataset_hashes(audit(root)))


def test_a_picture_the_gate_refuses_is_not_a_case(tiny_model, servable, tmp_path, encode, capsys):
    from skin_model.cli import main
    from skin_model.registry import Registry

    refusing = servable(tiny_model)
    refusing["gate"] = dict(refusing["gate"], bias=-10.0)  # the live gate refuses what it is shown
    Registry().register(tiny_model, VersionRecord.from_dict(refusing), activate=True)
    noise = tmp_path / "noise.png"
    noise.write_bytes(encode(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), "PNG"))
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(encode(np.full((1, 1, 3), 120, np.uint8), "PNG"))

    for path in (noise, tiny):
        code = main(["cases", "add", str(path), "--diagnosis", "melanoma", "--confirmed-by", "histopathology"])
        assert code == 2 and "not-a-lesion gate refuses" in capsys.readouterr().err
    assert cases.all_cases() == []


# -- crashes (issue 32, item 8) ----------------------------------------------------------------------------


def test_export_onto_an_existing_file_is_one_line(tmp_path, capsys):
    from skin_model.cli import main

    target = tmp_path / "file.txt"
    target.write_text("keep")
    assert main(["cases", "export", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "unexpected" not in err and target.read_text() == "keep"


def test_an_unknown_diagnosis_in_the_records_is_one_line_naming_the_case(lesion_images, tmp_path, capsys):
    from skin_model.cli import main

    case = cases.add(lesion_images(1, seed=93, size=64)[0], "nevus", "histopathology")
    index = cases.folder() / "cases.json"
    index.write_text(index.read_text().replace('"nevus"', '"not-a-class"'))

    assert main(["cases", "export", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"case '{case.id}' has an unknown diagnosis 'not-a-class'" in err and "unexpected" not in err


# -- control characters in notes (issue 32, item 7) ----------------------------------------------------------

HOSTILE_NOTES = ["clear\x1b[2J\x1b[H", "nul\x00byte", "right\u202eto left", "bell\x07", "c1\x9bcsi"]


@pytest.mark.parametrize("note", HOSTILE_NOTES)
def test_a_note_with_control_characters_is_refused_naming_them_and_nothing_is_stored(three, skin_home, note):
    with pytest.raises(cases.CaseError, match=r"control characters \(U\+"):
        cases.add(three[0], "nevus", "follow-up", note=note)
    assert cases.all_cases() == []
    assert not list(skin_home.glob("cases/*.png"))


def test_cases_list_never_prints_a_raw_control_character_even_from_an_old_record(three, capsys):
    case = cases.add(three[0], "nevus", "follow-up", note="placeholder")
    index = cases.folder() / "cases.json"
    records = json.loads(index.read_text())
    records[0]["note"] = "".join(HOSTILE_NOTES)  # a record stored before notes were checked
    index.write_text(json.dumps(records))

    assert main(["cases", "list"]) == 0
    out = capsys.readouterr().out
    assert case.id in out and "clear" in out and "to left" in out
    assert not [c for c in out if c != "\n" and (ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c == "\u202e")]


# -- one bad case file (issue 32, item 9) ---------------------------------------------------------------------


def truncate(case: cases.Case) -> None:
    path = cases.image_path(case)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def test_export_checks_every_image_names_and_skips_bad_ones_and_writes_the_rest(three, tmp_path, capsys):
    good, broken, missing = (cases.add(p, "nevus", "follow-up") for p in three)
    truncate(broken)
    cases.image_path(missing).unlink()
    out = tmp_path / "export"

    done = cases.export(out)
    assert done.written == 1 and [s.split(":")[0] for s in done.skipped] == [broken.id, missing.id]
    assert "cannot be read" in done.skipped[0] and "missing" in done.skipped[1]
    assert [p.name for p in out.rglob("*.png")] == [good.file]
    assert [r["image"] for r in csv.DictReader(io.StringIO((out / "metadata.csv").read_text()))] == [good.id]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary folder left

    assert main(["cases", "export", str(tmp_path / "again")]) == 1  # the CLI says what it skipped, and exits 1
    captured = capsys.readouterr()
    assert "exported 1 case(s)" in captured.out and broken.id in captured.err and missing.id in captured.err


def test_an_export_that_fails_half_way_leaves_nothing_and_can_be_run_again(three, tmp_path, monkeypatch):
    from pathlib import Path

    for pixels in three:
        cases.add(pixels, "nevus", "follow-up")
    out = tmp_path / "export"
    real = Path.write_text

    def disk_full(self, *args, **kwargs):
        if self.name == "metadata.csv":
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(cases.CaseError, match="No space left"):
        cases.export(out)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a temporary one

    monkeypatch.setattr(Path, "write_text", real)
    assert cases.export(out).written == 3


# -- a removed case does not survive in a job's snapshot (issue 32, item 6) -----------------------------------


def ended_job(skin_home, name: str = "20260101-000000-001"):
    """A job folder as the app leaves it: the cases' snapshot, and a status that says the job has ended."""
    job = skin_home / "jobs" / name
    cases.snapshot(job / "cases")
    (job / "status.json").write_text(json.dumps({"id": name, "state": "FINISHED", "created": 1.0}))
    return job


def test_an_ended_jobs_snapshot_keeps_the_hashes_of_its_cases_not_their_pixels(three, skin_home):
    from skin_model import jobs

    added = cases.add(three[0], "nevus", "follow-up")
    job = ended_job(skin_home)
    assert (job / "cases" / added.file).is_file()  # while the job runs, it trains on this copy

    jobs.all_jobs()  # any look at the jobs (the Retrain page, the next job) after the job ended
    assert not list(job.rglob("*.png"))
    assert [c.pixel_hash for c in cases.load_snapshot(job / "cases")] == [added.pixel_hash]


def test_cases_remove_leaves_no_copy_in_a_job_and_says_which_versions_learned_from_it(
    three, skin_home, tiny_model, servable, capsys
):
    from skin_model.registry import Registry

    learned, unseen = cases.add(three[0], "melanoma", "histopathology"), cases.add(three[1], "nevus", "consensus")
    job = ended_job(skin_home)
    record = servable(tiny_model) | {"data": {"cases": {"learned_from": [learned.pixel_hash]}}}
    version = Registry().register(tiny_model, VersionRecord.from_dict(record))

    assert main(["cases", "remove", learned.id]) == 0
    out = capsys.readouterr().out
    assert f"version {version.number} learned from it" in out
    assert not (job / "cases" / learned.file).exists() and not list(skin_home.rglob(learned.file))

    assert main(["cases", "remove", unseen.id]) == 0
    assert "no version learned from it" in capsys.readouterr().out


def test_a_stored_case_that_cannot_be_read_is_left_out_of_the_near_copy_check(three, monkeypatch):
    broken, good = cases.add(three[0], "nevus", "follow-up"), cases.add(three[1], "nevus", "follow-up")
    truncate(broken)
    compared = []
    check = cases.near_copies
    monkeypatch.setattr(cases, "near_copies", lambda new, stored: compared.append(len(stored)) or check(new, stored))

    added = cases.add(three[2], "melanoma", "histopathology")

    assert compared == [1]  # the readable case alone, not a stand-in picture for the broken one
    assert added.id in {c.id for c in cases.all_cases()}
    with pytest.raises(cases.CaseError, match=good.id):
        cases.add(three[1], "nevus", "follow-up")  # the readable one still catches its copy
