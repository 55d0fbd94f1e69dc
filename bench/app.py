"""``make bench-app``: the app as a clinician meets it, in a real browser.

Measures cold start (process start to first rendered page), the first upload
after a fresh start (p50 over several restarts, from a browser that has used
the app before, so its cache holds the app's scripts as a clinician's does),
upload to probabilities shown on a warm server (p50/p95 over 20 uploads, one
session), and the same for ten sessions at once while a training job runs.
Appends to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from e2e_support import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, lesion, start_app, wait_healthy  # noqa: E402

from bench.report import put_section  # noqa: E402


async def classify_once(page, url: str, image: Path) -> float:
    await page.goto(url + "/classify")
    await page.wait_for_selector(IDLE, timeout=120_000)
    start = time.perf_counter()
    await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(image))
    await page.locator(".js-plotly-plot text.bartext").first.wait_for(timeout=120_000)
    return time.perf_counter() - start


async def first_uploads(port: int, image: Path, restarts: int, **env: str) -> list[float]:
    """The first upload after each of ``restarts`` fresh starts of the server (same port, same browser tab).

    One extra start first fills the browser's cache; its upload is not counted.
    """
    from playwright.async_api import async_playwright

    url = f"http://127.0.0.1:{port}"
    firsts = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = await (await browser.new_context()).new_page()
        for attempt in range(restarts + 1):
            server = start_app(port, subprocess.DEVNULL, **env)
            try:
                if not wait_healthy(url, timeout=120):
                    raise RuntimeError("the app did not start")
                seconds = await classify_once(page, url, image)
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            if attempt:
                firsts.append(seconds)
        await browser.close()
    return firsts


async def session(browser, url: str, image: Path, uploads: int) -> list[float]:
    context = await browser.new_context()
    page = await context.new_page()
    times = [await classify_once(page, url, image) for _ in range(uploads)]
    await context.close()
    return times


async def measure(url: str, image: Path, start_job, during_training: bool = True) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        single = await session(browser, url, image, 20)
        concurrent = []
        if during_training:
            start_job()
            concurrent = await asyncio.gather(*[session(browser, url, image, 2) for _ in range(10)])
        await browser.close()
    flat = [t for times in concurrent for t in times]
    pct = lambda xs, q: float(np.percentile(xs, q)) if xs else None
    return {
        "single_p50_s": pct(single, 50),
        "single_p95_s": pct(single, 95),
        "ten_sessions_p50_s": pct(flat, 50),
        "ten_sessions_p95_s": pct(flat, 95),
        "ten_sessions_n": len(flat),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--restarts", type=int, default=5, help="fresh starts for the first-upload figure")
    parser.add_argument("--no-training", action="store_true", help="skip ten sessions during training (minutes)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        home, image = Path(scratch) / "home", Path(scratch) / "lesion.png"
        from PIL import Image

        Image.fromarray(lesion(11, 600)).save(image)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        server = start_app(
            port, subprocess.DEVNULL, SKIN_HOME=str(home), SKIN_DATA_DIR=args.data, SKIN_ADMIN_PASSWORD="bench"
        )
        try:
            if not wait_healthy(url, timeout=120):
                raise RuntimeError("the app did not start")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page()
                page.goto(url)
                page.get_by_text("Live model: version").first.wait_for(timeout=120_000)
                cold = time.perf_counter() - started
                browser.close()

            def start_job():
                env = dict(os.environ, SKIN_HOME=str(home))
                code = (
                    "from skin_model import jobs; from skin_model.config import TrainConfig; "
                    f"jobs.start({args.data!r}, TrainConfig(epochs=3))"
                )
                subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True)

            results = asyncio.run(measure(url, image, start_job, during_training=not args.no_training))
            results["cold_start_s"] = cold
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            for job in (home / "jobs").glob("*/status.json"):
                pid = json.loads(job.read_text()).get("pid")
                if pid:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
        env = {"SKIN_HOME": str(home), "SKIN_DATA_DIR": args.data}
        firsts = asyncio.run(first_uploads(free_port(), image, args.restarts, **env))
        results |= {"first_upload_p50_s": float(np.median(firsts)), "first_uploads_s": firsts}
        results["load_average"] = [round(x, 1) for x in os.getloadavg()]
    (HERE / "app_results.json").write_text(json.dumps(results, indent=2))
    text = (
        "\n## The app in a real browser (`make bench-app`)\n\n"
        "| measure | seconds |\n|---|---|\n"
        f"| cold start: `streamlit run` to first rendered page with the live model | {results['cold_start_s']:.1f} |\n"
        f"| first upload after a fresh start to probabilities shown, p50 of {len(firsts)} restarts "
        f"(browser cache warm, no pause after the page) | {results['first_upload_p50_s']:.2f} |\n"
        f"| upload to probabilities shown, one session, p50 / p95 of 20 | {results['single_p50_s']:.2f} / "
        f"{results['single_p95_s']:.2f} |\n"
    )
    if results["ten_sessions_n"]:
        text += (
            f"| same, 10 sessions at once while a training job runs, p50 / p95 of {results['ten_sessions_n']} | "
            f"{results['ten_sessions_p50_s']:.2f} / {results['ten_sessions_p95_s']:.2f} |\n"
        )
    text += f"\nLoad average at the end (1, 5, 15 min): {results['load_average']}; Chromium, 2 CPUs.\n"
    print(text)
    put_section("The app in a real browser", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
