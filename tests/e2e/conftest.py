"""A real ``streamlit run`` on a free local port, driven by Debian's chromium via Playwright."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from e2e_support import CHROMIUM, CHROMIUM_ARGS, PASSWORD, free_port, lesion, start_app, wait_healthy
from PIL import Image

from skin_model import CLASSES


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("isic-tiny")
    for k, name in enumerate(CLASSES):
        folder = root / "Train" / name
        folder.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(lesion(100 * k + i)).save(folder / f"img_{k}_{i}.jpg", quality=92)
    return root


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, tiny_dataset):
    """Start the app like `make run` does, on a fresh state folder seeded with the committed default model."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: `make test` installs it (apt-get install chromium)")
    home = tmp_path_factory.mktemp("skin-home")
    port = free_port()
    log = (home / "server.log").open("w")
    process = start_app(
        port, log, SKIN_HOME=str(home), SKIN_ADMIN_PASSWORD=PASSWORD, SKIN_DATA_DIR=str(tiny_dataset), SKIN_THREADS="2"
    )
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url):
        process.kill()
        pytest.fail(f"streamlit did not become healthy: {(home / 'server.log').read_text()[-2000:]}")
    yield {"url": url, "home": home, "process": process}
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, request):
    """A fresh browser tab; on failure its screenshot lands in tests/e2e/screenshots/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        shots = Path(__file__).parent / "screenshots"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    context.close()
