"""Confirmed cases end to end in the browser: add three on Classify, see them, retrain with them, audit on them."""

from __future__ import annotations

import re
import time

import pytest
from e2e_support import PASSWORD, lesion, open_page, quick_trial, train_from_the_page, wait_idle
from PIL import Image

from skin_model import cases
from skin_model.predict import Predictor
from skin_model.registry import Registry

pytestmark = pytest.mark.e2e


def accepted_lesions(tmp_path, count: int) -> list:
    """Generated lesions the committed default's gate accepts (a refused image gets no add-case form)."""
    predictor = Predictor.load(1, Registry(tmp_path / "registry"))
    found = []
    for seed in range(500, 600):
        pixels = lesion(seed, 160)
        if predictor.predict(pixels).lesion_like:
            path = tmp_path / f"case-{seed}.png"
            Image.fromarray(pixels).save(path)
            found.append(path)
        if len(found) == count:
            return found
    pytest.fail("fewer than three generated lesions pass the gate")


def test_three_cases_added_in_the_browser_are_shown_trained_on_and_scored(app_server, page, tmp_path, monkeypatch):
    monkeypatch.setenv("SKIN_HOME", str(app_server["home"]))  # read the server's cases as the package does
    images = accepted_lesions(tmp_path, 3)
    for i in range(3):  # one image a visit: its result, and its add-case form, stand on the page
        open_page(page, app_server["url"] + "/classify")
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(images[i])])
        wait_idle(page)
        page.get_by_text("Admin: confirmed cases and the alert threshold").click()  # one sign-in box for the page
        page.get_by_label("Admin password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        wait_idle(page)
        button = page.get_by_role("button", name="Add confirmed case")
        if not button.is_visible():
            page.get_by_text("Add as a confirmed case").click()
        button.click()
        wait_idle(page)
        start, clicked_again = time.time(), False
        while len(cases.all_cases()) < i + 1:  # stored before the next click: a busy page drops none
            # a click can land while a loaded machine redraws the form; a second one is safe (duplicates are refused)
            if not clicked_again and time.time() > start + 20:
                button.click()
                clicked_again = True
            assert time.time() < start + 90, f"case {i + 1} was not stored"
            page.wait_for_timeout(300)
        wait_idle(page)  # the run that stored it has finished drawing: the next button is not replaced mid-click

    open_page(page, app_server["url"] + "/dataset")
    page.get_by_text("Confirmed cases: 3").wait_for(timeout=60_000)

    open_page(page, app_server["url"] + "/retrain")  # a new page load is a new session: sign in again
    page.get_by_label("Admin password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    wait_idle(page)
    assert page.get_by_text("Include the 3 confirmed case(s)").count() == 1
    quick_trial(page)
    assert train_from_the_page(page, app_server["home"]) == "FINISHED"

    newest = Registry(app_server["home"] / "models").versions()[-1]
    assert newest.record.data.cases.count == 3
    assert newest.record.config.image_size == 64
    open_page(page, app_server["url"] + "/models")
    page.get_by_text("On this clinic's confirmed cases").wait_for(timeout=60_000)
    tables = page.locator("[data-testid='stDataFrame']")
    assert tables.count() >= 2
    assert page.get_by_text(re.compile(r"3 confirmed case\(s\)\. Each version is scored only")).count() == 1
