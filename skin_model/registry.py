"""Model versions on disk and the "live" alias that points at one of them.

``SKIN_HOME/models/<n>/`` holds ``model.keras`` and ``metadata.json`` and is
never modified after it is written: it is built in a temporary folder and
renamed into place. ``SKIN_HOME/models/live.json`` names the live version
and is replaced atomically, so switching and rolling back are one rename.
Models are loaded only from here, only when their sha256 matches, and with
Keras safe mode on. The record itself is checked too: ``live.json`` keeps the
sha256 of every version's ``metadata.json`` (it decides the melanoma alert),
written at registration, so an edited record is refused, not served. A
registry from before these hashes has them recorded once, as found.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from skin_model.config import DEFAULT_MODEL_DIR, skin_home
from skin_model.errors import RegistryError
from skin_model.record import VersionRecord, parse

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
LIVE_FILE = "live.json"
LOCK_FILE = ".lock"
RECORDS_KEY = "metadata_sha256"  # in live.json: version number -> sha256 of its metadata.json


@dataclass(frozen=True)
class Version:
    """One registered model; ``record`` is what was written at registration."""

    number: int
    path: Path
    record: VersionRecord
    metadata_sha256: str = ""  # of the very bytes ``record`` was parsed from

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def created(self) -> str:
        return self.record.created

    def artefact(self, name: str) -> Path | None:
        """A file registered beside the model (e.g. the similar-cases index), or None when it has none."""
        return self.path / name if name in self.record.files else None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def file_lock(path: Path):
    """Hold an exclusive advisory lock on ``path`` (created if missing) across threads and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2).encode())


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file atomically: a temporary file in the same folder, synced, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Registry:
    """Versions under ``root``; seeded with the committed default model when empty."""

    def __init__(self, root: Path | None = None, seed_dir: Path | None = DEFAULT_MODEL_DIR):
        self.root = (root or skin_home() / "models").resolve()
        self.seed_dir = seed_dir

    # -- reading ---------------------------------------------------------
    def versions(self) -> list[Version]:
        """Complete, readable versions, oldest first (half-written temporary folders are ignored; an unreadable
        record is left out here and named by :meth:`problems`)."""
        found = []
        for child in self._complete():
            try:
                found.append(_read(child))
            except RegistryError:
                continue
        return sorted(found, key=lambda v: v.number)

    def problems(self) -> list[str]:
        """One line per version whose record cannot be read (what ``versions`` leaves out) or was modified."""
        lines = []
        for child in self._complete():
            try:
                self._check_record(_read(child))
            except RegistryError as error:
                lines.append(str(error))
        return sorted(lines)

    def _complete(self) -> list[Path]:
        self._seed()
        children = self.root.iterdir() if self.root.exists() else []
        return [c for c in children if c.name.isdigit() and (c / METADATA_FILE).is_file()]

    def get(self, number: int) -> Version:
        self._seed()
        folder = self.root / str(int(number))
        if not (folder / METADATA_FILE).is_file():
            raise RegistryError(f"model version {number} does not exist; see `python -m skin_model models`")
        return _read(folder)

    def live_number(self) -> int | None:
        self._seed()
        try:
            return int(json.loads((self.root / LIVE_FILE).read_text())["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def live(self) -> Version:
        number = self.live_number()
        if number is None:
            raise RegistryError(f"no live model in {self.root}; train one or run `make train-default`")
        return self.get(number)

    def verify(self, version: Version) -> None:
        """Refuse a record, a model file (or a file registered with it) that is missing or changed since
        registration."""
        self._check_record(version)
        if not version.model_path.is_file():
            raise RegistryError(f"model version {version.number}: {MODEL_FILE} is missing")
        if sha256(version.model_path) != version.record.sha256:
            raise RegistryError(f"model version {version.number}: checksum mismatch, the model file was modified")
        for name, digest in version.record.files.items():
            path = version.path / name
            if not path.is_file() or sha256(path) != digest:
                raise RegistryError(f"model version {version.number}: {name} is missing or was modified")

    def _check_record(self, version: Version) -> None:
        """The version's metadata.json is the one registered: its sha256 matches the one kept in live.json."""
        recorded = self._records().get(str(version.number))
        digest = version.metadata_sha256 or _file_sha256(version.path / METADATA_FILE)
        if recorded is None:
            raise RegistryError(
                f"model version {version.number}: no checksum of its {METADATA_FILE} is recorded in {LIVE_FILE}; "
                "it was not registered here (register it again)"
            )
        if digest != recorded:
            raise RegistryError(
                f"model version {version.number}: {METADATA_FILE} does not match the checksum recorded when it was "
                "registered; the record was modified (restore it or register the version again)"
            )

    def load(self, version: Version):
        """The Keras model of a verified version, loaded in safe mode."""
        self.verify(version)
        from skin_model.runtime import tensorflow

        tensorflow()
        import keras

        import skin_model.network  # noqa: F401  (registers the custom layers a saved model may use)

        try:
            return keras.models.load_model(version.model_path, compile=False, safe_mode=True)
        except Exception as error:
            raise RegistryError(f"model version {version.number} could not be loaded: {error}") from None

    # -- writing ---------------------------------------------------------
    def register(
        self, model, record: VersionRecord, activate: bool = False, files: dict[str, bytes] | None = None
    ) -> Version:
        """Write a new immutable version (temporary folder, then rename), with ``files`` checksummed beside it."""
        self._seed()  # the committed default stays version 1 even if a job registers first
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".staging-"))
        try:
            model.save(staging / MODEL_FILE)
            for name, data in (files or {}).items():
                (staging / name).write_bytes(data)
            digests = {name: sha256(staging / name) for name in files or {}}
            return self._commit(staging, record, digests, activate)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _commit(self, staging: Path, record: VersionRecord, files: dict[str, str], activate: bool) -> Version:
        model_sha = sha256(staging / MODEL_FILE)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._locked():  # one registration at a time: its number and its recorded checksum go together
            while True:  # numbers only go up; a rename onto an existing folder fails
                number = max([*self._listed(), 0]) + 1
                record = record.registered(number, model_sha, now, files)
                write_json(staging / METADATA_FILE, record.to_dict())
                digest = sha256(staging / METADATA_FILE)
                self._record(number, digest)  # before the rename: a reader never sees the version unrecorded
                try:
                    os.rename(staging, self.root / str(number))
                    break
                except OSError:
                    if not (self.root / str(number)).exists():
                        raise
        version = _read(self.root / str(number))
        if activate:
            self.activate(number)
        return version

    def _listed(self) -> list[int]:
        return [int(c.name) for c in self.root.iterdir() if c.name.isdigit()]

    def activate(self, number: int) -> Version:
        """Make a verified version live by atomically replacing the pointer (history kept for fallback)."""
        version = self.get(number)
        self.verify(version)
        with self._locked():
            self._point_live_at(number)
        return version

    def _point_live_at(self, number: int, recorded: str | None = None) -> None:
        """Rewrite the pointer; callers hold the lock, so two switches at once cannot drop one from the history.

        ``recorded``: the version's metadata checksum, when it is recorded in the same write (seeding).
        """
        history = [n for n in self.live_history() if n != number] + [number]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pointer = self._pointer() | {"version": number, "since": now, "history": history[-20:]}
        if recorded is not None:
            pointer[RECORDS_KEY] = {**self._records(), str(number): recorded}
        write_json(self.root / LIVE_FILE, pointer)

    def _pointer(self) -> dict:
        try:
            data = json.loads((self.root / LIVE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _records(self) -> dict:
        records = self._pointer().get(RECORDS_KEY)
        return records if isinstance(records, dict) else {}

    def _record(self, number: int, digest: str) -> None:
        """Keep a version's metadata checksum in ``live.json``; callers hold the lock."""
        pointer = self._pointer()
        write_json(self.root / LIVE_FILE, pointer | {RECORDS_KEY: {**self._records(), str(number): digest}})

    def _record_existing(self) -> None:
        """A registry from before the metadata checksums: record each readable version's as it is now, once."""
        if not (self.root / LIVE_FILE).is_file() or RECORDS_KEY in self._pointer():
            return
        with self._locked():
            if RECORDS_KEY in self._pointer():
                return
            found = {}
            for child in self.root.iterdir():
                if child.name.isdigit() and (child / METADATA_FILE).is_file():
                    found[child.name] = _file_sha256(child / METADATA_FILE)
            write_json(self.root / LIVE_FILE, self._pointer() | {RECORDS_KEY: found})

    def _locked(self):
        """Serialise writers of ``live.json`` across sessions and processes."""
        return file_lock(self.root / LOCK_FILE)

    def live_history(self) -> list[int]:
        """Versions that have been live, oldest first, the current one last."""
        try:
            data = json.loads((self.root / LIVE_FILE).read_text())
            return [int(n) for n in data.get("history", [data["version"]])]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def last_good_live(self) -> Version | None:
        """The most recent previously-live version that still passes its checksum (never an unapproved one)."""
        current = self.live_number()
        for number in reversed(self.live_history()):
            if number == current:
                continue
            try:
                version = self.get(number)
                self.verify(version)
                return version
            except RegistryError:
                continue
        return None

    def _seed(self) -> None:
        """On a fresh machine, register the committed default model as version 1.

        Under the registry lock: several first visitors of a fresh server seed
        at once, and none may see version 1 before it is live.
        """
        self._record_existing()
        if self.seed_dir is None or (self.root / LIVE_FILE).exists() or not (self.seed_dir / MODEL_FILE).is_file():
            return
        with self._locked():
            if (self.root / LIVE_FILE).exists() or any(c.name.isdigit() for c in self.root.iterdir()):
                return  # another session seeded while this one waited, or versions exist already
            try:
                metadata = json.loads((self.seed_dir / METADATA_FILE).read_text())
            except (OSError, ValueError) as error:
                raise RegistryError(f"{self.seed_dir}: the default model's metadata cannot be read ({error})") from None
            record = parse(metadata, f"{self.seed_dir}: the default model")
            if sha256(self.seed_dir / MODEL_FILE) != record.sha256:
                raise RegistryError(f"{self.seed_dir}: the committed default model does not match its checksum")
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".staging-"))
            try:
                shutil.copy2(self.seed_dir / MODEL_FILE, staging / MODEL_FILE)
                for name, digest in record.files.items():
                    shutil.copy2(self.seed_dir / name, staging / name)
                    if sha256(staging / name) != digest:
                        raise RegistryError(f"{self.seed_dir}: the committed {name} does not match its checksum")
                seeded = record.registered(1, sha256(staging / MODEL_FILE), record.created, record.files)
                write_json(staging / METADATA_FILE, seeded.to_dict())
                digest = sha256(staging / METADATA_FILE)
                os.rename(staging, self.root / "1")
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            self._point_live_at(1, recorded=digest)  # one write: no visitor sees a pointer without version 1


def _file_sha256(path: Path) -> str:
    try:
        return sha256(path)
    except OSError:
        return ""


def _read(folder: Path) -> Version:
    """One version's record; one line naming the file when it cannot be read, is not a JSON object or not a valid
    record."""
    path = folder / METADATA_FILE
    try:
        data = path.read_bytes()
        metadata = json.loads(data)
    except (OSError, ValueError) as error:
        raise RegistryError(f"model version {folder.name}: {path} cannot be read ({error})") from None
    if not isinstance(metadata, dict):
        raise RegistryError(
            f"model version {folder.name}: {path} must hold a JSON object; received {type(metadata).__name__} "
            "(restore it or register the version again)"
        )
    record = parse(metadata, f"model version {folder.name}")
    return Version(int(folder.name), folder, record, hashlib.sha256(data).hexdigest())
