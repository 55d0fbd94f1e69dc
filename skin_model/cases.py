"""Confirmed cases: lesions this clinic photographed and later confirmed, kept to retrain on and to audit with.

Only an explicit add stores an image: a new PNG of the pixels (no EXIF, no
file name) under ``SKIN_HOME/cases/``, with one record in ``cases.json``:
id, pixel hash, diagnosis, how it was confirmed (HAM10000's ``dx_type``
words), an optional note, the time, and the live version's prediction at
that moment. The same pixels never enter twice, as a case or when the
dataset already holds them. Every change happens under one lock and is
written atomically, so two sessions adding at once lose nothing.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skin_model import CLASSES
from skin_model.config import skin_home
from skin_model.dataset import Record
from skin_model.errors import SkinModelError
from skin_model.images import decode, pixel_hash, to_png
from skin_model.isic_csv import OFFICIAL
from skin_model.nearcopy import Thumbs, near_copies
from skin_model.registry import file_lock, write_atomic, write_json
from skin_model.text import controls_in

CONFIRMATIONS = ("histopathology", "follow-up", "consensus")
SOURCE = "clinic"  # the acquisition source cases train and are scored under
DX_TYPE = {"histopathology": "histo", "follow-up": "follow_up", "consensus": "consensus"}  # HAM10000's words
NOTE_LIMIT = 300


class CaseError(SkinModelError):
    """A case cannot be added, found or exported."""


@dataclass(frozen=True)
class Known:
    """What a new case may not repeat: the dataset's images by full-size pixel hash, and their near-copy thumbnails."""

    exact: dict[str, str]  # images.pixel_hash of the full-size pixels -> file as a person reads it
    thumbs: Thumbs  # nearcopy thumbnails of the same files, in the order of ``files``
    files: list[str]


@dataclass(frozen=True)
class Case:
    id: str
    pixel_hash: str
    diagnosis: str
    confirmed_by: str
    note: str
    time: str
    model_version: int | None = None
    prediction: dict | None = None  # the live version's top class, P(melanoma) and alert when it was added

    @property
    def file(self) -> str:
        return f"{self.id}.png"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Exported:
    """What ``export`` wrote: how many cases, and each case left out with why (``"<id>: ..."``)."""

    written: int
    skipped: tuple[str, ...]


def folder() -> Path:
    return skin_home() / "cases"


def _index() -> Path:
    return folder() / "cases.json"


def _lock():
    return file_lock(folder() / ".lock")


def all_cases() -> list[Case]:
    """Every case, oldest first (an unreadable record file is one clear error, never an empty list)."""
    path = _index()
    if not path.exists():
        return []
    try:
        found = [Case(**row) for row in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError) as error:
        raise CaseError(f"{path} cannot be read ({error}); restore it from a backup") from None
    for case in found:  # every reader may then trust the words (export maps them to ISIC codes)
        if case.diagnosis not in CLASSES or case.confirmed_by not in CONFIRMATIONS:
            raise CaseError(
                f"{path}: case {case.id!r} has an unknown diagnosis {case.diagnosis!r} or confirmation "
                f"{case.confirmed_by!r}; correct or remove that record"
            )
    return found


def add(
    pixels: np.ndarray,
    diagnosis: str,
    confirmed_by: str,
    note: str = "",
    prediction: dict | None = None,
    model_version: int | None = None,
    dataset: Known | None = None,
    full_size_hash: str | None = None,
) -> Case:
    """Store one confirmed case; refused (CaseError, nothing written) when it is invalid or already known.

    ``dataset``: the training data's hashes (see ``dataset_hashes``). ``full_size_hash``: ``pixel_hash`` of the
    file decoded at full size, what the audit hashes (``pixels`` may be reduced to 1024 px). A near copy
    (resized, recompressed, flipped, a few pixels changed) of a case or a dataset image is refused too: each
    case is its own lesion, so a copy would land in two splits. So is a picture the gate refuses.
    """
    if diagnosis not in CLASSES:
        raise CaseError(f"diagnosis must be one of: {', '.join(CLASSES)}; received {diagnosis!r}")
    if confirmed_by not in CONFIRMATIONS:
        raise CaseError(f"confirmation must be one of: {', '.join(CONFIRMATIONS)}; received {confirmed_by!r}")
    note = " ".join((note or "").split())  # newlines and tabs become one space
    if len(note) > NOTE_LIMIT:
        raise CaseError(f"the note is {len(note)} characters; keep it under {NOTE_LIMIT}")
    if hidden := controls_in(note):  # ESC[2J would clear a terminal that lists the cases; U+202E reverses text
        raise CaseError(f"the note holds control characters ({', '.join(hidden)}); type it again without them")
    if prediction is not None and prediction.get("lesion_like") is False:
        raise CaseError(
            "the not-a-lesion gate refuses this picture (not a dermoscopic lesion image); it cannot be a case"
        )
    digest, looks = pixel_hash(pixels), Thumbs.of([pixels])
    if dataset:
        for known in {digest, full_size_hash} & set(dataset.exact):
            raise CaseError(f"this image is already in the dataset as {dataset.exact[known]}")
        for _, j, _ in near_copies(looks, dataset.thumbs)[:1]:
            raise CaseError(
                f"this image is a near copy (resized, re-saved, re-coloured, flipped?) of {dataset.files[j]} in the "
                "dataset"
            )
    with _lock():
        cases = all_cases()
        same = next((c for c in cases if c.pixel_hash == digest), None)
        if same is None and cases:
            stored = [(c, p) for c in cases if image_path(c).is_file() and (p := _stored_pixels(c)) is not None]
            near = near_copies(looks, Thumbs.of(p for _, p in stored))
            same = stored[near[0][1]][0] if near else None
        if same is not None:
            raise CaseError(
                f"this image is already confirmed case {same.id} ({same.diagnosis}, {same.time[:10]}), "
                "or a near copy of it"
            )
        case = Case(
            id=time.strftime("case-%Y%m%d-%H%M%S", time.gmtime()) + f"-{secrets.token_hex(3)}",
            pixel_hash=digest,
            diagnosis=diagnosis,
            confirmed_by=confirmed_by,
            note=note,
            time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            model_version=model_version,
            prediction=prediction,
        )
        try:
            write_atomic(folder() / case.file, to_png(pixels))
            write_json(_index(), [c.to_dict() for c in [*cases, case]])
        except OSError as error:
            (folder() / case.file).unlink(missing_ok=True)
            raise CaseError(f"could not store the case in {folder()} ({error.strerror or error})") from None
    return case


def remove(case_id: str) -> Case:
    with _lock():
        cases = all_cases()
        found = next((c for c in cases if c.id == case_id), None)
        if found is None:
            raise CaseError(f"no confirmed case {case_id!r}; see `python -m skin_model cases list`")
        write_json(_index(), [c.to_dict() for c in cases if c.id != case_id])
        (folder() / found.file).unlink(missing_ok=True)
    return found


def removal_note(case: Case) -> str:
    """What removing ``case`` cannot undo: the versions that learned from it (by pixels), and any running job
    that still trains on its copy (dropped when that job ends). Ended jobs' copies are deleted on the way."""
    from skin_model import jobs
    from skin_model.registry import Registry

    learned = [v.number for v in Registry().versions() if case.pixel_hash in v.record.data.cases.learned_from]
    if learned:
        which = ", ".join(map(str, learned))
        note = f"version {which} learned from it (retrain without it to forget it)"
        note = note.replace("version ", "versions ", 1) if len(learned) > 1 else note
    else:
        note = "no version learned from it"
    running = jobs.holding(case.file)
    if running:
        note += f"; running job {', '.join(running)} trains on a copy, deleted when it ends"
    return note


def image_path(case: Case) -> Path:
    return folder() / case.file


def thumbnail_uri(case: Case, side: int = 64) -> str | None:
    """A small PNG of the case as a data URI, for tables (None when its image is gone)."""
    from PIL import Image

    try:
        with Image.open(image_path(case)) as image:
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="PNG")
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def records(cases: Iterable[Case], where: Path | None = None) -> list[Record]:
    """Cases as training records: their own source, each its own lesion (so the grouped split keeps it whole).

    ``where``: the folder holding their images (a job's snapshot); by default the cases folder.
    """
    base = where or folder()
    return [
        Record(path=base / c.file, label=c.diagnosis, source="Train", lesion=c.id, origin=SOURCE)
        for c in cases
        if (base / c.file).is_file()
    ]


def snapshot(dest: Path) -> list[Case]:
    """Copy today's cases into ``dest`` for one training run: cases added or removed later change nothing in it."""
    dest.mkdir(parents=True, exist_ok=True)
    with _lock():
        taken = []
        for c in all_cases():
            try:
                (dest / c.file).write_bytes(image_path(c).read_bytes())
            except FileNotFoundError:
                continue
            taken.append(c)
    write_json(dest / "cases.json", [c.to_dict() for c in taken])
    return taken


def load_snapshot(where: Path) -> list[Case]:
    """The cases a job copied when it started (see ``snapshot``)."""
    try:
        return [Case(**row) for row in json.loads((where / "cases.json").read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError) as error:
        raise CaseError(f"the job's snapshot of the cases cannot be read ({error})") from None


def summary(cases: list[Case], splits_records: dict[str, list[Record]]) -> dict:
    """What a version records about its cases: how many, which (by pixels), and which it learned from."""
    learned = {r.lesion for name in ("train", "val") for r in splits_records.get(name, []) if r.origin == SOURCE}
    return {
        "count": len(cases),
        "fingerprint": fingerprint(cases) if cases else None,
        "learned_from": sorted(c.pixel_hash for c in cases if c.id in learned),
    }


def fingerprint(cases: Iterable[Case]) -> str:
    """Which cases, by pixels: two versions trained on the same cases share it."""
    return hashlib.sha256("\n".join(sorted(c.pixel_hash for c in cases)).encode()).hexdigest()[:16]


def dataset_hashes(report) -> Known:
    """The audit's hashes and near-copy thumbnails of the data (files as a person reads them)."""
    return Known(
        exact={digest: report.shown(path) for path, digest in report.hashes.items()},
        thumbs=report.thumbs if report.thumbs is not None else Thumbs.of([]),
        files=[report.shown(path) for path in report.thumbed],
    )


def checked_image(case: Case) -> tuple[bytes, np.ndarray]:
    """The case's stored PNG and its pixels, once they decode to the pixels its record names.

    A missing, truncated or replaced file is a CaseError naming the case, so one bad file is left out by name
    (export, scoring) instead of stopping everything or passing on corrupt pixels.
    """
    path = image_path(case)
    try:
        data = path.read_bytes()
        pixels = decode(data, name=case.file)
    except FileNotFoundError:
        raise CaseError(f"{case.id}: its image {path} is missing; remove the case (cases remove {case.id})") from None
    except (OSError, SkinModelError) as error:
        why = error.strerror if isinstance(error, OSError) else str(error)
        raise CaseError(f"{case.id}: its image {path} cannot be read ({why})") from None
    if pixel_hash(pixels) != case.pixel_hash:
        raise CaseError(f"{case.id}: its image {path} does not hold the pixels recorded for the case")
    return data, pixels


def _stored_pixels(case: Case) -> np.ndarray | None:
    """A stored case's pixels; None for an unreadable file, which has nothing to compare with."""
    try:
        return decode(image_path(case))
    except SkinModelError:
        return None


def export(dest: Path) -> Exported:
    """Write every case in the ISIC layout (``Train/<class>/<id>.png``) with a ``metadata.csv`` like the shared one.

    Refuses a folder that already has files, so nothing of another export or dataset is overwritten. Each image
    is checked first (``checked_image``): a bad one is named in ``skipped`` and left out. Everything is written
    into a temporary folder beside ``dest`` and renamed at the end, so a failed export leaves nothing behind.
    """
    cases = all_cases()
    if dest.exists() and not dest.is_dir():
        raise CaseError(f"{dest} is a file, not a folder; export into a new folder")
    if dest.exists() and any(dest.iterdir()):
        raise CaseError(f"{dest} is not empty; export into a new folder")
    code = {names[0]: key for key, names in OFFICIAL.items()} | {"seborrheic keratosis": "BKL"}
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["image", "isic2019_diagnosis", "lesion_id", "source", "dx_type", "age", "sex", "site"])
    written, skipped, work = 0, [], None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        for c in cases:
            try:
                data, _ = checked_image(c)
            except CaseError as error:
                skipped.append(str(error))
                continue
            target = work / "Train" / c.diagnosis / c.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            writer.writerow([c.id, code[c.diagnosis], c.id, SOURCE, DX_TYPE[c.confirmed_by], "", "", ""])
            written += 1
        (work / "metadata.csv").write_text(rows.getvalue(), encoding="utf-8")
        os.replace(work, dest)  # onto a missing or empty folder: all of it appears at once
    except OSError as error:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise CaseError(f"could not export to {dest} ({error.strerror or error})") from None
    return Exported(written, tuple(skipped))


def score(predictor, cases: list[Case]) -> dict:
    """How a version does on the confirmed cases it never learned from: the number a clinic watches.

    Agreement of its top class with the confirmed diagnosis, and melanomas caught / missed by its alert at its
    own threshold. Cases it trained or validated on are left out (by pixels), so a version is not praised for
    remembering them. A case the gate refuses counts as a disagreement (and a missed melanoma); a case whose
    file is missing or unreadable is left out and named in ``unreadable``.
    """
    learned = set(predictor.record.data.cases.learned_from)
    unseen = [c for c in cases if c.pixel_hash not in learned]
    rows, unreadable = [], []
    for c in unseen:
        try:
            _, pixels = checked_image(c)
        except CaseError as error:  # one bad file is named, never the end of the version's row
            unreadable.append(str(error))
            continue
        rows.append((c, predictor.predict(pixels, name=c.id)))
    melanomas = [(c, r) for c, r in rows if c.diagnosis == "melanoma"]
    caught = sum(bool(r.melanoma_alert) for _, r in melanomas)
    return {
        "version": predictor.version.number,
        "cases": len(rows),
        "left_out_as_trained_on": len(cases) - len(unseen),
        "agreement": round(sum(r.top_class == c.diagnosis for c, r in rows) / len(rows), 4) if rows else None,
        "melanomas": len(melanomas),
        "melanomas_caught": caught,
        "melanomas_missed": len(melanomas) - caught,
        "refused": sum(not r.lesion_like for _, r in rows),
        "unreadable": unreadable,
    }
