"""``python -m bench.upload_memory``: peak memory of one prediction per kind of upload, each in a fresh process.

A small JPEG is the baseline; a 7000x7000 RGBA PNG (about 240 KB on disk, 49 MP) cannot be
decoded at a smaller scale, so it costs what the decoder keeps at full size; an 8000x6000 JPEG
is decoded at reduced scale (draft). Each runs ``python -m skin_model predict FILE`` in a new
process on the committed default model; the peak resident memory (``ru_maxrss``) comes from
``os.wait4``. Then ten predictions of the PNG at once on threads of one process, as ten
Streamlit sessions would run them. Writes a section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.publish import put_section

REPO = Path(__file__).resolve().parents[1]
CONCURRENT = """
import resource, sys, threading
from pathlib import Path
from skin_model import images
from skin_model.predict import Predictor

predictor = Predictor.load()
data = Path(sys.argv[1]).read_bytes()
predictor.predict_bytes(data, "warm.png")
def one(): predictor.predict_bytes(data, "huge.png")
threads = [threading.Thread(target=one) for _ in range(10)]
[t.start() for t in threads]; [t.join() for t in threads]
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def images_in(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    paths = {
        "small": folder / "small.jpg",
        "png": folder / "huge-rgba.png",
        "jpeg": folder / "huge.jpg",
    }
    Image.fromarray(rng.integers(60, 230, (300, 400, 3), dtype=np.uint8)).save(paths["small"], quality=90)
    tile = rng.integers(60, 230, (70, 70, 4), dtype=np.uint8)
    tile[..., 3] = 255
    Image.fromarray(tile, "RGBA").resize((7000, 7000), Image.Resampling.NEAREST).save(paths["png"])
    photo = Image.fromarray(rng.integers(90, 230, (60, 80, 3), dtype=np.uint8))
    photo.resize((8000, 6000), Image.Resampling.BILINEAR).save(paths["jpeg"], quality=85)
    return paths


def peak_mb(args: list[str], env: dict[str, str]) -> float:
    """Peak resident memory of one fresh process running ``args``."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; tell the Popen object
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(args)} failed: {errors.read().decode()[-500:]}")
    return usage.ru_maxrss / 1024


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, SKIN_HOME=str(Path(scratch) / "home"), SKIN_THREADS="2")
        paths = images_in(Path(scratch))
        predict = [sys.executable, "-m", "skin_model", "predict"]
        peak = {key: max(peak_mb([*predict, str(path)], env) for _ in range(2)) for key, path in paths.items()}
        ten = subprocess.run(
            [sys.executable, "-c", CONCURRENT, str(paths["png"])], cwd=REPO, env=env, capture_output=True, text=True
        )
        if ten.returncode != 0:
            raise RuntimeError(f"ten at once failed: {ten.stderr[-500:]}")
        ten_mb = int(ten.stdout.split()[-1]) / 1024
        sizes = {key: path.stat().st_size / 1e3 for key, path in paths.items()}
    base = peak["small"]
    text = (
        "## Memory per large upload (`python -m bench.upload_memory`)\n\n"
        "`python -m skin_model predict FILE` in a fresh process on the committed default model, peak resident memory "
        "(`ru_maxrss` from `os.wait4`, the larger of 2 runs); 2 CPUs.\n\n"
        "| upload | on disk | peak (MB) | above the small image (MB) |\n|---|---|---|---|\n"
        f"| 400x300 JPEG (baseline) | {sizes['small']:.0f} KB | {base:.0f} | 0 |\n"
        f"| 7000x7000 RGBA PNG | {sizes['png']:.0f} KB | {peak['png']:.0f} | {peak['png'] - base:.0f} |\n"
        f"| 8000x6000 JPEG | {sizes['jpeg'] / 1e3:.1f} MB | {peak['jpeg']:.0f} | {peak['jpeg'] - base:.0f} |\n"
        f"| the PNG ten times at once, threads of one process (as ten app sessions) |  | {ten_mb:.0f} | "
        f"{ten_mb - base:.0f} |\n\n"
        "Before (commit 9bcaeeb) the same PNG peaked at 1,546 MB, 935 MB above the small image: the full-size "
        "RGBA was copied four times on its way to RGB; with the banded reduction alone, ten at once still "
        "peaked at 2,988 MB. Now the decoded image is the only full-size copy (196 MB for 7000x7000 RGBA), "
        "converted and box-reduced 256 rows at a time; a process decodes at most two such images at once "
        "(`images.LARGE_DECODES`), and Pillow's 64 MB blocks are returned to the system when freed instead "
        "of staying in each thread's heap.\n"
    )
    print(text)
    put_section("Memory per large upload", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
