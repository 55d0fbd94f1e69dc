"""Versions are immutable folders with checksums; "live" is a pointer that moves atomically."""

from __future__ import annotations

import json
import shutil
import threading
import time

import numpy as np
import pytest

from skin_model.errors import RegistryError
from skin_model.record import VersionRecord
from skin_model.registry import LIVE_FILE, LOCK_FILE, Registry, sha256

METADATA = {"temperature": 1.5, "alert_threshold": 0.3}


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "models", seed_dir=None)


def folder_state(path) -> dict[str, tuple[int, str]]:
    return {p.name: (p.stat().st_mtime_ns, sha256(p)) for p in path.iterdir()}


def test_register_writes_version_1_with_model_and_checksummed_metadata(registry, tiny_model):
    version = registry.register(tiny_model, VersionRecord.from_dict(METADATA))

    assert version.number == 1
    assert version.path == registry.root / "1"
    assert sorted(p.name for p in version.path.iterdir()) == ["metadata.json", "model.keras"]
    stored = json.loads((version.path / "metadata.json").read_text())
    assert stored["sha256"] == sha256(version.model_path)
    assert stored["version"] == 1
    assert stored["created"].endswith("Z")
    assert stored["temperature"] == 1.5 and stored["alert_threshold"] == 0.3


def test_version_numbers_only_go_up(registry, tiny_model):
    numbers = [registry.register(tiny_model, VersionRecord.from_dict(METADATA)).number for _ in range(3)]

    assert numbers == [1, 2, 3]
    assert [v.number for v in registry.versions()] == [1, 2, 3]
    assert [registry.get(n).record.number for n in numbers] == [1, 2, 3]


def test_registering_a_new_version_leaves_earlier_ones_untouched(registry, tiny_model):
    first = registry.register(tiny_model, VersionRecord.from_dict(METADATA))
    before = folder_state(first.path)

    registry.register(tiny_model, VersionRecord.from_dict({"temperature": 9.0}), activate=True)

    assert folder_state(first.path) == before
    assert registry.get(1).record.policy.temperature == 1.5


def test_nothing_is_live_until_a_version_is_activated(registry, tiny_model):
    registry.register(tiny_model, VersionRecord.from_dict(METADATA))

    assert registry.live_number() is None
    with pytest.raises(RegistryError, match="no live model"):
        registry.live()


def test_activate_replaces_the_live_pointer_and_rolls_back(registry, tiny_model):
    registry.register(tiny_model, VersionRecord.from_dict(METADATA), activate=True)
    registry.register(tiny_model, VersionRecord.from_dict(METADATA))
    pointer = registry.root / LIVE_FILE
    first_inode = pointer.stat().st_ino

    registry.activate(2)
    assert registry.live().number == 2
    assert pointer.stat().st_ino != first_inode  # a new file renamed over the old, never rewritten in place

    registry.activate(1)
    assert registry.live_number() == 1
    assert sorted(p.name for p in registry.root.iterdir()) == [LOCK_FILE, "1", "2", LIVE_FILE]  # no temp files


def test_activating_a_missing_version_is_refused_and_live_stays(registry, tiny_model):
    registry.register(tiny_model, VersionRecord.from_dict(METADATA), activate=True)

    with pytest.raises(RegistryError, match="version 99 does not exist"):
        registry.activate(99)

    assert registry.live_number() == 1


def test_load_returns_a_model_that_predicts_like_the_registered_one(registry, tiny_model):
    version = registry.register(tiny_model, VersionRecord.from_dict(METADATA))
    pixels = np.random.default_rng(0).uniform(0, 255, size=(2, 40, 40, 3)).astype(np.float32)

    loaded = registry.load(version)

    np.testing.assert_allclose(loaded(pixels, training=False), tiny_model(pixels, training=False), atol=1e-5)


def test_a_modified_model_file_is_refused_by_verify_load_and_activate(registry, tiny_model):
    version = registry.register(tiny_model, VersionRecord.from_dict(METADATA))
    with version.model_path.open("ab") as handle:
        handle.write(b"tampered")

    for refuse in (registry.verify, registry.load):
        with pytest.raises(RegistryError, match="checksum"):
            refuse(version)
    with pytest.raises(RegistryError, match="checksum"):
        registry.activate(1)
    assert registry.live_number() is None


def test_a_missing_model_file_is_refused(registry, tiny_model):
    version = registry.register(tiny_model, VersionRecord.from_dict(METADATA))
    version.model_path.unlink()

    with pytest.raises(RegistryError, match="missing"):
        registry.verify(version)


def test_half_written_folders_are_not_versions(registry, tiny_model):
    registry.register(tiny_model, VersionRecord.from_dict(METADATA))
    staging = registry.root / ".staging-x"
    shutil.copytree(registry.root / "1", staging)
    (registry.root / "7").mkdir()  # a number without metadata: interrupted copy

    assert [v.number for v in registry.versions()] == [1]
    assert registry.register(tiny_model, VersionRecord.from_dict(METADATA)).number == 8  # never reuses a number on disk


@pytest.fixture
def seed_dir(tmp_path, tiny_model):
    """A committed default model: model.keras and metadata.json with its checksum."""
    folder = tmp_path / "default"
    folder.mkdir()
    tiny_model.save(folder / "model.keras")
    metadata = {"sha256": sha256(folder / "model.keras"), "temperature": 1.2, "created": "2024-01-01T00:00:00Z"}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def test_an_empty_registry_is_seeded_with_the_default_model_as_live_version_1(tmp_path, seed_dir):
    registry = Registry(tmp_path / "models", seed_dir=seed_dir)

    live = registry.live()

    assert live.number == 1
    assert live.record.policy.temperature == 1.2 and live.created == "2024-01-01T00:00:00Z"
    registry.verify(live)
    assert sha256(live.model_path) == sha256(seed_dir / "model.keras")


def test_seeding_happens_once_and_never_over_existing_versions(tmp_path, seed_dir, tiny_model):
    root = tmp_path / "models"
    Registry(root, seed_dir=None).register(tiny_model, VersionRecord.from_dict(METADATA))

    registry = Registry(root, seed_dir=seed_dir)

    assert [v.number for v in registry.versions()] == [1]
    assert registry.get(1).record.policy.temperature == 1.5
    assert registry.live_number() is None


def test_a_default_model_that_does_not_match_its_checksum_is_refused(tmp_path, seed_dir):
    with (seed_dir / "model.keras").open("ab") as handle:
        handle.write(b"tampered")
    registry = Registry(tmp_path / "models", seed_dir=seed_dir)

    with pytest.raises(RegistryError, match="checksum"):
        registry.versions()

    assert [p.name for p in registry.root.iterdir()] == [LOCK_FILE]  # nothing copied, nothing left


def test_the_default_root_is_under_skin_home(skin_home):
    assert Registry(seed_dir=None).root == skin_home / "models"


@pytest.fixture
def slow_pointer(monkeypatch) -> None:
    """Writing live.json takes 0.3 s: widens the moment another session could slip in."""
    from skin_model import registry as registry_module

    write_json = registry_module.write_json

    def slow(path, data):
        if path.name == LIVE_FILE:
            time.sleep(0.3)
        write_json(path, data)

    monkeypatch.setattr(registry_module, "write_json", slow)


def run_staggered(*calls) -> None:
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()


def test_sessions_seeding_at_once_all_see_a_live_version_1(tmp_path, seed_dir, slow_pointer):
    """Four first visitors of a fresh server: none may find version 1 before it is live."""
    root = tmp_path / "models"
    seen: list[object] = []

    def visit() -> None:
        try:
            seen.append(Registry(root, seed_dir=seed_dir).live().number)
        except RegistryError as error:
            seen.append(error)

    run_staggered(visit, visit, visit, visit)

    assert seen == [1, 1, 1, 1]
    assert [v.number for v in Registry(root, seed_dir=seed_dir).versions()] == [1]


def test_two_switches_at_once_both_stay_in_the_live_history(registry, tiny_model, slow_pointer):
    """The history is read, extended and rewritten; two admins switching at once must not drop one."""
    for _ in range(3):
        registry.register(tiny_model, VersionRecord.from_dict(METADATA))
    registry.activate(1)

    run_staggered(lambda: registry.activate(2), lambda: registry.activate(3))

    assert registry.live_history() == [1, 2, 3]


# -- the record that decides the alert is checked too (issue 32, item 3) -------------------------------


def edit_metadata(version, **changes) -> None:
    path = version.path / "metadata.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def test_an_edited_alert_threshold_refuses_the_version_and_live_falls_back(registry, tiny_model):
    registry.register(tiny_model, VersionRecord.from_dict(METADATA), activate=True)
    tampered = registry.register(tiny_model, VersionRecord.from_dict(METADATA), activate=True)
    edit_metadata(tampered, alert_threshold=0.99, alert_threshold_unusual=0.99)

    version = registry.get(tampered.number)
    assert version.record.policy.threshold == 0.99  # the edit is read...
    for refuse in (registry.verify, registry.load):
        with pytest.raises(RegistryError, match=r"version 2: metadata\.json does not match the checksum recorded"):
            refuse(version)  # ...and refused before anything is served with it
    with pytest.raises(RegistryError, match="record was modified"):
        registry.activate(tampered.number)
    assert registry.last_good_live().number == 1
    assert registry.problems() == [
        "model version 2: metadata.json does not match the checksum recorded when it was registered; the record "
        "was modified (restore it or register the version again)"
    ]


def test_the_checksum_lives_in_the_live_pointer_not_beside_the_record(registry, tiny_model):
    version = registry.register(tiny_model, VersionRecord.from_dict(METADATA))

    pointer = json.loads((registry.root / LIVE_FILE).read_text())
    assert pointer["metadata_sha256"] == {"1": sha256(version.path / "metadata.json")}
    registry.verify(registry.get(1))  # untouched: accepted


def test_a_metadata_file_that_is_not_an_object_is_one_clear_line_everywhere(registry, tiny_model, capsys, monkeypatch):
    from skin_model.cli import main

    version = registry.register(tiny_model, VersionRecord.from_dict(METADATA), activate=True)
    (version.path / "metadata.json").write_text("[]")

    with pytest.raises(RegistryError, match=r"metadata\.json must hold a JSON object; received list"):
        registry.get(1)
    assert registry.versions() == []
    assert len(registry.problems()) == 1 and "must hold a JSON object" in registry.problems()[0]

    monkeypatch.setenv("SKIN_HOME", str(registry.root.parent))
    assert main(["models"]) == 0
    assert "warning: model version 1:" in capsys.readouterr().err
    assert main(["predict", "nothing.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model version 1:") and "must hold a JSON object" in err and "unexpected" not in err


def test_a_registry_from_before_the_record_checksums_records_them_once_then_checks_them(registry, tiny_model):
    version = registry.register(tiny_model, VersionRecord.from_dict(METADATA), activate=True)
    pointer = registry.root / LIVE_FILE
    pointer.write_text(json.dumps({"version": 1, "since": "2026-01-01T00:00:00Z", "history": [1]}))  # as before

    registry.verify(registry.get(1))  # trusted as found, and now recorded
    assert json.loads(pointer.read_text())["metadata_sha256"] == {"1": sha256(version.path / "metadata.json")}
    edit_metadata(version, alert_threshold=0.99)
    with pytest.raises(RegistryError, match="record was modified"):
        registry.verify(registry.get(1))
