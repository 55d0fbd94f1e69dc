"""Ten browser sessions classify at the same time while a training job runs; each gets its own right answer.

`bench/app.py` measures how long this takes; this test checks what each session is shown. A Streamlit
session is one tab's websocket, so the ten sessions are ten tabs; they share one renderer process so
that a 2-core machine compiles the page's JavaScript once instead of ten times (half the test's time).
"""

from __future__ import annotations

import re
import time

import pytest
from e2e_support import BARS, CHROMIUM, CHROMIUM_ARGS, lesion, probabilities, wait_idle
from PIL import Image

from skin_model import jobs
from skin_model.config import BalanceConfig, TrainConfig
from skin_model.headline import headline
from skin_model.images import decode
from skin_model.predict import Predictor
from skin_model.registry import Registry

pytestmark = pytest.mark.e2e

SESSIONS = 10
# 500 epochs (the most allowed): the job must outlast ten sessions classifying with the Lite0 default
ENDLESS = TrainConfig(epochs=500, image_size=32, batch_size=4, width=4, balance=BalanceConfig(strategy="none"))
# Test harness only: ten software-rendered tabs animating Streamlit's "running" indicators cost more CPU than the app.
NO_ANIMATION = (
    "document.addEventListener('DOMContentLoaded', () => { const s = document.createElement('style');"
    " s.textContent = '*, *::before, *::after { animation: none !important; transition: none !important; }';"
    " document.head.appendChild(s); });"
)


@pytest.fixture(scope="module")
def shared_renderer(browser):
    """A second chromium from the session's Playwright, whose same-site tabs share one renderer process."""
    chromium = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, "--process-per-site"]
    )
    yield chromium
    chromium.close()


def shown(page) -> tuple[str, dict[str, float]]:
    """What one session renders: the headline (the alert, "No melanoma alert. Most likely: ..." or "No diagnosis")
    and each class's bar."""
    page.locator(BARS).first.or_(page.get_by_text("No diagnosis")).first.wait_for()
    wait_idle(page)
    if page.get_by_text("No diagnosis").count():  # refused: no probabilities at all
        return "No diagnosis", {}
    heading = page.locator("h3").filter(has_text=re.compile("alert")).first
    heading.wait_for()  # under load the bars can be on the page a moment before their headline
    return heading.inner_text(), probabilities(page)


def computed(predictor: Predictor, path) -> tuple[str, dict[str, float]]:
    """The same image through the package directly: the page's headline and its bars, rounded as shown."""
    result = predictor.predict(decode(path.read_bytes(), name=path.name), name=path.name)
    title = headline(result).title if result.lesion_like else "No diagnosis"
    return title, {name: round(100 * p, 1) for name, p in result.probabilities.items()}


SHARE = re.compile(r"^(.*)\(([\d.]+)%\)$")


def same_result(got: tuple[str, dict], want: tuple[str, dict]) -> bool:
    """Equal to one step of the last printed digit (two processes may sum floats in another order)."""
    (got_head, got_bars), (want_head, want_bars) = got, want
    if got_bars.keys() != want_bars.keys() or any(abs(got_bars[k] - want_bars[k]) > 0.11 for k in want_bars):
        return False
    if got_head == want_head:
        return True
    got_share, want_share = SHARE.match(got_head.strip()), SHARE.match(want_head.strip())
    return bool(
        got_share
        and want_share
        and got_share.group(1) == want_share.group(1)
        and abs(float(got_share.group(2)) - float(want_share.group(2))) <= 0.11
    )


def test_ten_sessions_at_once_during_training_each_get_their_own_correct_result(
    app_server, shared_renderer, tiny_dataset, tmp_path, monkeypatch, stop_job
):
    monkeypatch.setenv("SKIN_HOME", str(app_server["home"]))  # the app's own state: its job, its live model
    monkeypatch.setenv("SKIN_THREADS", "1")  # the worker inherits it: one core trains, one serves
    images = []
    for i in range(SESSIONS):
        images.append(tmp_path / f"lesion-{i}.png")
        Image.fromarray(lesion(20 + i, 128)).save(images[-1])

    registry = Registry()
    earlier = registry.live_number()
    registry.activate(1)  # the committed default model: an earlier test may have made a 2-epoch model live
    job = jobs.start(tiny_dataset, ENDLESS)
    context = shared_renderer.new_context(viewport={"width": 1000, "height": 800})
    context.add_init_script(NO_ANIMATION)
    try:
        pages = [context.new_page() for _ in range(SESSIONS)]
        for page in pages:
            page.set_default_timeout(120_000)
            page.goto(app_server["url"] + "/classify", wait_until="commit")
        predictor = Predictor.load(1, registry)  # the version the app serves, while the pages load
        wanted = [computed(predictor, path) for path in images]
        assert len({str(w) for w in wanted}) == SESSIONS  # distinct answers: a mix-up would be seen
        for page in pages:
            wait_idle(page)
        deadline = time.time() + 90
        while not any(e["event"] == "step" for e in job.progress()):  # the worker is past its data preparation
            assert time.time() < deadline and jobs.refresh(job).active, jobs.refresh(job).status
            time.sleep(0.5)

        began = time.time()
        for page, path in zip(pages, images, strict=True):  # all ten uploads in flight at once
            page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))
        got = [shown(page) for page in pages]
        ended = time.time()

        assert jobs.refresh(job).state == "RUNNING"
        assert [e for e in job.progress() if e["event"] == "step" and began <= e["time"] <= ended], (
            "the training job made no progress while the sessions classified"
        )
        for i, (g, w) in enumerate(zip(got, wanted, strict=True)):
            assert same_result(g, w), f"session {i} was shown {g}, expected {w}"
    finally:
        context.close()
        stopped = stop_job(job)
        registry.activate(earlier)
    assert stopped.state == "KILLED"
