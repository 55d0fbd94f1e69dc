"""A version's record reads every metadata.json written so far, writes it back unchanged, and refuses a bad one."""

from __future__ import annotations

import json

import pytest

from skin_model.config import DEFAULT_MODEL_DIR
from skin_model.errors import RegistryError
from skin_model.record import SCHEMA, VersionRecord


def committed() -> dict:
    return json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())


def without_nulls(value):
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def test_the_committed_record_is_written_back_key_for_key_with_a_schema_number():
    record = VersionRecord.from_dict(committed())

    written = record.to_dict()

    assert written.pop("schema") == SCHEMA
    on_disk = committed()
    assert on_disk.pop("schema", SCHEMA) == SCHEMA
    assert without_nulls(written) == without_nulls(on_disk)  # absent and null read the same
    assert VersionRecord.from_dict(record.to_dict()) == record.__class__(**{**record.__dict__, "schema": SCHEMA})


def test_a_record_from_before_the_schema_field_reads_as_schema_1_with_its_figures_typed():
    before = {k: v for k, v in committed().items() if k != "schema"}
    record = VersionRecord.from_dict(before)

    assert record.schema == 1
    assert record.policy.threshold == committed()["alert_threshold"] and record.policy.views == record.config.views
    assert record.external["isic2017/Validation"].challenge_2017.melanoma_roc_auc > 0.5
    assert record.robustness.stress["none"].images == record.metrics.test.images


def test_the_headline_split_is_test_else_validation():
    both = VersionRecord.from_dict({"metrics": {"val": {"images": 5}, "test": {"images": 7}}}).metrics
    val_only = VersionRecord.from_dict({"metrics": {"val": {"images": 5}}}).metrics

    assert (both.headline.key, both.headline.name, both.headline.scores.images) == ("test", "test", 7)
    assert (val_only.headline.key, val_only.headline.name, val_only.headline.scores.images) == ("val", "validation", 5)
    assert VersionRecord.from_dict({}).metrics.headline is None


def test_fields_an_old_version_lacks_are_explicitly_empty():
    record = VersionRecord.from_dict({"temperature": 1.0, "data": {"root": "/data/isic9"}})

    assert record.gate is None and record.robustness is None and record.external == {}
    assert record.training.started_from is None and record.data.train_counts is None
    assert record.data.roots == ("/data/isic9",)  # versions before several roots named one
    assert record.policy.threshold is None and record.policy.unusual is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"alert_threshold": 1.5}, r"alert threshold must be in \[0, 1\]"),
        ({"temperature": 0}, "temperature must be positive"),
        ({"temperature": "warm"}, "temperature must be a number"),
        ({"classes": ["melanoma", "nevus"]}, "not the nine this app shows"),
        ({"image_size": "big"}, "image_size must be a whole number"),
        ({"metrics": {"test": [1]}}, "metrics.test must be a mapping"),
    ],
)
def test_a_wrong_value_is_refused_with_one_line(bad, message):
    with pytest.raises(RegistryError, match=message):
        VersionRecord.from_dict(bad)


def test_the_registry_names_the_version_whose_record_is_wrong(tmp_path, tiny_model):
    from skin_model.registry import Registry

    registry = Registry(tmp_path / "models", seed_dir=None)
    version = registry.register(tiny_model, VersionRecord.from_dict({"temperature": 1.0}))
    stored = json.loads((version.path / "metadata.json").read_text())
    assert stored["schema"] == SCHEMA and stored["version"] == version.number
    (version.path / "metadata.json").write_text(json.dumps(stored | {"alert_threshold": 7}))

    with pytest.raises(RegistryError, match=rf"^model version {version.number}: alert threshold must be in"):
        registry.get(version.number)
    assert registry.versions() == [] and len(registry.problems()) == 1
