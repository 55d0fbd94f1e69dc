"""``make bench-app``: the app as a clinician meets it, in a real browser, with and without a training job.

One run, one server, one machine, side by side:

- upload to probabilities shown in Chromium (the browser figure) and the
  server's own share (the Classify script's run, from the rerun the upload
  triggers to the last element sent, logged through ``SKIN_TIMINGS``), p50/p95,
  for 1 session and for 10 sessions at once;
- first with no job, then while a real training job (the default recipe on
  the real data) runs at each worker setting compared (priority, threads);
- the job's seconds per epoch alone and while the sessions classify, from
  its own progress log.

Ten Chromium tabs on 2 cores cost CPU that real clinicians' computers would
pay themselves; the server column is what the app costs. Also the cold start
and the first upload after fresh starts. Writes ``bench/app_results.json``
and the "The app in a real browser" section of ``bench/RESULTS.md``.
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
from e2e_support import CHROMIUM, CHROMIUM_ARGS, IDLE, answered_lesion, free_port, start_app, wait_healthy  # noqa: E402

from bench.publish import put_section  # noqa: E402

SETTINGS = {  # worker settings compared: "normal, 2 threads" is how jobs ran before they yielded to the app
    "normal-2": {"SKIN_WORKER_PRIORITY": "normal", "SKIN_WORKER_THREADS": "2"},
    "idle-2": {"SKIN_WORKER_PRIORITY": "idle", "SKIN_WORKER_THREADS": "2"},
    "idle-1": {"SKIN_WORKER_PRIORITY": "idle", "SKIN_WORKER_THREADS": "1"},
}


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


SHOWN = ".skin-probabilities"  # the nine bars of the Classify page

# In the page: the file input's change event (the file is chosen) to the first DOM mutation that shows the
# bars. Timed by the page's own clock, so the harness's polling and messages on a busy machine are not counted.
WATCH = """() => {
  const shown = "SHOWN";
  document.addEventListener("change", (event) => {  // the uploader's input, whenever React has drawn it
    if (window.__chosen === undefined && event.target.matches("[data-testid='stFileUploaderDropzoneInput']")) {
      window.__chosen = performance.now();
    }
  }, {capture: true});
  const seen = new MutationObserver(() => {
    if (window.__chosen !== undefined && document.querySelector(shown)) {
      seen.disconnect();
      window.__shown = (performance.now() - window.__chosen) / 1000;
    }
  });
  seen.observe(document.body, {subtree: true, childList: true});
}""".replace("SHOWN", SHOWN)


async def classify_once(page, url: str, image: Path) -> tuple[float, float]:
    """(in the page, as the harness saw it): seconds from the file chosen to the probabilities shown."""
    page.set_default_timeout(300_000)  # ten tabs and a training job on 2 cores: a page load can take a minute
    await page.goto(url + "/classify")
    await page.wait_for_selector(IDLE, timeout=180_000)
    await page.evaluate(WATCH)
    start = time.perf_counter()
    await page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(image))
    await page.locator(SHOWN).first.wait_for(timeout=180_000)
    harness = time.perf_counter() - start
    await page.wait_for_function("window.__shown !== undefined")
    return await page.evaluate("window.__shown"), harness


def stop(server: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL after 30 s: one slow shutdown must not lose the run's other figures."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print("the server did not stop within 30 s of SIGTERM; killed", flush=True)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


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
                seconds, _ = await classify_once(page, url, image)
            finally:
                stop(server)
            if attempt:
                firsts.append(seconds)
        await browser.close()
    return firsts


async def sessions(url: str, image: Path, count: int, uploads: int) -> tuple[list[tuple[float, float]], float, float]:
    """``count`` browser sessions (own contexts), ``uploads`` each, all at once: browser seconds and the window."""
    from playwright.async_api import async_playwright

    async def one(browser) -> list[tuple[float, float]]:
        context = await browser.new_context()
        page = await context.new_page()
        times = [await classify_once(page, url, image) for _ in range(uploads)]
        await context.close()
        return times

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        began = time.time()
        found = await asyncio.gather(*[one(browser) for _ in range(count)])
        ended = time.time()
        await browser.close()
    return [t for times in found for t in times], began, ended


def server_times(log: Path, began: float, ended: float) -> list[float]:
    """Server seconds of the classifications that finished in a window (``SKIN_TIMINGS`` lines)."""
    if not log.exists():
        return []
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r["server_s"] for r in rows if began <= r["time"] <= ended and r["images"]]


def done_steps(job) -> list[tuple[float, int]]:
    """(time, steps done since the start) for each step event of a job."""
    return [(e["time"], (e["epoch"] - 1) * e["steps"] + e["step"]) for e in job.progress() if e["event"] == "step"]


def seconds_per_epoch(job, began: float, ended: float) -> float | None:
    """The job's pace inside a window, from its own step events, as seconds per epoch."""
    inside = [(t, n) for t, n in done_steps(job) if began <= t <= ended]
    steps = next((e["steps"] for e in job.progress() if e["event"] == "step"), None)
    if len(inside) < 2 or not steps or inside[-1][1] == inside[0][1]:
        return None
    (t0, n0), (t1, n1) = inside[0], inside[-1]
    return round((t1 - t0) / (n1 - n0) * steps, 1)


def phase(url: str, image: Path, timings: Path, uploads: int) -> dict:
    """One session, then ten at once: browser and server p50/p95, and each window."""
    out = {}
    for name, count, each in (("1 session", 1, uploads), ("10 sessions", 10, 2)):
        timed, began, ended = asyncio.run(sessions(url, image, count, each))
        browser, harness = [t[0] for t in timed], [t[1] for t in timed]
        server = server_times(timings, began, ended)
        out[name] = {
            "browser_p50_s": pct(browser, 50),
            "browser_p95_s": pct(browser, 95),
            "harness_p50_s": pct(harness, 50),
            "server_p50_s": pct(server, 50),
            "server_p95_s": pct(server, 95),
            "n": len(browser),
            "window": [began, ended],
        }
        print(name, out[name], flush=True)
    return out


def with_job(data: str, url: str, image: Path, timings: Path, uploads: int, setting: str, alone_s: float) -> dict:
    """Start a real training job at ``setting``; its pace alone, then the sessions while it runs."""
    from dataclasses import replace

    from skin_model import jobs
    from skin_model.config import DEFAULT_RECIPE, roots_of

    os.environ.update(SETTINGS[setting])
    job = jobs.start(roots_of(data), replace(DEFAULT_RECIPE, epochs=100))  # the Retrain default
    try:
        deadline = time.time() + 900
        while len(done_steps(job)) < 3:  # past the audit, split and balancing
            if time.time() > deadline or not jobs.refresh(job).active:
                raise RuntimeError(f"the job did not start training: {jobs.refresh(job).status}")
            time.sleep(1)
        began = time.time()
        time.sleep(alone_s)
        result = {"job alone s/epoch": seconds_per_epoch(job, began, time.time())}
        result |= phase(url, image, timings, uploads)
        for name in ("1 session", "10 sessions"):
            result[name]["job s/epoch"] = seconds_per_epoch(job, *result[name]["window"])
        return result
    finally:
        with contextlib.suppress(Exception):
            jobs.cancel(jobs.refresh(job))
        deadline = time.time() + 120
        while jobs.refresh(job).active and time.time() < deadline:
            time.sleep(1)
        pid = jobs.refresh(job).status.get("pid")
        if pid and jobs.refresh(job).active:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def cold_start(url: str, started: float) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.get_by_text("Live model: version").first.wait_for(timeout=120_000)
        browser.close()
    return time.perf_counter() - started


def render(results: dict) -> str:
    f = lambda v: "n/a" if v is None else f"{v:.2f}"
    lines = [
        "## The app in a real browser (`make bench-app`)",
        "",
        "Upload chosen to probabilities shown, on one server and one machine (2 CPUs), in one run. *Browser* is "
        "measured in Chromium by the page's own clock, from the file input's change event to the DOM mutation that "
        "shows the nine probability bars (its ten tabs run on the same 2 cores); *harness* is the same span as the "
        "Playwright script learned of it (its polling and messages add time on a busy machine); *server* is the "
        "Classify script's own run, "
        "from the rerun the upload triggers to the last element sent (`SKIN_TIMINGS`). The job is the default "
        "recipe on the shared data; its pace comes from its own progress log. Worker settings: priority "
        "(`SKIN_WORKER_PRIORITY`) and TensorFlow threads (`SKIN_WORKER_THREADS`); `normal-2` is how jobs ran "
        "before they yielded to the app.",
        "",
        "| training job | sessions | browser p50 / p95 (s) | harness p50 (s) | server p50 / p95 (s) | uploads "
        "| job s/epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, run in results["runs"].items():
        for name in ("1 session", "10 sessions"):
            r = run[name]
            lines.append(
                f"| {label} | {name} | {f(r['browser_p50_s'])} / {f(r['browser_p95_s'])} | {f(r.get('harness_p50_s'))} "
                f"| {f(r['server_p50_s'])} / {f(r['server_p95_s'])} | {r['n']} | {r.get('job s/epoch') or '-'} |"
            )
        if run.get("job alone s/epoch"):
            lines.append(f"| {label} | none (job alone) | - | - | - | - | {run['job alone s/epoch']} |")
    lines += [
        "",
        f"Cold start (`streamlit run` to the first page with the live model): {results['cold_start_s']:.1f} s.",
    ]
    if results.get("first_uploads_s"):
        lines.append(
            f"First upload after a fresh start, p50 of {len(results['first_uploads_s'])} restarts (browser cache "
            f"warm): {results['first_upload_p50_s']:.2f} s."
        )
    lines.append(f"Load average at the end (1, 5, 15 min): {results['load_average']}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--restarts", type=int, default=4, help="fresh starts for the first-upload figure (0: skip)")
    parser.add_argument("--uploads", type=int, default=10, help="uploads of the single session in each phase")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="worker settings to run a job at (or none)")
    parser.add_argument("--alone", type=float, default=40.0, help="seconds the job trains alone before sessions")
    args = parser.parse_args(argv)
    chosen = [s for s in args.settings.split(",") if s in SETTINGS]

    with tempfile.TemporaryDirectory() as scratch:
        home, image, timings = Path(scratch) / "home", Path(scratch) / "lesion.png", Path(scratch) / "timings.jsonl"
        from PIL import Image

        from skin_model.predict import Predictor

        os.environ["SKIN_HOME"] = str(home)
        Image.fromarray(answered_lesion(Predictor.load(), 600)).save(image)  # the live version, as served
        env = {"SKIN_HOME": str(home), "SKIN_DATA_DIR": args.data, "SKIN_TIMINGS": str(timings)}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        server = start_app(port, subprocess.DEVNULL, SKIN_ADMIN_PASSWORD="bench", **env)
        try:
            if not wait_healthy(url, timeout=120):
                raise RuntimeError("the app did not start")
            results: dict = {"cold_start_s": cold_start(url, started), "runs": {}}
            results["runs"]["none"] = phase(url, image, timings, args.uploads)
            for setting in chosen:
                try:
                    results["runs"][setting] = with_job(
                        args.data, url, image, timings, args.uploads, setting, args.alone
                    )
                except Exception as error:  # one failed setting is reported, the others still run
                    print(f"{setting}: {type(error).__name__}: {error}".splitlines()[0], flush=True)
                (HERE / "app_results.json").write_text(json.dumps(results, indent=2))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
        if args.restarts:
            firsts = asyncio.run(first_uploads(free_port(), image, args.restarts, **env))
            results |= {"first_upload_p50_s": float(np.median(firsts)), "first_uploads_s": firsts}
        results["load_average"] = [round(x, 1) for x in os.getloadavg()]
    (HERE / "app_results.json").write_text(json.dumps(results, indent=2))
    text = render(results)
    print(text)
    put_section("The app in a real browser", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
