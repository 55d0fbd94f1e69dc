"""Images that are certainly not dermoscopy, for fitting and testing the not-a-lesion gate.

Real photographs that scikit-image ships (a face, a cat, a rocket, coffee,
coins, a retina, a microscopy slide, text on paper, a building's bricks...)
plus generated documents, charts, flat frames and noise. Nothing is
downloaded: everything is in an installed package or drawn here.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = 192  # negatives are made at about the size of a training image

# skimage's bundled data files (no network); greyscale ones are turned into RGB
PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "color.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "logo.png",
    "microaneurysms.png",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "phantom.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
    "chessboard_RGB.png",
)
# Photographs the gate is never fitted on, from two other packages (development requirements only): the
# honest check of "a photo that is not dermoscopy is refused", as the fitting photos' own crops are not.
UNSEEN = (
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),  # a portrait in colour
    ("matplotlib", "mpl-data/sample_data/Minduka_Present_Blue_Pack.png"),  # a gift box
    ("matplotlib", "mpl-data/sample_data/logo2.png"),
    ("matplotlib", "mpl-data/sample_data/s1045.ima.gz"),  # an MRI slice: another kind of medical image
    ("sklearn", "datasets/images/china.jpg"),  # a building
    ("sklearn", "datasets/images/flower.jpg"),  # a red flower: skin-like colours
)
SYNTHETIC = ("document", "chart", "flat", "noise", "gradient", "shapes", "face")


@dataclass(frozen=True)
class Negative:
    """One negative image and the base it came from (so held-out checks can leave whole bases out)."""

    base: str
    pixels: np.ndarray


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as RGB pixels."""
    with resources.as_file(resources.files("skimage") / "data" / name) as path, Image.open(path) as image:
        return _rgb(image)


def _crops(pixels: np.ndarray, rng: np.random.Generator, n: int) -> Iterator[np.ndarray]:
    """The whole picture and random crops of it (30-100 % of the side), at about a training image's size."""
    h, w = pixels.shape[:2]
    for i in range(n):
        side = min(h, w) if i == 0 else int(min(h, w) * rng.uniform(0.3, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = Image.fromarray(pixels[y : y + side, x : x + side]).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        yield np.asarray(crop)


def _document(rng: np.random.Generator) -> np.ndarray:
    paper = tuple(int(v) for v in rng.integers(200, 256, 3))
    image = Image.new("RGB", (SIZE, SIZE), paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=int(rng.integers(9, 22)))
    ink = tuple(int(v) for v in rng.integers(0, 90, 3))
    words = ["patient", "report", "Lorem", "ipsum", "dolor", "42", "mg", "date", "clinic", "invoice", "total"]
    y = int(rng.integers(2, 15))
    while y < SIZE:
        line = " ".join(rng.choice(words, int(rng.integers(2, 7))))
        draw.text((int(rng.integers(2, 20)), y), line, fill=ink, font=font)
        y += int(rng.integers(12, 28))
    return _rgb(image)


def _chart(rng: np.random.Generator) -> np.ndarray:
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255) if rng.random() < 0.7 else (30, 30, 40))
    draw = ImageDraw.Draw(image)
    colours = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(6)]
    draw.line([(20, 10), (20, SIZE - 20), (SIZE - 10, SIZE - 20)], fill=(90, 90, 90), width=2)
    kind = rng.integers(0, 3)
    if kind == 0:  # bars
        n = int(rng.integers(3, 10))
        for i in range(n):
            x0 = 25 + i * (SIZE - 40) // n
            top = int(rng.integers(15, SIZE - 30))
            draw.rectangle([x0, top, x0 + (SIZE - 40) // n - 4, SIZE - 21], fill=colours[i % 6])
    elif kind == 1:  # lines
        for c in colours[:3]:
            ys = rng.integers(15, SIZE - 25, 12)
            draw.line([(22 + i * (SIZE - 30) // 11, int(v)) for i, v in enumerate(ys)], fill=c, width=2)
    else:  # pie
        start = 0.0
        for c, share in zip(colours, rng.dirichlet(np.ones(5)), strict=False):
            draw.pieslice([30, 20, SIZE - 20, SIZE - 30], start, start + 360 * share, fill=c)
            start += 360 * share
    return _rgb(image)


def _flat(rng: np.random.Generator) -> np.ndarray:
    colour = rng.integers(0, 256, 3)
    return np.clip(colour + rng.normal(0, rng.uniform(0, 4), (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)


def _noise(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        return rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (SIZE // 8, SIZE // 8, 1), dtype=np.uint8).repeat(3, axis=2)
    return np.asarray(Image.fromarray(grey).resize((SIZE, SIZE), Image.Resampling.NEAREST))


def _gradient(rng: np.random.Generator) -> np.ndarray:
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, SIZE)[:, None, None] if rng.random() < 0.5 else np.linspace(0, 1, SIZE)[None, :, None]
    return np.broadcast_to(a + (b - a) * t, (SIZE, SIZE, 3)).astype(np.uint8)


def _shapes(rng: np.random.Generator) -> np.ndarray:
    """Logos and icons: flat shapes on a flat background."""
    image = Image.new("RGB", (SIZE, SIZE), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 6))):
        box = sorted(rng.integers(0, SIZE, 2).tolist())
        box2 = sorted(rng.integers(0, SIZE, 2).tolist())
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([box[0], box2[0], box[1], box2[1]], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return _rgb(image)


def _face(rng: np.random.Generator) -> np.ndarray:
    """A labelled-faces-in-the-wild portrait (greyscale, shipped with scikit-image), tinted and upscaled."""
    with resources.as_file(resources.files("skimage") / "data" / "lfw_subset.npy") as path:
        faces = np.load(path)
    face = faces[int(rng.integers(len(faces)))]
    grey = np.asarray(Image.fromarray((face * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    tint = np.array([1.0, rng.uniform(0.75, 0.95), rng.uniform(0.6, 0.85)])
    return np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)


_DRAW = {
    "document": _document,
    "chart": _chart,
    "flat": _flat,
    "noise": _noise,
    "gradient": _gradient,
    "shapes": _shapes,
    "face": _face,
}


def unseen_photo(package: str, name: str) -> np.ndarray:
    """One of ``UNSEEN`` as RGB pixels (the MRI slice is raw 256 x 256 little-endian 16-bit values, gzipped)."""
    with resources.as_file(resources.files(package) / name) as path:
        if path.suffix == ".gz":
            raw = np.frombuffer(gzip.decompress(path.read_bytes()), "<u2").reshape(256, 256).astype(np.float64)
            grey = (255 * raw / raw.max()).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=2)
        with Image.open(path) as image:
            return _rgb(image)


def unseen(seed: int = 0, per_photo: int = 12) -> list[Negative]:
    """Each of ``UNSEEN`` whole and cropped as ``generate`` crops its photos; needs requirements-dev.txt."""
    rng = np.random.default_rng(seed)
    return [
        Negative(name.rsplit("/", 1)[1], crop)
        for package, name in UNSEEN
        for crop in _crops(unseen_photo(package, name), rng, per_photo)
    ]


def generate(seed: int = 0, per_photo: int = 12, per_kind: int = 25) -> list[Negative]:
    """The negative set: crops of every bundled photo and drawings of every synthetic kind."""
    rng = np.random.default_rng(seed)
    found = [Negative(name, crop) for name in PHOTOS for crop in _crops(photo(name), rng, per_photo)]
    found += [Negative(kind, _DRAW[kind](rng)) for kind in SYNTHETIC for _ in range(per_kind)]
    return found
