"""The real ISIC folder end to end: audit, a short training, evaluation, prediction, rollback."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from skin_model import CLASSES
from skin_model.audit import audit, usable
from skin_model.config import DEFAULT_MODEL_DIR, BalanceConfig, TrainConfig, data_dirs
from skin_model.dataset import fingerprint
from skin_model.predict import Predictor
from skin_model.registry import Registry
from skin_model.robustness import evaluate_folder
from skin_model.splits import training_split
from tests.conftest import written

ROOTS = data_dirs()  # read at import: the autouse fixture clears SKIN_DATA_DIR for unit tests
DATA = next((root for root in ROOTS if root.name == "isic9"), ROOTS[0] if ROOTS else None)  # the 9-class set
HOLD_OUT = [root / "Validation" for root in ROOTS if (root / "Validation").is_dir()]  # ISIC 2017's: scored on

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        DATA is None or not DATA.is_dir(), reason="SKIN_DATA_DIR not set or missing: real-data tests run in CI"
    ),
]

CONFIG = TrainConfig(
    epochs=2, image_size=64, batch_size=32, max_per_class=25, width=8, balance=BalanceConfig(strategy="target", n=25)
)


@pytest.fixture(scope="module")
def report():
    return audit(DATA)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short training on the real data, registered and live in a private registry."""
    home = tmp_path_factory.mktemp("real_home")
    registry = Registry(home / "models", seed_dir=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIN_HOME", str(home))
        from skin_model import train

        version = train.run(DATA, CONFIG, progress=home / "progress.jsonl", activate=True, registry=registry)
    return registry, version


def test_every_real_image_is_readable(report):
    assert len(report.records) > 1000
    assert report.unreadable == []


def test_the_real_set_has_pictures_filed_under_two_classes(report):
    assert len(report.conflicts) > 0
    assert all(len({r.label for r in group}) > 1 for group in report.conflicts)


def test_usable_real_records_never_share_content(report):
    records = usable(report)
    hashes = [report.hashes[r.path] for r in records]

    assert len(hashes) == len(set(hashes))


def test_the_audit_lists_the_102_folder_labels_the_official_labels_contradict(report):
    found = report.summary()["official_label_disagreements"]

    assert len(found) == 102
    pairs = Counter((d["folder_label"], d["official_label"]) for d in found)
    assert pairs == {("nevus", "AK"): 76, ("seborrheic keratosis", "MEL"): 26}


def test_official_labels_win_and_unresolved_conflicts_are_dropped(report):
    records = usable(report)
    kept = {report.hashes[r.path] for r in records}

    assert all(report.info(r).agrees(r.label) for r in records)
    for group in report.conflicts:
        official = next((report.info(r).official for r in group if report.info(r).official), "")
        assert (report.hashes[group[0].path] in kept) == bool(official)


def test_no_lesion_lands_in_two_splits_of_the_default_training_split(report):
    parts = training_split(report, TrainConfig())[1]

    lesions = {name: {r.lesion for r in part} for name, part in parts.items()}
    assert not lesions["train"] & lesions["val"] and not lesions["train"] & lesions["test"]
    assert not lesions["val"] & lesions["test"]
    several = Counter(r.lesion for part in parts.values() for r in part if not r.lesion.startswith("image:"))
    assert sum(n > 1 for n in several.values()) > 200  # the real set does have lesions with several images


@pytest.mark.skipif(len(ROOTS) < 2, reason="the default learns from isic9 + isic2017: SKIN_DATA_DIR names both in CI")
def test_the_committed_default_was_trained_on_todays_split_of_the_real_set():
    """A change to the audit or the dealing of splits would silently move images between the default's splits."""
    metadata = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())
    config = replace(TrainConfig.from_dict(metadata["config"]), cases=False)
    both = audit(ROOTS, hold_out=HOLD_OUT)

    parts = training_split(both, config)[1]

    prints = {name: fingerprint(records, both.hashes) for name, records in parts.items()}
    assert prints == {k: metadata["data"]["fingerprints"][k] for k in ("train", "val", "test")}


def test_a_short_real_training_registers_a_live_version(trained):
    registry, version = trained

    assert registry.live_number() == version.number
    metadata = written(version)
    assert sum(metadata["data"]["split_sizes"].values()) <= 25 * len(CLASSES)
    assert [row["epoch"] for row in metadata["history"]] == [1, 2]
    assert 0.0 <= metadata["metrics"]["test"]["balanced_accuracy"] <= 1.0


def test_evaluate_folder_scores_the_live_model_on_a_real_folder(trained, tmp_path):
    registry, _ = trained
    for folder in sorted((DATA / "Train").iterdir()):
        target = tmp_path / "Train" / folder.name
        target.mkdir(parents=True)
        for image in sorted(folder.iterdir())[:4]:
            shutil.copy(image, target / image.name)

    result = evaluate_folder(Predictor.load(registry=registry), tmp_path)

    assert 0 < result["images"] <= 4 * len(CLASSES)
    assert sum(row["support"] for row in result["per_class"].values()) == result["images"]
    assert 0.0 <= result["balanced_accuracy"] <= 1.0


def test_the_predictor_classifies_a_real_image_file(trained):
    registry, version = trained
    path = sorted((DATA / "Train" / "melanoma").iterdir())[0]

    result = Predictor.load(registry=registry).predict_file(path, tta=True)

    assert result.lesion_like
    assert result.model_version == version.number
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.top_class in CLASSES


def test_a_second_version_can_go_live_and_be_rolled_back(trained):
    registry, first = trained
    model = registry.load(first)

    second = registry.register(model, replace(first.record, created=""), activate=True)
    assert registry.live_number() == second.number == first.number + 1

    registry.activate(first.number)
    assert registry.live().number == first.number
    assert Predictor.load(registry=registry).version.number == first.number


def test_the_savedmodel_export_matches_the_committed_model_on_real_images(tmp_path, skin_home):
    from skin_model import images
    from skin_model.export import SIGNATURE, savedmodel
    from skin_model.runtime import tensorflow

    tf = tensorflow()
    files = sorted((DATA / "Train").rglob("*.jpg"))[::97][:24]
    data = [f.read_bytes() for f in files]
    predictor = Predictor.load()  # the committed default, version 1 of this test's registry

    served = tf.saved_model.load(str(savedmodel(tmp_path / "skin" / "1"))).signatures[SIGNATURE]
    got = served(image_bytes=tf.constant(data))["probabilities"].numpy()

    # over the views the version is served with (8 for the committed default)
    expected = np.stack([predictor.probabilities(predictor.logits_features(images.decode(d))[0]) for d in data])
    assert len(files) == 24 and np.abs(got - expected).max() < 1e-5
