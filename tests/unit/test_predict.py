"""What the clinician reads: calibrated probabilities, risk group, melanoma alert, warnings, Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest

from skin_model import CLASSES
from skin_model.config import TrainConfig
from skin_model.explain import gradcam, overlay
from skin_model.predict import Predictor, batch_rows, malignant_probability, risk_group
from skin_model.record import VersionRecord


@pytest.fixture
def predictor(live_tiny_model) -> Predictor:
    return Predictor.load()


@pytest.fixture
def lesion(blob) -> np.ndarray:
    return blob("melanoma", seed=5, size=128)


def test_probabilities_cover_the_nine_classes_and_sum_to_one(predictor, lesion):
    result = predictor.predict(lesion)

    assert list(result.probabilities) == list(CLASSES)
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= p <= 1.0 for p in result.probabilities.values())


def test_top_class_is_the_most_probable_one(predictor, lesion):
    result = predictor.predict(lesion)
    logits, _ = predictor.logits_features(lesion)

    assert result.top_class == CLASSES[int(logits[0].argmax())]
    assert result.top_probability == max(result.probabilities.values())
    assert result.top_probability == result.probabilities[result.top_class]
    assert result.risk_group == risk_group(malignant_probability(np.array(list(result.probabilities.values()))))


@pytest.mark.parametrize(
    ("p_malignant", "group"), [(0.0, "low"), (0.149, "low"), (0.15, "intermediate"), (0.5, "high")]
)
def test_the_risk_group_follows_the_summed_malignant_probability(p_malignant, group):
    assert risk_group(p_malignant) == group


def test_melanoma_alert_fires_exactly_when_p_melanoma_reaches_the_threshold(predictor, lesion):
    always = predictor.predict(lesion, threshold=0.0)
    never = predictor.predict(lesion, threshold=1.0)
    at_own = predictor.predict(lesion, threshold=always.melanoma_probability)

    assert always.melanoma_alert and always.alert_threshold == 0.0
    assert not never.melanoma_alert
    assert at_own.melanoma_alert
    assert always.melanoma_probability == always.probabilities["melanoma"]


def test_the_registered_threshold_and_version_are_used_by_default(predictor, lesion, live_tiny_model):
    result = predictor.predict(lesion)

    assert result.alert_threshold == 0.5
    assert result.model_version == live_tiny_model.number
    assert result.melanoma_alert == (result.melanoma_probability >= 0.5)


@pytest.mark.parametrize("shape", [(64, 64), (48, 80)], ids=["square", "landscape"])
def test_test_time_augmentation_gives_valid_probabilities(predictor, blob, shape):
    pixels = np.resize(blob("nevus", seed=6, size=80), (*shape, 3))

    result = predictor.predict(pixels, tta=True)

    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.top_class in CLASSES


def test_test_time_augmentation_averages_eight_views(predictor, blob):
    pixels = blob("nevus", seed=7, size=48)[:, :40]

    logits, features = predictor.logits_features(pixels, tta=True)
    plain, _ = predictor.logits_features(pixels)

    assert logits.shape == (8, len(CLASSES)) and features.shape[0] == 8
    np.testing.assert_allclose(logits[0], plain[0], atol=1e-4)  # the first view is the image itself


def test_a_40_pixel_image_gets_a_low_resolution_warning(predictor, blob):
    result = predictor.predict(blob(seed=8, size=40))

    assert "low resolution (40x40 pixels)" in result.warnings


def test_predict_file_and_bytes_decode_then_predict_the_same(predictor, lesion, encode, tmp_path):
    data = encode(lesion, "PNG")
    path = tmp_path / "lesion.png"
    path.write_bytes(data)

    from_file = predictor.predict_file(path)
    from_bytes = predictor.predict_bytes(data, name="lesion.png")

    assert from_file.file == str(path) and from_bytes.file == "lesion.png"
    assert from_file.probabilities == pytest.approx(from_bytes.probabilities, abs=1e-6)


def test_to_dict_is_json_ready(predictor, lesion):
    import json

    data = json.loads(json.dumps(predictor.predict(lesion, name="x.jpg").to_dict()))

    assert data["file"] == "x.jpg" and set(data["probabilities"]) == set(CLASSES)


def test_gradcam_is_a_map_in_zero_one_at_the_image_size(predictor, blob):
    pixels = blob("melanoma", seed=9, size=72)[:, :56]

    cam = gradcam(predictor.keras_model, pixels, CLASSES.index("melanoma"))

    assert cam.shape == (72, 56)
    assert cam.min() >= 0.0 and cam.max() <= 1.0


def test_overlay_keeps_the_image_shape_and_type(blob):
    pixels = blob(seed=10, size=32)
    cam = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)

    blended = overlay(pixels, cam)

    assert blended.shape == pixels.shape and blended.dtype == np.uint8
    assert np.array_equal(blended[0, 0], pixels[0, 0])  # zero attention leaves the pixel alone


def test_the_risk_group_sums_the_malignant_diagnoses_and_ignores_the_alert(predictor, lesion):
    probs = np.zeros(len(CLASSES))
    probs[CLASSES.index("nevus")], probs[CLASSES.index("melanoma")] = 0.4, 0.3
    probs[CLASSES.index("basal cell carcinoma")] = 0.3
    assert malignant_probability(probs) == pytest.approx(0.6) and risk_group(malignant_probability(probs)) == "high"
    alerted = predictor.predict(lesion, threshold=0.0)  # an alert on an untrained model's near-uniform output
    assert alerted.melanoma_alert and alerted.risk_group == "intermediate"  # 3 of 9 classes: 33 %


def refusing_predictor(tiny_model, servable):
    from skin_model.registry import Registry

    metadata = servable(tiny_model)
    metadata["gate"] = dict(metadata["gate"], threshold=0.99)  # the gate's score is 0.73 for every image
    version = Registry().register(tiny_model, VersionRecord.from_dict(metadata), activate=True)
    return Predictor.load(version.number)


def test_a_refused_image_has_no_probabilities_risk_group_or_alert(tiny_model, servable, lesion):
    result = refusing_predictor(tiny_model, servable).predict(lesion, tta=True, threshold=0.0)

    assert not result.lesion_like
    assert result.probabilities == {} and result.top_class is None and result.risk_group is None
    assert result.melanoma_alert is None and result.melanoma_probability is None
    assert result.to_dict()["melanoma_alert"] is None


def test_a_refused_row_in_the_downloads_has_empty_alert_and_probabilities(tiny_model, servable, lesion):
    result = refusing_predictor(tiny_model, servable).predict(lesion, threshold=0.0)

    (row,) = batch_rows([result], "now")

    assert row["melanoma_alert"] is None and row["risk_group"] is None and row["p_melanoma"] is None


@pytest.mark.parametrize("missing", ["temperature", "alert_threshold", "gate"])
def test_a_version_without_its_calibration_or_gate_is_refused_with_one_line(tiny_model, servable, missing):
    from skin_model.errors import RegistryError
    from skin_model.registry import Registry

    metadata = servable(tiny_model)
    del metadata[missing]
    version = Registry().register(tiny_model, VersionRecord.from_dict(metadata))

    with pytest.raises(RegistryError, match=f"model version {version.number}: its metadata has no {missing}"):
        Predictor.load(version.number)


def test_a_version_calibrated_on_eight_views_serves_the_mean_of_their_logits(loud_tiny_model, servable, blob):
    from skin_model.evaluate import softmax
    from skin_model.registry import Registry

    model = loud_tiny_model
    Registry().register(model, VersionRecord.from_dict(servable(model) | {"config": {"views": 8}}), activate=True)
    predictor = Predictor.load()
    pixels = blob("nevus", seed=9, size=60)[:, :50]

    logits, features = predictor.logits_features(pixels)
    result = predictor.predict(pixels, threshold=0.0)
    upright = predictor.predict(pixels, tta=False, threshold=0.0)

    assert predictor.views == 8 and logits.shape == (8, len(CLASSES)) and features.shape[0] == 8
    assert np.ptp(softmax(logits), axis=0).max() > 0.01  # the views really differ, so the mean is not any one of them
    expected = softmax(logits.mean(axis=0, keepdims=True), 1.0)[0]
    np.testing.assert_allclose([result.probabilities[c] for c in CLASSES], expected, atol=1e-6)
    assert result.alert_probability == result.melanoma_probability  # the threshold was validated on this mean
    np.testing.assert_allclose(
        [upright.probabilities[c] for c in CLASSES], softmax(logits[:1], 1.0)[0], atol=1e-5
    )  # asked for one view: the upright one


def stored_as(model, metadata: dict):
    """A version whose ``metadata.json`` was edited on disk into ``metadata`` (the writer refuses to write it)."""
    import json

    from skin_model.registry import Registry

    version = Registry().register(model, VersionRecord.from_dict({"temperature": 1.0}))
    (version.path / "metadata.json").write_text(json.dumps(metadata))
    return version


def test_a_version_with_views_other_than_1_or_8_is_refused_with_one_line(tiny_model, servable):
    from skin_model.errors import RegistryError

    metadata = servable(tiny_model) | {"config": {"views": 4}}
    with pytest.raises(RegistryError, match="views must be 1 or 8"):
        VersionRecord.from_dict(metadata)  # never written
    version = stored_as(tiny_model, metadata)

    with pytest.raises(RegistryError, match=f"model version {version.number}: views must be 1 or 8"):
        Predictor.load(version.number)  # nor read


def test_more_views_than_calibrated_may_add_a_melanoma_alert_never_remove_one(loud_tiny_model, servable, blob):
    from skin_model.evaluate import softmax
    from skin_model.registry import Registry

    Registry().register(
        loud_tiny_model, VersionRecord.from_dict(servable(loud_tiny_model)), activate=True
    )  # calibrated on one view
    predictor = Predictor.load()
    mel = CLASSES.index("melanoma")
    for seed in range(6):
        pixels = blob("melanoma", seed=seed, size=56)
        logits, _ = predictor.logits_features(pixels, tta=True)
        upright = float(softmax(logits[:1], 1.0)[0, mel])

        result = predictor.predict(pixels, tta=True)

        assert result.melanoma_probability == pytest.approx(float(predictor.probabilities(logits)[mel]), abs=1e-6)
        assert result.alert_probability == pytest.approx(max(result.melanoma_probability, upright), abs=1e-6)
    assert predictor.predict(pixels).alert_probability == predictor.predict(pixels).melanoma_probability  # one view


def two_threshold_predictor(tiny_model, servable, lesion) -> Predictor:
    """Usual images never alerted (threshold 1), unusual ones always (0); the lesion's own cast is just usual."""
    from skin_model.imaging import image_stats
    from skin_model.registry import Registry

    metadata = servable(tiny_model) | {"alert_threshold": 1.0, "alert_threshold_unusual": 0.0}
    metadata["gate"]["unusual_ranges"]["cast_blue_red"] = [-1e9, image_stats(lesion)["cast_blue_red"] + 0.05]
    return Predictor.load(Registry().register(tiny_model, VersionRecord.from_dict(metadata)).number)


def test_an_image_with_unusual_imaging_conditions_is_held_to_the_stricter_threshold_and_told_so(
    tiny_model, servable, lesion
):
    from skin_model import shift

    predictor = two_threshold_predictor(tiny_model, servable, lesion)
    cooled = shift.apply("cool cast", lesion)

    usual, unusual = predictor.predict(lesion), predictor.predict(cooled)
    chosen = predictor.predict(cooled, threshold=1.0)  # a clinician's own threshold: the same for every image

    assert (usual.alert_threshold, usual.melanoma_alert) == (1.0, False)
    assert not any("stricter" in w for w in usual.warnings)
    assert (unusual.alert_threshold, unusual.melanoma_alert) == (0.0, True)
    assert any(
        "cool (blue) colour cast" in w and "stricter melanoma alert threshold 0.0 % applies" in w
        for w in unusual.warnings
    )
    assert (chosen.alert_threshold, chosen.melanoma_alert) == (1.0, False)


def test_benches_and_tables_hold_each_image_to_the_same_threshold_as_the_predictor(tiny_model, servable, lesion):
    from skin_model import shift
    from skin_model.imaging import stats_table

    predictor = two_threshold_predictor(tiny_model, servable, lesion)
    images = [lesion, shift.apply("cool cast", lesion), shift.apply("warm cast", lesion), lesion[::-1]]

    in_batch = predictor.info.alert_rule.thresholds(stats_table(images))  # robustness.tables, calibration, benches

    assert list(in_batch) == [predictor.predict(p).alert_threshold for p in images]
    assert set(in_batch) == {0.0, 1.0}  # both kinds of image are in the set


@pytest.mark.parametrize(
    ("strict", "message"),
    [
        (0.3, r"unusual imaging conditions must be in \[0, 0\.2\]"),
        (-0.1, r"must be in \[0, 0\.2\]"),
        ("low", "a number"),
    ],
    ids=["above-the-usual", "negative", "not-a-number"],
)
def test_a_bad_stricter_threshold_is_refused_with_one_line(tiny_model, servable, strict, message):
    from skin_model.errors import RegistryError

    metadata = servable(tiny_model) | {"alert_threshold": 0.2, "alert_threshold_unusual": strict}
    with pytest.raises(RegistryError, match=message):
        VersionRecord.from_dict(metadata)  # never written
    version = stored_as(tiny_model, metadata)

    with pytest.raises(RegistryError, match=f"model version {version.number}: .*{message}"):
        Predictor.load(version.number)  # nor read


def test_each_warning_holds_an_image_to_its_own_threshold(tiny_model, servable, lesion):
    from skin_model import shift
    from skin_model.imaging import image_stats
    from skin_model.registry import Registry

    own = {"cool (blue) colour cast": 0.0, "warm (yellow) colour cast": 0.5}
    metadata = servable(tiny_model) | {"alert_threshold": 1.0, "alert_threshold_unusual": 0.0}
    metadata |= {"alert_threshold_by_warning": own}
    cast = image_stats(lesion)["cast_blue_red"]
    metadata["gate"]["unusual_ranges"]["cast_blue_red"] = [cast - 0.05, cast + 0.05]
    predictor = Predictor.load(Registry().register(tiny_model, VersionRecord.from_dict(metadata)).number)

    held = [predictor.predict(shift.apply(c, lesion) if c else lesion).alert_threshold for c in (None, "cool cast")]
    warm = predictor.predict(shift.apply("warm cast", lesion))

    assert held == [1.0, 0.0]
    assert warm.alert_threshold == 0.5 and any("stricter melanoma alert threshold 50.0 %" in w for w in warm.warnings)


def test_a_warning_threshold_outside_the_two_is_refused_with_one_line(tiny_model, servable):
    from skin_model.errors import RegistryError

    metadata = servable(tiny_model) | {"alert_threshold": 0.2, "alert_threshold_unusual": 0.1}
    metadata |= {"alert_threshold_by_warning": {"dark vignette at the corners": 0.3}}
    with pytest.raises(RegistryError, match=r"alert_threshold_by_warning .* in \[0\.1, 0\.2\]"):
        VersionRecord.from_dict(metadata)  # never written
    version = stored_as(tiny_model, metadata)

    with pytest.raises(RegistryError, match=r"model version \d+: alert_threshold_by_warning .* in \[0\.1, 0\.2\]"):
        Predictor.load(version.number)  # nor read


def test_several_pictures_of_one_lesion_average_their_calibrated_logits(loud_tiny_model, servable, blob):
    from skin_model.evaluate import softmax
    from skin_model.registry import Registry

    version = Registry().register(loud_tiny_model, VersionRecord.from_dict(servable(loud_tiny_model)), activate=True)
    predictor = Predictor.load(version.number)
    pictures = [("a.png", blob("melanoma", 1, 96)), ("b.png", blob("nevus", 2, 96)), ("c.png", blob("nevus", 3, 96))]

    combined, own = predictor.predict_lesion(pictures, name="lesion 1")

    logits = [predictor.logits_features(pixels)[0].mean(axis=0) for _, pixels in pictures]
    expected = softmax(np.mean(logits, axis=0, keepdims=True), predictor.temperature)[0]
    assert list(combined.probabilities.values()) == pytest.approx(list(expected), abs=1e-6)
    assert combined.pictures == 3 and combined.file == "lesion 1"
    assert [p.file for p in own] == ["a.png", "b.png", "c.png"]
    assert own[0].probabilities == predictor.predict(pictures[0][1], name="a.png").probabilities
    assert combined.probabilities != own[0].probabilities


def test_a_class_the_version_cannot_predict_has_an_empty_download_cell(tiny_model, servable, lesion):
    from skin_model.registry import Registry

    counts = {name: 50 for name in CLASSES} | {"seborrheic keratosis": 0}
    metadata = servable(tiny_model) | {"data": {"train_counts": counts}}
    predictor = Predictor.load(Registry().register(tiny_model, VersionRecord.from_dict(metadata), activate=True).number)

    result = predictor.predict(lesion)
    (row,) = batch_rows([result], "now")

    assert result.unpredictable == ("seborrheic keratosis",)
    assert row["p_seborrheic keratosis"] is None and row["p_nevus"] is not None
    assert row["not_predicted"] == "seborrheic keratosis"
    assert row["headline"].startswith(("Melanoma alert", "No melanoma alert"))


def test_heat_mostly_outside_the_central_field_is_flagged_and_heat_on_the_lesion_is_not():
    from skin_model import explain

    yy, xx = np.mgrid[0:100, 0:100]
    centre = np.exp(-((yy - 50) ** 2 + (xx - 50) ** 2) / 200.0)
    rim = np.zeros((100, 100))
    rim[:12], rim[:, -12:] = 1.0, 1.0  # a ruler at the top, the dermatoscope's rim on the right

    assert explain.heat_outside(centre) < 0.05 and not explain.looked_outside(centre)
    assert explain.heat_outside(rim) > 0.9 and explain.looked_outside(rim)
    assert explain.heat_outside(np.zeros((10, 10))) == 0.0
    assert explain.legend()[0] == (0.0, (0, 0, 0)) and explain.legend()[-1] == (1.0, (255, 255, 0))


def test_grad_cam_is_on_by_default_only_for_a_network_measured_under_0_3_s():
    from skin_model import explain

    assert explain.cheap(TrainConfig(backbone="custom-cnn")) and explain.cheap(TrainConfig.from_dict({}))
    assert not explain.cheap(TrainConfig(backbone="efficientnet-lite0"))
