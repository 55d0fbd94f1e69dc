"""What users type or upload reaches the page as text, never as markup, and never as a traceback."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from skin_model.record import VersionRecord

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
HOSTILE = "![t](http://127.0.0.1:9/beacon.png) [x](javascript:alert(3)) **B**"


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def shown_text(markdown_body: str) -> str:
    """The text a reader sees for a markdown body; fails if it would render any markup (image, link, bold...).

    Only paragraphs and code spans may appear: CommonMark renders a code span's content as is, and
    GFM's autolinks, emoji and Streamlit's directives leave it alone too.
    """
    rendered = MarkdownIt("commonmark").render(markdown_body)
    tags = set(re.findall(r"</?([a-z0-9]+)", rendered))
    assert tags <= {"p", "code"}, (tags, rendered)
    outside_code = re.sub(r"<code>.*?</code>", "", rendered, flags=re.S)
    assert "://" not in outside_code and "www." not in outside_code, rendered  # GFM would autolink it
    return html.unescape(re.sub(r"</?(p|code)>", "", rendered)).strip()


def sign_in(at: AppTest, password: str = "right") -> AppTest:
    next(t for t in at.text_input if t.label == "Admin password").input(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def type_folder(at: AppTest, page: str, text: str) -> AppTest:
    """Type a dataset folder the way each page takes it: live on Dataset, on submit on Retrain."""
    next(t for t in at.text_area if t.label.startswith("Dataset folders")).input(text)
    if page == "pages/retrain.py":
        next(b for b in at.button if b.label == "Start training").click()
    return at.run()


@pytest.mark.parametrize("page", ["pages/dataset.py", "pages/retrain.py"])
def test_a_nul_byte_in_the_dataset_folder_gets_the_one_line_refusal(page, tmp_path, monkeypatch, live_tiny_model):
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    at = open_page(page)
    if page == "pages/retrain.py":
        sign_in(at)
    type_folder(at, page, f"{tmp_path}\x00/etc")
    assert not at.exception, [e.message for e in at.exception]
    refusals = [shown_text(e.value) for e in at.error]
    assert refusals == [f"{tmp_path}\\x00/etc: not a usable folder (embedded null byte)"]


@pytest.mark.parametrize("page", ["pages/dataset.py", "pages/retrain.py"])
def test_a_typed_folder_with_markdown_is_shown_as_typed(page, tmp_path, monkeypatch, live_tiny_model):
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    at = open_page(page)
    if page == "pages/retrain.py":
        sign_in(at)
    typed = f"{tmp_path}/{HOSTILE}"
    type_folder(at, page, typed)
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.error) == 1
    assert str(Path(typed)) in shown_text(at.error[0].value)  # the folder as the message names it, markup and all


def test_an_uploaded_file_name_with_markdown_is_shown_as_typed(live_tiny_model):
    at = open_page("pages/classify.py")
    name = HOSTILE + ".png"
    at.file_uploader[0].set_value([(name, b"not an image at all", "image/png")]).run()
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.error) == 1
    assert shown_text(at.error[0].value).startswith(name + ": not a supported image")


def test_the_csv_download_writes_a_formula_like_file_name_as_text(live_tiny_model, blob, encode, monkeypatch):
    import csv
    import io

    from streamlit.elements.widgets.button import ButtonMixin

    downloads: dict[str, str] = {}
    original = ButtonMixin.download_button

    def keep_data(self, label, data, *args, **kwargs):  # pass-through: records what the user would download
        downloads[label] = data
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(ButtonMixin, "download_button", keep_data)
    at = open_page("pages/classify.py")
    name = '=HYPERLINK("http://127.0.0.1:9/x","open").png'
    at.file_uploader[0].set_value([(name, encode(blob("melanoma", 5, size=120), "PNG"), "image/png")]).run()
    assert not at.exception, [e.message for e in at.exception]
    (row,) = csv.DictReader(io.StringIO(downloads["Download CSV"]))
    assert row["file"] == "'" + name
    assert 0.0 <= float(row["melanoma_probability"]) <= 1.0  # numbers are still numbers


def test_the_upload_widget_accepts_every_type_the_decoder_does_gif_included(live_tiny_model, blob, encode):
    from skin_model import images

    at = open_page("pages/classify.py")
    uploader = at.file_uploader[0]
    assert sorted(uploader.proto.type) == sorted(images.EXTENSIONS) and ".gif" in uploader.proto.type
    assert images.FORMAT_NAMES in uploader.label
    gif, png = encode(blob("nevus", 6, size=120), "GIF"), encode(blob("nevus", 7, size=120), "PNG")
    uploader.set_value([("lesion.gif", gif, "image/gif"), ("other.png", png, "image/png")]).run()
    assert not at.exception and not at.error
    assert sorted(at.dataframe[0].value["image"]) == ["lesion.gif", "other.png"]  # both classified


def test_one_sessions_failed_sign_ins_do_not_lock_out_another_session_from_the_same_address(
    monkeypatch, live_tiny_model
):
    from skin_model import auth

    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")
    typist, admin = open_page("pages/retrain.py"), open_page("pages/retrain.py")  # two browsers, one address
    for _ in range(auth.MAX_FAILURES):
        sign_in(typist, "wrong")
    sign_in(typist, "right")
    assert any("too many failed sign-ins" in e.value for e in typist.error)  # that session is locked out
    sign_in(admin, "right")
    assert not admin.error and not next(b for b in admin.button if b.label == "Start training").disabled


INJECTED_NAME = "x2` ![b](https:127.0.0.1:8698) [Sign in again](https:127.0.0.1:8698) `"  # issue 32, item 1


def test_a_similar_case_named_with_markdown_is_shown_as_text_when_its_thumbnail_is_missing(
    tiny_model, servable, lesion_images
):
    """A training file's name reaches the page from the version's similar-case index, not from the upload."""
    from skin_model import robustness, similar
    from skin_model.images import to_png
    from skin_model.registry import Registry

    images = lesion_images(3, seed=11, size=64)
    features = robustness.embedder(tiny_model, 32)(images)[1]
    index = similar.Index(
        vectors=similar.unit(features.astype(np.float32)),
        diagnoses=("nevus",) * 3,
        sources=("isic_archive",) * 3,
        paths=tuple(f"Train/nevus/{INJECTED_NAME}{i}.png" for i in range(3)),
    )
    files = {similar.INDEX_FILE: index.to_bytes()}
    Registry().register(
        tiny_model, VersionRecord.from_dict(servable(tiny_model)), activate=True, files=files
    )  # no SKIN_DATA_DIR: no files
    at = open_page("pages/classify.py")
    at.file_uploader[0].set_value([("lesion.png", to_png(images[0]), "image/png")]).run()
    assert not at.exception, [e.message for e in at.exception]
    shown = [m.value for m in at.markdown if "distance" in m.value]
    assert len(shown) == 3
    for body in shown:
        rendered = MarkdownIt("commonmark").render(body)
        assert "<img" not in rendered and "<a " not in rendered, rendered
        assert INJECTED_NAME in html.unescape(re.search(r"<code>(.*?)</code>", rendered, re.S).group(1))


def test_the_summary_table_quotes_a_formula_file_name_for_its_own_csv_export(live_tiny_model, blob, encode):
    at = open_page("pages/classify.py")
    name = "+cmd|' /C calc'!A0.jpg"
    other = ("calm.png", encode(blob("nevus", 8, size=120), "PNG"), "image/png")  # a batch: the triage table
    at.file_uploader[0].set_value([(name, encode(blob("melanoma", 5, size=120), "PNG"), "image/png"), other]).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "'" + name in list(at.dataframe[0].value["image"])  # what "Download as CSV" of the table writes


def test_the_confirmed_cases_table_quotes_a_formula_note(clean_dataset, lesion_images, monkeypatch):
    from skin_model import cases

    monkeypatch.setenv("SKIN_DATA_DIR", str(clean_dataset.root))
    note = "@SUM(1+1)*cmd|' /C calc'!A0"
    cases.add(lesion_images(1, seed=71, size=64)[0], "nevus", "histopathology", note)
    at = open_page("pages/dataset.py")
    table = next(d.value for d in at.dataframe if "note" in d.value.columns)
    assert list(table["note"]) == ["'" + note]


def test_a_folder_name_too_long_for_the_system_is_one_line_on_the_dataset_page(tmp_path, monkeypatch):
    monkeypatch.setenv("SKIN_DATA_ROOT", str(tmp_path))
    at = open_page("pages/dataset.py")
    type_folder(at, "pages/dataset.py", str(tmp_path / ("a" * 5000)))
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.error) == 1 and "not a usable folder" in at.error[0].value
