"""In a real browser: a training image's name in a version's similar-case index is text, never markup that fetches.

Issue 32, item 1: with the thumbnail not on disk, the page once wrote the name into markdown; the browser then
fetched an injected image and showed a fake "Sign in again" link.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal

import numpy as np
import pytest
from e2e_support import BARS, free_port, lesion, open_page, start_app, wait_healthy, wait_idle
from PIL import Image

from skin_model import similar
from skin_model.config import DEFAULT_MODEL_DIR
from skin_model.registry import METADATA_FILE, MODEL_FILE, Registry, sha256

pytestmark = pytest.mark.e2e

INJECTED = "127.0.0.1:8698"
NAME = f"x2` ![b](https:{INJECTED}) [Sign in again](https:{INJECTED}) `"


def hostile_seed(folder) -> None:
    """The committed default model with every similar-case path renamed to the attack's file name."""
    folder.mkdir()
    shutil.copyfile(DEFAULT_MODEL_DIR / MODEL_FILE, folder / MODEL_FILE)
    index = similar.Index.from_bytes((DEFAULT_MODEL_DIR / similar.INDEX_FILE).read_bytes())
    paths = tuple(f"Train/{d}/{NAME}{i}.png" for i, d in enumerate(index.diagnoses))
    hostile = similar.Index(index.vectors, index.diagnoses, index.sources, paths)
    (folder / similar.INDEX_FILE).write_bytes(hostile.to_bytes())
    metadata = json.loads((DEFAULT_MODEL_DIR / METADATA_FILE).read_text())
    metadata["files"] = {similar.INDEX_FILE: sha256(folder / similar.INDEX_FILE)}
    (folder / METADATA_FILE).write_text(json.dumps(metadata))


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    """Its own server: the live version's index holds the injected names; no dataset folder, so no thumbnails."""
    home = tmp_path_factory.mktemp("skin-home-injected")
    hostile_seed(home / "seed")
    Registry(home / "models", seed_dir=home / "seed").versions()  # registered as version 1 and live, as on first use
    port = free_port()
    log = (home / "server.log").open("w")
    data_dir = os.environ.pop("SKIN_DATA_DIR", None)  # start_app passes this process's environment on
    try:
        process = start_app(port, log, SKIN_HOME=str(home), SKIN_THREADS="2")
    finally:
        if data_dir is not None:
            os.environ["SKIN_DATA_DIR"] = data_dir
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url):
        process.kill()
        pytest.fail(f"streamlit did not become healthy: {(home / 'server.log').read_text()[-2000:]}")
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)
    log.close()


def test_an_injected_similar_case_name_fetches_nothing_and_shows_no_link(hostile_app, page):
    requested = []
    page.on("request", lambda request: requested.append(request.url) if INJECTED in request.url else None)
    open_page(page, hostile_app + "/classify")
    buffer = io.BytesIO()
    Image.fromarray(lesion(5, 160)).save(buffer, format="PNG")
    upload = {"name": "lesion.png", "mimeType": "image/png", "buffer": buffer.getvalue()}
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(upload)
    wait_idle(page)
    page.locator(BARS).first.wait_for()
    shown = page.get_by_text("Sign in again", exact=False)
    shown.first.wait_for()  # the similar cases are on the page, each named as the file is named
    page.wait_for_timeout(1500)  # time for any image the markup would load
    assert page.get_by_role("link", name="Sign in again").count() == 0
    assert page.locator(f"img[src*='{INJECTED}'], a[href*='{INJECTED}']").count() == 0
    assert requested == []
    assert np.all([NAME.strip("` ") in t for t in shown.all_inner_texts()])
