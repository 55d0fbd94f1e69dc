"""The README's screenshots of the Classify page: one image, a batch, one lesion in three pictures.

Generated lesion-like images only (never patient images), served by a real Streamlit server on a fresh state
folder (the committed default), photographed by Debian's chromium: ``python -m bench.screenshots [OUT]``
(default ``assets/``).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from e2e_support import CHROMIUM, CHROMIUM_ARGS, free_port, lesion, start_app, wait_healthy, wait_idle


def photograph(browser, url: str, out: Path, files: list[Path], name: str, combine: bool = False) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1500 if combine else 1400})
    page.goto(url + "/classify")
    wait_idle(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(f) for f in files])
    wait_idle(page)
    if combine:
        page.get_by_text("These pictures show one lesion").click()
        wait_idle(page)
    page.wait_for_timeout(1500)  # the lazily drawn table and images
    wait_idle(page)
    page.screenshot(path=str(out / name))
    page.close()


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    out = Path((argv or sys.argv[1:] or ["assets"])[0])
    home, scratch = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    pictures = []
    for seed in range(4):
        pictures.append(scratch / f"lesion-{seed}.png")
        Image.fromarray(lesion(20 + seed, 220)).save(pictures[-1])
    port = free_port()
    with (home / "server.log").open("w") as log:
        server = start_app(port, log, SKIN_HOME=str(home))
        try:
            url = f"http://127.0.0.1:{port}"
            if not wait_healthy(url):
                raise SystemExit(f"the app did not start: {(home / 'server.log').read_text()[-2000:]}")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                photograph(browser, url, out, pictures[:1], "screenshot-classify.png")
                photograph(browser, url, out, pictures, "screenshot-batch.png")
                photograph(browser, url, out, pictures[:3], "screenshot-lesion.png", combine=True)
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
    print(f"wrote {out}/screenshot-classify.png, screenshot-batch.png, screenshot-lesion.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
