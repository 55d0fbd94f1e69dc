"""Helpers for the browser tests: ports, generated images, waiting for Streamlit."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from playwright.sync_api import expect

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PASSWORD = "e2e-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lesion(seed: int, size: int = 96) -> np.ndarray:
    """A generated lesion with skin-like texture: an image the tests own (never patient data).

    Textured, because the not-a-lesion gate rightly refuses a flat disk on a flat background (a drawing).
    """
    from tests.conftest import textured_lesions

    return textured_lesions(1, seed=seed, size=size)[0]


def answered_lesion(predictor, size: int, first_seed: int = 10) -> np.ndarray:
    """The first generated lesion from ``first_seed`` on that ``predictor`` answers: a version's gate refuses some
    of them as drawings (which ones moves with its features), and a refused image shows no probabilities to time."""
    for seed in range(first_seed, first_seed + 100):
        pixels = lesion(seed, size)
        if predictor.predict(pixels).top_class is not None:
            return pixels
    raise RuntimeError(f"model version {predictor.version.number} refuses every generated lesion tried")


def open_page(page, url: str) -> None:
    page.goto(url)
    wait_idle(page)


def wait_idle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=90_000)


def start_app(port: int, log, **env: str) -> subprocess.Popen:
    """``streamlit run`` as `make run` does, on loopback, in its own process group."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=REPO,
        env=dict(os.environ, **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_healthy(url: str, timeout: float = 60) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                return True
        except OSError:
            time.sleep(0.5)
    return False


BARS = ".skin-probabilities"  # the Classify page's nine probability bars


def quick_trial(page) -> None:
    """Fill the Retrain form as a user asks for a quick trial run: the custom CNN, 2 epochs at 64 px on 6 images per
    class (the pretrained network's quick run is a unit test: tests/unit/test_pretrained.py)."""
    page.get_by_text("Custom CNN, trained from scratch").click()
    wait_idle(page)
    # The rerun draws the custom CNN's form (32 epochs) before it removes the other network's: wait for both,
    # in that order, or a look between the two sees only the old form.
    expect(page.locator("input[aria-label='Epochs'][value='32']")).to_have_count(1, timeout=60_000)
    epochs = page.get_by_label("Epochs", exact=True)
    expect(epochs).to_have_count(1, timeout=60_000)
    expect(epochs).to_have_value("32")
    epochs.fill("2")
    size = page.locator("[data-testid='stSlider']").filter(has_text="Image size (px)").get_by_role("slider")
    size.focus()
    size.press("Home")  # the smallest size offered
    page.get_by_label("Balancing N").fill("12")
    page.get_by_label("Images per class (0 = all; small values give a quick trial run)").fill("6")


def train_from_the_page(page, home: Path, timeout: float = 240) -> str:
    """Press Start training and wait until the page shows *that* job ended; its final state as shown.

    The panel shows the newest job, so an earlier test's FINISHED job is on the page until the new one
    is written: wait for the new job's own id first.
    """
    jobs = home / "jobs"
    listed = lambda: {p.name for p in jobs.iterdir() if (p / "status.json").exists()} if jobs.exists() else set()
    before = listed()
    page.get_by_role("button", name="Start training").click()
    wait_idle(page)
    page.get_by_role("button", name="Yes, start training").click()  # the confirmation naming the expected time
    wait_idle(page)
    deadline = time.time() + 60
    while not listed() - before:
        assert time.time() < deadline, "Start training started no job"
        time.sleep(0.3)
    (job_id,) = listed() - before
    panel = page.locator("p", has_text=f"Job {job_id}")
    ended = panel.get_by_text(re.compile(r"^(FINISHED|FAILED|KILLED|INTERRUPTED)$"))
    ended.wait_for(timeout=timeout * 1000)
    return ended.inner_text()


def probabilities(page, nth: int = 0) -> dict[str, float]:
    """The ``nth`` result's bars as shown: class name -> percent."""
    bars = page.locator(BARS).nth(nth)
    names = bars.locator(".name").all_text_contents()
    percents = [float(t.strip().rstrip("%")) for t in bars.locator(".pct").all_text_contents()]
    return dict(zip(names, percents, strict=True))


def download_report(page, reference: str, dest: Path):
    """Type a case reference, press "Download PDF report" and save the file to ``dest``; the download comes back."""
    box = page.get_by_role("textbox", name="Case reference for the PDF (optional)")
    box.fill(reference)
    box.press("Enter")
    wait_idle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download PDF report").click()
    download.value.save_as(dest)
    return download.value
