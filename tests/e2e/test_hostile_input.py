"""In a real browser: file names are shown as typed (no image fetched, no link, no bold), and GIF uploads work."""

from __future__ import annotations

import pytest
from e2e_support import BARS, lesion, open_page, wait_idle
from PIL import Image

pytestmark = pytest.mark.e2e

BEACON = "http://127.0.0.1:9/beacon.png"
HOSTILE = f"![t]({BEACON}) [x](javascript:alert(3)) **B**.png"


def test_a_markdown_file_name_is_shown_as_text_and_nothing_is_fetched(app_server, page):
    fetched = []
    page.on("request", lambda request: fetched.append(request.url) if "127.0.0.1:9" in request.url else None)
    open_page(page, app_server["url"] + "/classify")
    upload = {"name": HOSTILE, "mimeType": "image/png", "buffer": b"not an image at all"}
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(upload)
    wait_idle(page)
    alert = page.locator("[data-testid='stAlertContentError']").filter(has_text="not a supported image")
    alert.wait_for()
    assert alert.locator("img, a, strong, em").count() == 0
    assert alert.inner_text().startswith(HOSTILE + ": not a supported image")
    assert fetched == []


def test_a_gif_is_accepted_by_the_upload_widget_and_classified(app_server, page, tmp_path):
    gif = tmp_path / "lesion.gif"
    Image.fromarray(lesion(5, 160)).save(gif)
    open_page(page, app_server["url"] + "/classify")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(gif))
    wait_idle(page)
    page.locator(BARS).first.wait_for()
    page.get_by_role("button", name="Download CSV").wait_for()  # the summary comes after the bars
    assert page.get_by_role("button", name="Download CSV").count() == 1
