"""Issue 30 on the Classify page: one headline per result, the alert's cost, triage, one lesion, Grad-CAM."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from skin_model import CLASSES
from skin_model.record import VersionRecord
from skin_model.registry import Registry

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
ALERT_COST = {"metrics": {"test": {"images": 307, "melanoma_sensitivity": 0.931, "melanoma_specificity": 0.619}}}


def open_classify() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/classify.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def upload(at: AppTest, *images, encode) -> AppTest:
    files = [(f"img{i}.png", encode(pixels, "PNG"), "image/png") for i, pixels in enumerate(images)]
    at.file_uploader[0].set_value(files).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def headlines(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("### ")] + [e.value for e in at.error]


def test_an_alert_is_the_headline_with_its_cost_and_the_diagnoses_follow_as_most_likely(
    tiny_model, blob, encode, servable
):
    metadata = servable(tiny_model) | {"alert_threshold": 0.01} | ALERT_COST  # the untrained net gives 1/9 each
    Registry().register(tiny_model, VersionRecord.from_dict(metadata), activate=True)
    at = upload(open_classify(), blob("nevus", 2, 120), encode=encode)

    (alert,) = at.error
    assert alert.value.startswith("### Melanoma alert: consider excision or biopsy\nP(melanoma) 11.1 % reaches")
    assert "the alert threshold 1.0 %." in alert.value and "miss few melanomas" in alert.value
    assert "raised on 38 of 100 benign lesions and catches 93 of 100 melanomas (measured on the held-out" in alert.value
    assert headlines(at) == [alert.value]  # no "### nevus: 92.7 %" under the alert
    assert any(m.value == "**Most likely diagnoses**" for m in at.markdown)
    risk = next(m.value for m in at.markdown if m.value.startswith("Risk group: "))
    assert risk.startswith("Risk group: intermediate (the malignant diagnoses together 33.3 %")  # not "malignant"


def test_a_class_the_version_cannot_predict_is_shown_as_not_predicted(tiny_model, blob, encode, servable):
    counts = {name: 40 for name in CLASSES} | {"seborrheic keratosis": 0}
    Registry().register(
        tiny_model, VersionRecord.from_dict(servable(tiny_model) | {"data": {"train_counts": counts}}), activate=True
    )
    at = upload(open_classify(), blob("nevus", 2, 120), encode=encode)

    bars = next(h.value for h in at.html if "skin-probabilities" in h.value)
    assert "seborrheic keratosis</span><span>not predicted" in bars
    assert bars.count("class='pct'") == 8  # a bar and a percentage only for the classes it can call


def test_the_alert_threshold_slider_is_for_a_signed_in_admin_and_its_change_is_announced(
    tiny_model, blob, encode, servable, monkeypatch
):
    curve = [  # validated thresholds the slider offers: always alert, never alert
        {"threshold": 0.0, "sensitivity": 1.0, "specificity": 0.0},
        {"threshold": 1.0, "sensitivity": 0.7, "specificity": 1.0},
    ]
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    Registry().register(
        tiny_model, VersionRecord.from_dict(servable(tiny_model) | {"operating_curve": curve}), activate=True
    )
    at = upload(open_classify(), blob("melanoma", 2, 120), encode=encode)
    assert not at.select_slider  # a clinician reads the version's threshold; no slider
    assert "Melanoma alert at P(melanoma) 50.0 %" in " ".join(c.value for c in at.sidebar.caption)

    next(t for t in at.text_input if t.label == "Admin password").input("right")
    next(b for b in at.button if b.label == "Sign in").click().run()
    slider = at.select_slider[0]
    assert list(slider.options) == ["0.0 %", "50.0 %", "100.0 %"]  # percentages, as every threshold read
    slider.set_value(0.0).run()
    assert at.error[0].value.startswith("### Melanoma alert")
    assert any("changed for this session only" in w.value and "held to 0.0 %" in w.value for w in at.warning)
    at.select_slider[0].set_value(1.0).run()
    assert not at.error and headlines(at)[0].startswith("### No melanoma alert")
    next(b for b in at.button if b.label == "Sign out").click().run()
    assert not at.select_slider and not any("changed for this session" in w.value for w in at.warning)


def test_a_batch_opens_on_a_triage_table_alerts_first_each_row_with_its_detail_below(
    loud_tiny_model, servable, encode, blob
):
    from skin_model.predict import Predictor

    kinds = (("nevus", 1), ("melanoma", 2), ("nevus", 3), ("basal cell carcinoma", 4))
    images = [blob(label, seed, 120) for label, seed in kinds]
    version = Registry().register(loud_tiny_model, VersionRecord.from_dict(servable(loud_tiny_model)), activate=True)
    p_mel = [Predictor.load(version.number).predict(px).melanoma_probability for px in images]
    threshold = sorted(p_mel)[2]  # the two highest alert
    Registry().register(
        loud_tiny_model,
        VersionRecord.from_dict(servable(loud_tiny_model) | {"alert_threshold": threshold}),
        activate=True,
    )
    at = upload(open_classify(), *images, encode=encode)

    table = at.dataframe[0].value
    assert list(table.columns) == ["", "image", "result", "P(melanoma)", "risk group", "warnings"]
    assert table[""].str.startswith("data:image/png;base64,").all()  # the thumbnails
    alerted = sorted(range(4), key=lambda i: -p_mel[i])[:2]
    assert list(table["image"])[:2] == [f"img{i}.png" for i in alerted]
    assert list(table["result"])[:2] == ["Melanoma alert: consider excision or biopsy"] * 2
    assert all(r.startswith("No melanoma alert") for r in list(table["result"])[2:])
    labels = [e.label for e in at.expander if e.label[:1].isdigit()]
    assert len(labels) == 4 and labels[0].startswith(f"1. ` img{alerted[0]}.png `: Melanoma alert")
    assert len(at.error) == 2  # each alerted image's detail leads with its alert


def test_pictures_marked_as_one_lesion_give_one_combined_result_and_each_pictures_own(
    loud_tiny_model, servable, encode, blob
):
    Registry().register(loud_tiny_model, VersionRecord.from_dict(servable(loud_tiny_model)), activate=True)
    at = upload(open_classify(), blob("nevus", 1, 120), blob("melanoma", 2, 120), blob("nevus", 3, 120), encode=encode)
    assert at.dataframe  # three images: a batch until they are marked as one lesion
    next(t for t in at.toggle if t.label.startswith("These pictures show one lesion")).set_value(True).run()

    assert not at.dataframe and not [e for e in at.expander if e.label[:1].isdigit()]
    assert any(m.value.startswith("**Most likely diagnoses** (combined from 3 pictures)") for m in at.markdown)
    assert any(m.value == "**Each picture's own result**" for m in at.markdown)
    assert len(headlines(at)) == 1  # one headline for the lesion; each picture's own below in bold


def test_grad_cam_stands_beside_the_image_by_default_with_a_colour_legend(live_tiny_model, blob, encode):
    at = upload(open_classify(), blob("nevus", 2, 120), encode=encode)

    captions = [c for image in at.image for c in image.captions]
    assert captions == ["` img0.png `", "Grad-CAM: where the network looked"]  # side by side in one row
    assert any("skin-cam-legend" in h.value and "looked at most" in h.value for h in at.html)


def test_models_page_compares_two_different_versions_with_rounded_figures(live_tiny_model):
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/models.py")
    at.run()

    a, b = (next(s for s in at.selectbox if s.label == f"Version {x}") for x in "AB")
    assert (a.value, b.value) == (live_tiny_model.number, 1)  # the newest (live) beside the one before
    listed = at.dataframe[0].value
    assert listed["balanced accuracy"][0].endswith("%") and len(listed["created"][0]) == 10


def test_retrain_asks_for_a_confirmation_naming_the_expected_time_before_it_starts(
    monkeypatch, skin_home, clean_dataset
):
    import json

    from skin_model.config import DEFAULT_MODEL_DIR

    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    monkeypatch.setenv("SKIN_DATA_DIR", str(clean_dataset.root))  # the folder is checked before the question
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/retrain.py")
    at.run()
    next(t for t in at.text_input if t.label == "Admin password").input("right")
    next(b for b in at.button if b.label == "Sign in").click().run()
    next(b for b in at.button if b.label == "Start training").click().run()

    per_epoch = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())["training"]["seconds_per_epoch"]
    asked = next(w.value for w in at.warning if w.value.startswith("**Start training?**"))
    assert f"at the live version's {per_epoch:.0f} s an epoch" in asked and " min (" in asked
    assert not (skin_home / "jobs").exists()  # nothing started before the answer
    next(b for b in at.button if b.label == "Not now").click().run()
    assert not [w for w in at.warning if w.value.startswith("**Start training?**")]
    assert not (skin_home / "jobs").exists()
