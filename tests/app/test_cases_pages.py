"""Confirmed cases in the pages (AppTest): an admin adds one on Classify; Dataset, Retrain and Models show them."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from skin_model import cases
from tests.app.test_pages import open_page, texts


@pytest.fixture
def admin(monkeypatch):
    monkeypatch.setenv("SKIN_ADMIN_PASSWORD", "right")


def sign_in(at: AppTest) -> AppTest:
    next(t for t in at.text_input if t.label == "Admin password").input("right")
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_an_admin_adds_the_shown_image_as_a_confirmed_case_once(live_tiny_model, admin, blob, encode):
    at = open_page("pages/classify.py")
    image = encode(blob("melanoma", 4, size=120), "PNG")
    at.file_uploader[0].set_value([("Jane Doe.png", image, "image/png")]).run()
    assert not [b for b in at.button if b.label == "Add confirmed case"]  # not signed in: no form
    sign_in(at)  # the one sign-in box at the end of the page

    next(s for s in at.selectbox if s.label == "Confirmed diagnosis").set_value("melanoma")
    next(s for s in at.selectbox if s.label == "Confirmed by").set_value("histopathology")
    next(t for t in at.text_input if t.label == "Note (optional)").input("excised")
    next(b for b in at.button if b.label == "Add confirmed case").click().run()

    [case] = cases.all_cases()
    assert (case.diagnosis, case.confirmed_by, case.note) == ("melanoma", "histopathology", "excised")
    assert case.model_version == live_tiny_model.number and case.prediction["top_class"]
    assert any(case.id in s.value for s in at.success)
    assert "Jane" not in str(case.to_dict())  # the file name is not kept

    next(b for b in at.button if b.label == "Add confirmed case").click().run()  # the same image again
    assert any("already confirmed case" in e.value for e in at.error)
    assert len(cases.all_cases()) == 1


def test_dataset_retrain_and_models_pages_show_the_cases(live_tiny_model, clean_dataset, lesion_images, monkeypatch):
    monkeypatch.setenv("SKIN_DATA_DIR", str(clean_dataset.root))
    for pixels, diagnosis in zip(lesion_images(3, seed=70, size=64), ["melanoma", "melanoma", "nevus"], strict=True):
        cases.add(pixels, diagnosis, "histopathology")

    dataset = open_page("pages/dataset.py")
    assert "Confirmed cases: 3" in texts(dataset)
    table = next(d.value for d in dataset.dataframe if "confirmed by" in d.value.columns)
    assert sorted(table["diagnosis"]) == ["melanoma", "melanoma", "nevus"]

    retrain = open_page("pages/retrain.py")
    assert any(t.label == "Include the 3 confirmed case(s)" and t.value for t in retrain.toggle)

    models = open_page("pages/models.py")
    scored = next(d.value for d in models.dataframe if "cases it never saw" in d.value.columns)
    row = scored[scored["version"] == live_tiny_model.number].iloc[0]
    assert row["cases it never saw"] == 3
    assert row["melanomas caught / all"].endswith("/ 2")


def test_a_truncated_case_file_keeps_the_live_versions_row_on_the_models_page(live_tiny_model, lesion_images):
    added = [cases.add(p, "melanoma", "histopathology") for p in lesion_images(3, seed=71, size=64)]
    path = cases.image_path(added[1])
    path.write_bytes(path.read_bytes()[:200])  # a truncated PNG (issue 32, item 9)

    models = open_page("pages/models.py")
    scored = next(d.value for d in models.dataframe if "cases it never saw" in d.value.columns)
    row = scored[scored["version"] == live_tiny_model.number].iloc[0]
    assert row["cases it never saw"] == 2 and row["unreadable case files"] == 1
    assert added[1].id in texts(models)  # named, so it can be removed
