"""The clinician's paths through the real app in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from e2e_support import (
    BARS,
    PASSWORD,
    download_report,
    lesion,
    open_page,
    probabilities,
    quick_trial,
    train_from_the_page,
    wait_idle,
)
from PIL import Image

from skin_model import CLASSES
from skin_model.registry import Registry

pytestmark = pytest.mark.e2e


REAL_DATA = os.environ.get("SKIN_DATA_DIR")  # read at import: the per-test fixture clears it


def real_or_generated_image(tmp_path: Path) -> Path:
    """A real ISIC image when the shared data is there (CI), else a generated lesion."""
    found = sorted(Path(REAL_DATA).glob("Train/melanoma/*.jpg")) if REAL_DATA else []
    if found:
        return found[0]
    path = tmp_path / "lesion.png"
    Image.fromarray(lesion(7, 180)).save(path)
    return path


def test_upload_shows_nine_probabilities_and_a_top_diagnosis(app_server, page, tmp_path):
    image = real_or_generated_image(tmp_path)
    open_page(page, app_server["url"] + "/classify")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(image))
    wait_idle(page)
    bars = page.locator(BARS).first
    if REAL_DATA is None and page.get_by_text("No diagnosis").count():  # a generated image may be refused
        assert bars.count() == 0  # and then no probabilities are shown at all
        return
    bars.wait_for()
    shown = probabilities(page)
    not_predicted = page.locator(".skin-unpredictable").count()  # classes this version cannot call: no bar
    assert set(shown) <= set(CLASSES) and len(shown) + not_predicted == len(CLASSES)
    percents = list(shown.values())
    assert percents == sorted(percents, reverse=True)  # most likely first
    assert abs(sum(percents) - 100) < 1.0
    heading = page.locator("h3").filter(has_text=re.compile("Melanoma alert|Most likely")).first.inner_text()
    if heading.startswith("No melanoma alert"):  # the top diagnosis is the headline only without an alert
        top_class, top_pct = re.match(r"No melanoma alert\. Most likely: (.+) \(([\d.]+) %\)", heading).groups()
        assert top_class in CLASSES and abs(float(top_pct) - max(percents)) < 0.2
    assert page.get_by_text("Risk group:").count() >= 1
    page.get_by_role("button", name="Download CSV").wait_for()  # the summary comes after the bars
    assert page.get_by_role("button", name="Download CSV").count() == 1


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is installed by `make test`")
def test_similar_cases_are_shown_and_the_pdf_report_downloads_from_the_page(app_server, page, tmp_path):
    image = tmp_path / "Jane Doe 1970-01-01.png"  # a file name that names a patient must not reach the PDF
    Image.fromarray(lesion(7, 180)).save(image)
    open_page(page, app_server["url"] + "/classify")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(image))
    wait_idle(page)
    refused = page.get_by_text("No diagnosis").count() > 0
    if not refused:  # the data folder here is a tiny generated one: each case links to its ISIC page instead
        assert page.get_by_text(re.compile(r"most similar training image")).count() == 1
        links = page.locator("a[href^='https://api.isic-archive.com/images/ISIC_']")
        assert links.count() == 6
    pdf = tmp_path / "report.pdf"
    download_report(page, "ward 3 / case 8", pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Skin lesion decision-support report" in text and "model version 1" in text
    assert "ward 3 / case 8" in text
    assert ("No diagnosis" in text) if refused else ("Most likely diagnoses" in text and "the alert threshold" in text)
    assert "Jane Doe" not in text
    assert not list(app_server["home"].rglob("*.pdf"))  # built in memory, never stored


def test_unreadable_upload_gets_one_line_and_the_batch_goes_on(app_server, page, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(lesion(3, 120)).save(good)
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is a text file, not a photo")
    open_page(page, app_server["url"] + "/classify")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(bad), str(good)])
    wait_idle(page)
    page.locator(BARS).first.wait_for()
    errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
    assert any("notes.jpg" in e and "not a supported image" in e for e in errors)
    assert "Traceback" not in page.content()
    assert page.locator(BARS).count() == 1


def test_dataset_page_shows_balance_before_and_after(app_server, page):
    open_page(page, app_server["url"] + "/dataset")
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    legend = chart.locator(".legendtext").all_text_contents()
    assert legend == ["before balancing", "after balancing"]
    assert chart.locator("g.trace.bars").count() == 2
    page.get_by_text("Conflicting labels").first.wait_for()  # the audit section renders after the chart
    assert page.get_by_text("Conflicting labels").count() == 1


def test_retrain_from_the_browser_and_make_it_live(app_server, page):
    home: Path = app_server["home"]
    open_page(page, app_server["url"] + "/retrain")
    assert page.get_by_role("button", name="Start training").is_disabled()
    page.get_by_label("Admin password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("wrong password").wait_for(timeout=60_000)  # the rerun may start late on a busy machine
    assert page.get_by_text("wrong password").count() == 1
    page.get_by_label("Admin password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    wait_idle(page)
    quick_trial(page)
    state = train_from_the_page(page, home)
    assert state == "FINISHED", page.locator("[data-testid='stAlert']").all_inner_texts()
    make_live = page.get_by_role("button", name="Make version 2 live")
    make_live.wait_for(timeout=30_000)
    make_live.click()
    page.get_by_text("Live model: version 2").first.wait_for(timeout=60_000)  # the sidebar, after the switch
    assert json.loads((home / "models" / "live.json").read_text())["version"] == 2
    assert Registry(home / "models").versions()[-1].record.config.image_size == 64  # as set on the form


def test_a_running_job_is_still_shown_after_the_app_restarts(tiny_dataset, tmp_path, browser, monkeypatch, stop_job):
    from e2e_support import free_port, start_app, wait_healthy

    from skin_model import jobs
    from skin_model.config import BalanceConfig, TrainConfig

    home = tmp_path / "home"
    monkeypatch.setenv("SKIN_HOME", str(home))
    endless = TrainConfig(epochs=200, image_size=32, batch_size=4, width=4, balance=BalanceConfig(n=40))
    job = jobs.start(tiny_dataset, endless)
    try:
        for _ in range(2):  # the app before and after a hard restart
            port = free_port()
            with (tmp_path / "server.log").open("a") as log:
                server = start_app(port, log, SKIN_HOME=str(home))
            url = f"http://127.0.0.1:{port}"
            assert wait_healthy(url)
            context = browser.new_context(viewport={"width": 1400, "height": 1800})
            page = context.new_page()
            open_page(page, url + "/retrain")
            page.get_by_text("RUNNING", exact=True).wait_for(timeout=60_000)
            page.get_by_text(re.compile(r"^epoch \d+/200")).wait_for(timeout=60_000)
            context.close()
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
            assert jobs.refresh(job).state == "RUNNING"  # the worker outlives the server
    finally:
        stopped = stop_job(job)
    assert stopped.state == "KILLED"


def test_a_fresh_server_serves_several_first_visitors_of_a_sub_page_at_once(browser, tmp_path):
    from e2e_support import free_port, start_app, wait_healthy

    port = free_port()
    with (tmp_path / "server.log").open("w") as log:
        server = start_app(port, log, SKIN_HOME=str(tmp_path / "home"))
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(url)
        pages = [context.new_page() for _ in range(4)]
        for page in pages:  # all four before the server has run any script
            page.goto(url + "/classify", wait_until="commit")
        for page in pages:
            page.locator("[data-testid='stFileUploaderDropzoneInput']").wait_for(state="attached", timeout=90_000)
            wait_idle(page)
            shown = page.locator("body").inner_text()
            assert page.locator("[data-testid='stException']").count() == 0, shown
            assert page.locator("[data-testid='stFileUploaderDropzoneInput']").count() == 1, shown
            assert "Live model: version" in shown  # the entry script ran: sidebar and navigation
    finally:
        context.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    assert "Traceback" not in (tmp_path / "server.log").read_text()
