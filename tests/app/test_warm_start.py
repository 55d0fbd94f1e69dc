"""The live model is warmed up off the page once loaded, so the first upload is as fast as later ones."""

from __future__ import annotations

import threading
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def join_warm_ups() -> None:
    for thread in threading.enumerate():
        if thread.name == "warm-up":
            thread.join(timeout=60)


def test_the_first_page_starts_a_warm_up_prediction_in_the_background_before_any_upload(live_tiny_model, monkeypatch):
    from pages import common
    from skin_model.predict import Predictor

    join_warm_ups()  # an earlier test's warm-up must not be counted as this one's
    predicted = []
    original = Predictor.predict

    def recording(self, pixels, name="image", **options):
        predicted.append((name, threading.current_thread().name))
        return original(self, pixels, name=name, **options)

    monkeypatch.setattr(Predictor, "predict", recording)
    common._predictor.clear()  # a fresh server: no model loaded yet
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, [e.message for e in at.exception]
    join_warm_ups()
    assert predicted == [("warm-up", "warm-up")]  # one dummy prediction, on its own thread, no upload yet


def test_the_classify_page_offers_its_uploader_only_once_the_warm_up_has_run(live_tiny_model, monkeypatch):
    """Just after a restart an upload waited on the model's tracing with no sign why; the page now waits first."""
    import time

    from pages import common
    from skin_model.predict import Predictor

    join_warm_ups()
    finished = []
    original = Predictor.predict

    def slow_warm_up(self, pixels, name="image", **options):
        if name == "warm-up":
            time.sleep(3)  # a slow first trace on a busy machine
        result = original(self, pixels, name=name, **options)
        finished.append(name)
        return result

    monkeypatch.setattr(Predictor, "predict", slow_warm_up)
    common._predictor.clear()  # a fresh server: no model loaded yet
    at = AppTest.from_file(APP, default_timeout=120).run()  # Home loads the model: its warm-up starts
    assert finished == []  # Home does not wait for it
    at.switch_page("pages/classify.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert finished == ["warm-up"]  # done before the page (and its uploader) finished drawing
    assert len(at.get("file_uploader")) == 1
    join_warm_ups()
