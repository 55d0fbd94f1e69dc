"""Peak memory of training on 2,000 vs 20,000 images: streamed from disk it stays flat.

Generates two synthetic ISIC-layout folders (9 classes, 180x180 JPEG, every
image distinct so the audit keeps them all), then in a fresh process each:
- trains one epoch through ``skin_model.train.run`` (audit, split, balancing,
  streamed tf.data, validation, calibration, not-a-lesion reference, registry);
- as the reference, decodes the same training split into one array, which is
  what an in-memory pipeline holds before it starts.
Peak resident memory is the child's ``ru_maxrss``. Writes ``bench/stream_results.json``
and the "Training memory" section of ``bench/RESULTS.md``.

    python -m bench.stream               # 2,000 and 20,000 images (about 15 minutes on 2 cores)
    python -m bench.stream --sizes 500 2000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.publish import put_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CONFIG = {"epochs": 1, "image_size": 64, "width": 8, "batch_size": 32}


def generate(root: Path, n: int, seed: int = 0) -> None:
    """``n`` distinct synthetic lesions in ``root/Train/<class>/``: a dark blob on skin, noise and a colour cast."""
    from PIL import Image

    from skin_model import CLASSES

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:180, 0:180]
    for i in range(n):
        label = CLASSES[i % len(CLASSES)]
        folder = root / "Train" / label
        folder.mkdir(parents=True, exist_ok=True)
        cy, cx, r = rng.uniform(60, 120), rng.uniform(60, 120), rng.uniform(25, 55)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < r**2)[..., None]
        skin = np.array([225, 190, 165]) + rng.normal(0, 10, 3)
        lesion = np.array([40 + 20 * (i % 9), 35, 30]) + rng.normal(0, 15, 3)
        pixels = np.where(blob, lesion, skin) + rng.normal(0, 12, (180, 180, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)


def child(mode: str, data: str) -> None:
    """Run in a fresh process, print one JSON line with peak memory."""
    from skin_model import train
    from skin_model.config import TrainConfig

    config = TrainConfig(**CONFIG)
    started = time.perf_counter()
    out: dict = {"mode": mode}
    if mode == "stream":
        version = train.run(data, config)
        out["train_images"] = sum(version.record.data.balanced_counts.values())
        out["split_sizes"] = dict(version.record.data.split_sizes)
    else:
        from skin_model import audit, dataset, splits

        _, parts = splits.training_split(audit.audit(data), config)
        pixels = dataset.load_pixels(parts["train"])
        out["array_mb"] = round(pixels.nbytes / 2**20, 1)
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out), flush=True)


def measure(mode: str, data: Path, home: Path) -> dict:
    env = dict(os.environ, SKIN_HOME=str(home))
    command = [sys.executable, "-m", "bench.stream", "--child", mode, "--data", str(data)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{mode} on {data} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(rows: list[dict]) -> str:
    small, large = rows[0], rows[-1]
    lines = [
        "## Training memory: streamed from disk (`python -m bench.stream`)",
        "",
        "Synthetic ISIC-layout folders (9 classes, 180x180 JPEG, all distinct), one epoch at 64 px, width 8, "
        "default balancing; each measurement in a fresh process, peak resident memory (`ru_maxrss`).",
        "",
        "| images | training images per epoch | peak memory, training (MB) | training time (s) | "
        "reference: the training split decoded into one array, peak (MB) |",
        "|---|---|---|---|---|",
        *[
            f"| {r['images']:,} | {r['stream']['train_images']:,} | {r['stream']['peak_rss_mb']:.0f} | "
            f"{r['stream']['seconds']:.0f} | {r['in_memory']['peak_rss_mb']:.0f} "
            f"(array alone {r['in_memory']['array_mb']:.0f}) |"
            for r in rows
        ],
        "",
        f"{large['images'] // small['images']}x the images: training peak x{ratio_of(rows, 'stream'):.2f}, "
        f"in-memory reference x{ratio_of(rows, 'in_memory'):.2f}.",
    ]
    return "\n".join(lines) + "\n"


def ratio_of(rows: list[dict], mode: str) -> float:
    return rows[-1][mode]["peak_rss_mb"] / rows[0][mode]["peak_rss_mb"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--child", choices=["stream", "in_memory"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.data)
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for n in sorted(args.sizes):
            data = Path(scratch) / f"data-{n}"
            started = time.perf_counter()
            generate(data, n)
            print(f"{n} images generated in {time.perf_counter() - started:.0f} s", flush=True)
            row = {"images": n}
            for mode in ("stream", "in_memory"):
                row[mode] = measure(mode, data, Path(scratch) / f"home-{n}-{mode}")
                print(n, row[mode], flush=True)
            rows.append(row)
    (HERE / "stream_results.json").write_text(json.dumps(rows, indent=2))
    text = render(rows)
    put_section("Training memory", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
