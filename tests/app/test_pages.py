"""Each page's logic through Streamlit's AppTest (no browser; the e2e tests cover that)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from skin_model.config import DEFAULT_MODEL_DIR
from skin_model.record import VersionRecord
from skin_model.registry import Registry

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader])


def test_home_names_the_live_model_and_its_test_metrics(tiny_model, servable):
    from skin_model.registry import Registry

    test = {"images": 40, "balanced_accuracy": 0.5, "melanoma_sensitivity": 0.9, "melanoma_specificity": 0.61}
    version = Registry().register(
        tiny_model, VersionRecord.from_dict(servable(tiny_model) | {"metrics": {"test": test}}), activate=True
    )
    at = open_page()
    lines = [m.value for m in at.markdown if m.value.startswith("- **")]
    assert f"Live model: version {version.number}" in texts(at)
    assert lines == [
        "- **Held-out test split** (40 images sharing no lesion with training, from the same sources): balanced "
        "accuracy 50.0% over 9 classes; the alert caught 90 of 100 melanomas and was raised on 39 of 100 other lesions."
    ]


def test_home_quotes_the_committed_default_on_images_from_elsewhere_first():
    at = open_page()  # a fresh home: the committed default is version 1
    lines = [m.value for m in at.markdown if m.value.startswith("- **")]
    meta = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())
    external = meta["external"]["isic2017/Validation"]
    assert lines[0].startswith("- **Images from elsewhere** (` isic2017/Validation `")
    assert f"melanoma ROC AUC {external['melanoma_roc_auc']:.2f}" in lines[0]  # two decimals, as a clinician reads
    assert f"seborrheic keratosis ROC AUC {external['challenge_2017']['seborrheic_keratosis_roc_auc']:.2f}" in lines[0]
    caught = round(100 * external["melanoma_sensitivity"])
    alerted = round(100 * (1 - external["melanoma_specificity"]))
    assert f"caught {caught} of 100 melanomas and was raised on {alerted} of 100 other lesions" in lines[1]
    assert lines[2].startswith("- **Held-out test split**")
    worst = max(m["refused"] for name, m in meta["robustness"]["stress"].items() if name != "none")
    shown = texts(at)
    assert f"the not-a-lesion gate refuses every one of its {meta['gate']['negatives']:,} fitting negatives" in shown
    assert f"at most {worst:.1%} under any of 10" in shown


def test_classify_shows_result_for_an_image_and_one_line_for_a_bad_file(live_tiny_model, blob, encode):
    at = open_page("pages/classify.py")
    good = encode(blob("melanoma", 1, size=120), "PNG")
    at.file_uploader[0].set_value([("lesion.png", good, "image/png"), ("notes.jpg", b"plain text", "image/jpeg")])
    at.run()
    assert not at.exception
    assert any("notes.jpg" in e.value and "not a supported image" in e.value for e in at.error)
    headings = [m.value for m in at.markdown if m.value.startswith("### ")]
    assert len(headings) == 1 and headings[0].startswith("### No melanoma alert. Most likely: ")
    assert "is below the alert threshold 50.0 %" in headings[0]
    assert any(m.value.startswith("Risk group: ") for m in at.markdown)
    assert not at.dataframe  # one result: no triage table, its detail at once


def test_classify_on_a_version_calibrated_on_eight_views_says_so_and_offers_no_single_view_switch(
    tiny_model, blob, encode, servable
):
    Registry().register(
        tiny_model, VersionRecord.from_dict(servable(tiny_model) | {"config": {"views": 8}}), activate=True
    )
    at = open_page("pages/classify.py")

    assert "averages 8 views of the image" in " ".join(c.value for c in at.sidebar.caption)
    assert not [t for t in at.sidebar.toggle if t.label.startswith("Test-time augmentation")]
    at.file_uploader[0].set_value([("lesion.png", encode(blob("nevus", 2, size=120), "PNG"), "image/png")])
    at.run()
    assert not at.exception and [m for m in at.markdown if m.value.startswith("### No melanoma alert")]


def test_dataset_page_explains_a_wrong_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIN_DATA_DIR", str(tmp_path / "nowhere"))
    at = open_page("pages/dataset.py")
    assert len(at.error) == 1 and "does not exist" in at.error[0].value


def test_dataset_page_counts_before_and_after_balancing(clean_dataset, monkeypatch):
    monkeypatch.setenv("SKIN_DATA_DIR", str(clean_dataset.root))
    at = open_page("pages/dataset.py")
    table = next(d.value for d in at.dataframe if "before" in d.value.columns)
    counted = table[table["before"] > 0]
    assert (counted["after"] == 400).all()
    at.number_input[0].set_value(30).run()
    table = next(d.value for d in at.dataframe if "before" in d.value.columns)
    assert (table[table["before"] > 0]["after"] == 30).all()


def test_retrain_without_a_password_explains_how_to_enable_it(monkeypatch):
    monkeypatch.delenv("SKIN_ADMIN_PASSWORD", raising=False)
    at = open_page("pages/retrain.py")
    assert any("SKIN_ADMIN_PASSWORD" in i.value for i in at.info)
    start = [b for b in at.button if b.label == "Start training"]
    assert start and start[0].disabled


def test_retrain_refuses_a_wrong_password(monkeypatch):
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    at = open_page("pages/retrain.py")
    password = next(t for t in at.text_input if t.label == "Admin password")
    password.input("wrong")
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert any("wrong password" in e.value for e in at.error)
    assert next(b for b in at.button if b.label == "Start training").disabled


@pytest.mark.parametrize("signed_in", [False, True])
def test_models_page_lists_versions_and_only_admins_switch(live_tiny_model, monkeypatch, signed_in):
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    at = open_page("pages/models.py")
    listed = list(at.dataframe[0].value["version"])
    assert listed == [v.number for v in Registry().versions()]
    views = dict(zip(listed, at.dataframe[0].value["views"], strict=True))
    committed = json.loads((DEFAULT_MODEL_DIR / "metadata.json").read_text())["config"]["views"]
    assert views == {1: committed, live_tiny_model.number: 1}  # the committed default; one registered without views
    assert not [b for b in at.button if b.label == "Make live"]
    if signed_in:
        next(t for t in at.text_input if t.label == "Admin password").input("right")
        next(b for b in at.button if b.label == "Sign in").click().run()
        assert [b for b in at.button if b.label == "Make live"]


def sign_in(at: AppTest, password: str = "right") -> AppTest:
    next(t for t in at.text_input if t.label == "Admin password").input(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def labels(at: AppTest) -> dict[str, bool]:
    """Every button on the page (sidebar included) and whether it is enabled."""
    return {b.label: not b.disabled for b in at.button}


def sign_out(at: AppTest) -> AppTest:
    next(b for b in at.button if b.label == "Sign out").click().run()
    assert not at.exception and "Sign out" not in labels(at)
    return at


def test_after_sign_out_make_live_is_gone_and_the_sign_in_box_is_back(live_tiny_model, monkeypatch):
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    at = sign_in(open_page("pages/models.py"))
    assert "Make live" in labels(at)
    sign_out(at)
    assert "Make live" not in labels(at)
    assert [t for t in at.text_input if t.label == "Admin password"]


def test_after_sign_out_start_and_cancel_are_gone_while_a_job_runs(clean_dataset, monkeypatch, stop_job):
    from skin_model import jobs
    from skin_model.config import BalanceConfig, TrainConfig

    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    job = jobs.start(clean_dataset.root, TrainConfig(epochs=200, image_size=32, width=4, balance=BalanceConfig(n=0)))
    try:
        at = sign_in(open_page("pages/retrain.py"))
        assert labels(at)["Start training"] and labels(at)["Cancel job"]
        sign_out(at)
        assert not labels(at)["Start training"] and "Cancel job" not in labels(at)
        assert jobs.refresh(job).active  # nothing was cancelled on the way
    finally:
        stop_job(job)


def test_an_idle_admin_sign_in_expires_and_activity_keeps_it(live_tiny_model, monkeypatch):
    from skin_model import auth

    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    at = sign_in(open_page("pages/models.py"))
    at.session_state["admin_active"] = time.time() - (auth.SESSION_MINUTES - 1) * 60  # idle 29 minutes
    at.run()
    assert "Make live" in labels(at)
    assert time.time() - at.session_state["admin_active"] < 60  # that page run counted as activity
    at.session_state["admin_active"] = time.time() - (auth.SESSION_MINUTES + 1) * 60  # idle 31 minutes
    at.run()
    assert "Make live" not in labels(at) and "Sign out" not in labels(at)
    assert any("expired" in i.value for i in at.info)


def test_the_idle_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    monkeypatch.setenv("SKIN_ADMIN_SESSION_MINUTES", "0.05")  # 3 s
    at = sign_in(open_page("pages/retrain.py"))
    assert labels(at)["Start training"]
    at.session_state["admin_active"] = time.time() - 3.5
    at.run()
    assert not labels(at)["Start training"] and any("expired after 0.05 minutes" in i.value for i in at.info)


def test_a_bad_idle_limit_fails_closed_with_one_line(monkeypatch):
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    monkeypatch.setenv("SKIN_ADMIN_SESSION_MINUTES", "forever")
    at = open_page("pages/retrain.py")
    assert any("SKIN_ADMIN_SESSION_MINUTES" in e.value for e in at.error)
    assert not labels(at)["Start training"] and not [t for t in at.text_input if t.label == "Admin password"]


PLANTED = ("Dr Planted Artist", "PLANTED-DESCRIPTION", "PlantedCam", "PLANTED-COMMENT", "PlantedProfile")


def jpeg_with_metadata(pixels) -> bytes:
    """A phone-style JPEG: EXIF with camera, author, description and a GPS position; an ICC profile; a comment."""
    import io

    from PIL import ExifTags, Image, ImageCms

    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Artist] = PLANTED[2], PLANTED[0]
    exif[ExifTags.Base.ImageDescription] = PLANTED[1]
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (48.0, 51.0, 29.5)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (2.0, 17.0, 40.2)
    profile = ImageCms.createProfile("sRGB")
    icc = ImageCms.ImageCmsProfile(profile).tobytes() + PLANTED[4].encode()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", exif=exif, icc_profile=icc, comment=PLANTED[3].encode(), quality=95)
    return buffer.getvalue()


def png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        chunks.append(data[at + 4 : at + 8].decode("ascii"))
        at += 12 + length
    return chunks


def pdf_text(data: bytes) -> str:
    """The words of a PDF (poppler's pdftotext, which `make test` installs); its streams are compressed."""
    import shutil
    import subprocess

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is installed by `make test`")
    return subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def test_an_image_is_stored_only_on_request_and_then_as_pixels_without_any_metadata(
    live_tiny_model, blob, skin_home, snapshot, monkeypatch
):
    import io

    from PIL import ExifTags, Image
    from streamlit.elements.widgets.button import ButtonMixin

    from skin_model.images import decode

    upload = jpeg_with_metadata(blob("melanoma", 3, size=160))
    sent = Image.open(io.BytesIO(upload))
    assert sent.getexif().get_ifd(ExifTags.IFD.GPSInfo) and sent.info["icc_profile"] and sent.info["comment"]
    downloads = []
    original = ButtonMixin.download_button

    def keep_data(self, label, data, *args, **kwargs):  # pass-through: records what the user would download
        downloads.append(data)
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(ButtonMixin, "download_button", keep_data)
    at = open_page("pages/classify.py")
    before = snapshot(skin_home)
    at.file_uploader[0].set_value([("lesion.jpg", upload, "image/jpeg")]).run()
    assert not at.exception and downloads
    assert snapshot(skin_home) == before  # classified, downloads offered, nothing written
    pdf = next(d for d in downloads if callable(d))()  # the PDF report is built only when pressed
    texts = [d for d in downloads if isinstance(d, str)] + [pdf_text(pdf)]
    assert len(downloads) == 3 and not any(p in d or "48.0" in d for d in texts for p in PLANTED)
    assert "lesion.jpg" not in texts[-1]  # the file name stays out of the PDF

    next(b for b in at.button if b.label == "Save this image for review").click().run()
    saved = sorted((skin_home / "saved").glob("*"))
    assert len(saved) == 1 and saved[0].suffix == ".png" and "lesion" not in saved[0].name
    data = saved[0].read_bytes()
    assert set(png_chunks(data)) == {"IHDR", "IDAT", "IEND"}  # no eXIf, iCCP, tEXt/zTXt/iTXt, tIME
    stored = Image.open(io.BytesIO(data))
    assert not stored.getexif() and not stored.info.get("icc_profile") and not any(p.encode() in data for p in PLANTED)
    assert (stored.convert("RGB").tobytes()) == decode(upload).tobytes()  # the upload's pixels, nothing else
    assert any("Saved as" in s.value for s in at.success)


def test_models_page_names_a_version_whose_metadata_is_not_an_object_instead_of_crashing(live_tiny_model):
    (live_tiny_model.path / "metadata.json").write_text("[]")  # issue 32, item 3

    at = open_page("pages/models.py")

    assert not at.exception, [e.message for e in at.exception]
    assert any("must hold a JSON object" in w.value for w in at.warning)


def test_a_finished_script_run_leaves_keras_and_its_kernel_cache_alone():
    """Streamlit clears Keras's session when a run ends, which also empties TensorFlow's kernel cache: the next
    upload's prediction took 330 ms instead of 20. Keras's name counters show whether a clear happened."""
    import keras

    keras.layers.Dense(1)
    open_page()  # one whole run of Home through Streamlit's own script runner, which cleans up after it
    assert keras.layers.Dense(1).name != "dense"  # a cleared session would count layer names from the start
