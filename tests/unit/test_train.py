"""One short training run on a flawed synthetic folder: what gets registered and what is logged."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from skin_model import CLASSES, train
from skin_model.config import BalanceConfig, TrainConfig
from skin_model.imaging import STAT_NAMES
from skin_model.predict import Predictor
from skin_model.registry import Registry
from skin_model.shift import CONDITIONS
from tests.conftest import written

pytestmark = pytest.mark.slow

CONFIG = TrainConfig(epochs=2, image_size=32, batch_size=8, width=4, balance=BalanceConfig(strategy="target", n=8))


@pytest.fixture(scope="module")
def trained(make_dataset, tmp_path_factory, snapshot):
    """Train once for the whole module; keep what each test inspects."""
    data = make_dataset(flaws=True)
    before = snapshot(data.root)
    home = tmp_path_factory.mktemp("train_home")
    progress = home / "progress.jsonl"
    registry = Registry(home / "models", seed_dir=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SKIN_HOME", str(home))
        version = train.run(data.root, CONFIG, progress=progress, activate=True, registry=registry)
    events = [json.loads(line) for line in progress.read_text().splitlines()]
    return {"data": data, "before": before, "version": version, "registry": registry, "events": events, "home": home}


def test_training_registers_a_live_version_that_loads(trained):
    registry, version = trained["registry"], trained["version"]

    assert registry.live_number() == version.number == 1
    assert registry.get(1).record == version.record
    registry.verify(version)


def test_metadata_has_validation_metrics_and_a_calibrated_alert(trained):
    metadata = written(trained["version"])

    assert metadata["metrics"]["val"]["images"] > 0
    assert 0.0 <= metadata["metrics"]["val"]["balanced_accuracy"] <= 1.0
    assert metadata["temperature"] > 0
    assert 0.0 <= metadata["alert_threshold"] <= 1.0
    assert [row["threshold"] for row in metadata["operating_curve"]][:2] == [0.01, 0.02]


def test_metadata_has_the_not_a_lesion_gate_fitted_on_this_model(trained):
    gate = written(trained["version"])["gate"]

    # the pooled features, the image statistics, and the distance from the training lesions' features
    assert (
        len(gate["mean"]) == 16 * CONFIG.width + len(STAT_NAMES) + 1 == len(gate["stat_names"]) + 16 * CONFIG.width + 1
    )
    assert gate["hidden_weights"]["shape"] == [len(gate["mean"]), len(gate["weights"])]
    assert 0.0 < gate["threshold"] <= 0.5
    assert gate["negatives"] > 100 and 0.0 <= gate["negatives_refused"] <= 1.0


def test_the_strict_threshold_is_the_lowest_over_validation_and_every_stress_condition(trained):
    metadata = written(trained["version"])

    assert set(metadata["threshold_by_condition"]) == {"none", *CONDITIONS}
    assert metadata["alert_threshold_unusual"] == min(metadata["threshold_by_condition"].values())
    # the usual one: between the strict one and what clean validation images alone would allow
    strict, usual = metadata["alert_threshold_unusual"], metadata["alert_threshold"]
    assert strict <= usual <= metadata["threshold_by_condition"]["none"]
    assert 0.0 <= metadata["threshold_cost"]["unusual_share"] <= 1.0
    # each warning's own: between the two, the strict one the lowest of them
    own = metadata["alert_threshold_by_warning"]
    assert "cool (blue) colour cast" in own and all(strict <= t <= usual for t in own.values())


def test_metadata_has_per_source_and_stress_tables_of_the_test_split(trained):
    robustness = written(trained["version"])["robustness"]
    test_images = written(trained["version"])["metrics"]["test"]["images"]

    assert set(robustness["stress"]) == {"none", *CONDITIONS}
    assert all(m["images"] == test_images and 0 <= m["refused"] <= 1 for m in robustness["stress"].values())
    assert sum(m["images"] for m in robustness["per_source"].values()) == test_images


def test_the_test_metrics_agree_with_the_clean_row_of_the_stress_table(trained):
    metadata = written(trained["version"])
    test, clean = metadata["metrics"]["test"], metadata["robustness"]["stress"]["none"]

    for key in ("images", "balanced_accuracy", "melanoma_sensitivity", "melanoma_specificity", "melanoma_roc_auc"):
        assert test[key] == clean[key], key
    assert test["per_class"] and test["confusion"]  # the full report, not the table's summary


def test_metadata_records_two_epochs_of_history_and_the_config(trained):
    metadata = written(trained["version"])

    assert [row["epoch"] for row in metadata["history"]] == [1, 2]
    assert {"loss", "val_loss", "val_balanced_accuracy"} <= set(metadata["history"][0])
    assert TrainConfig.from_dict(metadata["config"]) == CONFIG
    assert metadata["image_size"] == 32


def test_metadata_fingerprints_the_cleaned_data_of_each_split(trained):
    data = written(trained["version"])["data"]

    assert set(data["fingerprints"]) == {"train", "val", "test", "all"}
    assert all(len(value) == 16 for value in data["fingerprints"].values())
    assert len(set(data["fingerprints"].values())) == 4
    assert data["audit"]["conflicts"] == 1 and data["audit"]["unreadable"] == 1
    assert data["split_sizes"]["test"] == 4  # the Test folder: three genuine pictures and the leaked one


def test_the_progress_file_tells_the_story_in_json_lines(trained):
    events = trained["events"]
    kinds = [event["event"] for event in events]

    assert kinds[:2] == ["prepare", "start"]
    assert kinds[-1] == "registered"
    assert Counter(kinds)["epoch"] == 2
    assert "step" in kinds
    assert events[-1]["version"] == 1 and events[-1]["live"] is True
    assert all(isinstance(event["time"], float) for event in events)


def test_training_never_writes_into_the_dataset_folder(trained, snapshot):
    assert snapshot(trained["data"].root) == trained["before"]


def test_balancing_images_are_cached_under_skin_home(trained):
    data = written(trained["version"])["data"]
    (entry,) = (trained["home"] / "cache" / "balance").iterdir()
    assert len(list(entry.glob("*.png"))) == sum(data["balanced_counts"].values()) - data["split_sizes"]["train"] > 0


def test_the_trained_model_predicts_through_the_predictor(trained, blob):
    predictor = Predictor.load(registry=trained["registry"])

    result = predictor.predict(blob("melanoma", seed=77, size=120))

    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    unusual = any(w.startswith("unusual imaging conditions") for w in result.warnings)
    metadata = written(trained["version"])
    if unusual:  # one of its warnings' own thresholds
        assert result.alert_threshold in metadata["alert_threshold_by_warning"].values()
    else:
        assert result.alert_threshold == metadata["alert_threshold"]
    assert np.isfinite(result.melanoma_probability)


def test_streamed_scores_equal_the_model_on_full_size_pixels(clean_dataset):
    """Validation, calibration and the model card score streamed files; the app feeds whole decoded images.

    Both must give the same logits, or the alert threshold is tuned on inputs the app never sends.
    """
    from skin_model import dataset, stream
    from skin_model.images import decode
    from skin_model.network import build

    records, _ = dataset.list_files(dataset.find_layout(clean_dataset.root))
    paths = [r.path for r in records]
    as_the_app_decodes = [decode(path).astype(np.float32)[None] for path in paths]
    assert as_the_app_decodes[0].shape[1] != 64  # the resize really happens
    model = build(64, len(CLASSES), width=4)
    weights = model.get_weights()
    weights[-2] = weights[-2] * 1e5  # the logits kernel: an untrained network's logits are ~1e-6, too small to compare
    model.set_weights(weights)

    streamed = np.concatenate([batch.numpy() for batch in stream.pixels(paths, 64, batch=5)])

    resize = model.get_layer("resize")
    inside = np.concatenate([resize(x).numpy() for x in as_the_app_decodes])
    np.testing.assert_allclose(streamed, inside, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(resize(streamed).numpy(), streamed)  # inside the model: the identity
    app = np.concatenate([model(x, training=False).numpy() for x in as_the_app_decodes])
    assert np.ptp(app, axis=0).max() > 0.1  # the images' logits differ: the comparisons below can fail
    np.testing.assert_allclose(stream.logits(model, paths, 64), app, rtol=1e-3, atol=1e-2)
    flips = lambda v: [v, v[::-1], v[:, ::-1], v[::-1, ::-1]]
    views = lambda v: flips(v) + [f.transpose(1, 0, 2) for f in flips(v)]  # what the app's upload becomes, turned
    eight = np.stack([model(np.stack(views(v)), training=False).numpy().mean(axis=0) for v in inside])
    np.testing.assert_allclose(stream.logits(model, paths, 64, views=8), eight, rtol=1e-3, atol=1e-2)


def test_a_cancel_before_training_stops_after_the_audit_and_writes_nothing(clean_dataset, tmp_path, monkeypatch):
    from skin_model.errors import Cancelled

    monkeypatch.setenv("SKIN_HOME", str(tmp_path))
    registry = Registry(tmp_path / "models", seed_dir=None)

    with pytest.raises(Cancelled):
        train.run(clean_dataset.root, CONFIG, registry=registry, should_stop=lambda: True)

    assert registry.versions() == []
    assert not (tmp_path / "cache").exists()


def test_the_version_carries_a_checksummed_index_of_its_training_and_validation_images(trained):
    from skin_model.similar import INDEX_FILE, Index

    version = trained["version"]
    path = version.artefact(INDEX_FILE)
    assert path is not None and path.is_file()
    index = Index.from_bytes(path.read_bytes())
    start = next(e for e in trained["events"] if e["event"] == "start")
    assert len(index) == start["originals"] + start["val_images"]  # every original image, no augmented copy
    assert all(p.startswith("Train/") and not p.startswith("/") for p in index.paths)
    assert set(index.diagnoses) <= set(CLASSES)
    trained["registry"].verify(version)


def test_the_disagreement_of_twins_is_their_jensen_shannon_divergence():
    from skin_model.runtime import tensorflow

    tf = tensorflow()
    same = tf.constant([[2.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 1.0]])  # two images, then identical twins
    np.testing.assert_allclose(train.disagreement(same), [0.0, 0.0], atol=1e-6)
    opposite = tf.constant([[30.0, 0.0], [0.0, 30.0]])  # one image, its twin sure of the other class
    np.testing.assert_allclose(train.disagreement(opposite), [np.log(2.0)], atol=1e-4)  # the most there is
    p, q = np.array([0.8, 0.2]), np.array([0.4, 0.6])
    m = (p + q) / 2
    expected = 0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum()
    np.testing.assert_allclose(train.disagreement(tf.constant(np.log([p, q]), tf.float32)), [expected], rtol=1e-5)


def test_training_on_twins_runs_and_records_its_consistency_weight(clean_dataset, tmp_path, monkeypatch):
    from dataclasses import replace

    from skin_model.splits import prepare

    monkeypatch.setenv("SKIN_HOME", str(tmp_path))
    config = replace(CONFIG, consistency=12.0, device_augment="mild", cases=False)
    result = train.fit(prepare(clean_dataset.root, config), config)
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert all(np.isfinite(row["loss"]) and row["loss"] > 0 for row in result.history)
    assert result.metadata["config"]["consistency"] == 12.0


def test_in_memory_logits_average_the_eight_views_as_served():
    from skin_model.network import build

    model = build(32, len(CLASSES), width=4)
    weights = model.get_weights()
    weights[-2] = weights[-2] * 1e5  # an untrained network's logits are too small to compare
    model.set_weights(weights)
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    flips = lambda v: [v, v[::-1], v[:, ::-1], v[::-1, ::-1]]
    views = lambda v: flips(v) + [f.transpose(1, 0, 2) for f in flips(v)]
    by_hand = np.stack([model(np.stack(views(v)), training=False).numpy().mean(axis=0) for v in x])
    upright = model(x, training=False).numpy()
    assert np.abs(by_hand - upright).max() > 0.1  # the views differ: the check below can fail
    np.testing.assert_allclose(train.logits_of(model, x, batch=2, views=8), by_hand, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(train.logits_of(model, x, batch=2), upright, rtol=1e-4, atol=1e-3)


def test_the_consistency_weight_adds_the_twins_disagreement_to_the_loss():
    import keras

    from skin_model.runtime import tensorflow

    tf = tensorflow()
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])  # no dropout
    images = rng.normal(0, 1, (2, 4, 4, 3))
    twins = np.concatenate([images, images + rng.normal(0, 4, images.shape)]).astype(np.float32)  # images, then twins
    weights = np.array([1.0, 3.0, 1.0, 3.0], np.float32)  # an image and its twin weigh the same
    batch = (twins, np.array([0, 1, 0, 1], np.int32), weights)

    def loss_at(weight: float) -> float:
        optimizer = keras.optimizers.SGD(0.0)  # the weights stay put: both losses are of the same model
        optimizer.build(model.trainable_variables)
        groups = [(optimizer, model.trainable_variables)]
        step = train.train_step(model, groups, tf.distribute.get_strategy(), 4, weight)
        return float(step(iter(tf.data.Dataset.from_tensors(batch).repeat()))[0])

    js = train.disagreement(model(twins, training=True)).numpy()
    assert js.min() > 0.01  # the twins disagree, so the term is there to see
    # each pair's disagreement weighs as its image does: (1 x js0 + 3 x js1) / 2 pairs
    np.testing.assert_allclose(loss_at(5.0) - loss_at(0.0), 5.0 * float((js * weights[:2]).mean()), rtol=1e-4)
