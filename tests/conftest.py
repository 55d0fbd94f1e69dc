"""Shared fixtures: an isolated SKIN_HOME, generated images and tiny ISIC-layout datasets.

Nothing here reads the real data or writes into the repository; every image
is drawn from a seeded generator, so each test sees the same pixels.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skin_model.record import VersionRecord

# Three diagnoses, one malignant (melanoma), one benign, one other malignant.
SYNTHETIC_CLASSES = ("melanoma", "nevus", "basal cell carcinoma")
# Class-dependent blob colours, far apart so a tiny network can tell them apart.
COLOURS = {
    "melanoma": (60, 30, 20),
    "nevus": (200, 140, 90),
    "basal cell carcinoma": (220, 90, 160),
}
SKIN = (235, 200, 175)


@pytest.fixture(autouse=True)
def skin_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test writes its registry, cache and jobs into its own empty folder."""
    home = tmp_path_factory.mktemp("skin_home")
    monkeypatch.setenv("SKIN_HOME", str(home))
    monkeypatch.delenv("SKIN_DATA_DIR", raising=False)
    return home


def blob_image(colour: tuple[int, int, int], seed: int, size: int = 48) -> np.ndarray:
    """A round lesion-like blob of ``colour`` on skin, with seeded position and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(0.35, 0.65, size=2) * size
    radius = rng.uniform(0.2, 0.3) * size
    inside = ((yy - cy) ** 2 + (xx - cx) ** 2) < radius**2
    pixels = np.where(inside[..., None], np.array(colour), np.array(SKIN)).astype(np.float64)
    pixels += rng.normal(0, 12, size=pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode_pixels(pixels: np.ndarray, fmt: str = "JPEG", **options) -> bytes:
    """Pixels to file bytes in the given Pillow format."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def lesion_like_images(n: int, seed: int, size: int = 120) -> list[np.ndarray]:
    """Dermoscopy-like pictures: a brown, textured lesion on skin of varied tone, filling the frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        skin = np.array([rng.uniform(190, 240), rng.uniform(140, 190), rng.uniform(120, 170)])
        lesion = np.array([rng.uniform(60, 150), rng.uniform(35, 90), rng.uniform(20, 70)])
        cy, cx, radius = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.15, 0.35)
        distance = np.hypot(yy - cy, xx - cx) / radius + 0.25 * np.sin(
            7 * np.arctan2(yy - cy, xx - cx) + rng.uniform(0, 9)
        )
        inside = np.clip(1.2 - distance, 0, 1)[..., None]
        pixels = skin * (1 - inside) + lesion * inside + rng.normal(0, 8, (size, size, 3))
        out.append(np.clip(pixels, 0, 255).astype(np.uint8))
    return out


def textured_lesions(n: int, seed: int, size: int = 180) -> list[np.ndarray]:
    """Lesion-like pictures with a texture of their own at several scales (as real skin and pigment have)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cy, cx, radius = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.35)
        inside = np.clip(1.2 - np.hypot(yy - cy, xx - cx) / radius, 0, 1)[..., None]
        texture = sum(
            np.kron(rng.normal(0, 20 / k, (-(-size // (4 * k)),) * 2), np.ones((4 * k, 4 * k)))[:size, :size]
            for k in (1, 2, 3)
        )[..., None]
        pixels = np.array([220, 170, 150]) * (1 - inside) + np.array([110, 60, 40]) * inside + texture
        out.append(np.clip(pixels, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="session")
def lesion_images() -> Callable[..., list[np.ndarray]]:
    """``lesion_images(n, seed)``: generated dermoscopy-like pictures (see ``lesion_like_images``)."""
    return lesion_like_images


def colour_features(images: list[np.ndarray]) -> np.ndarray:
    """A stand-in for the network's pooled features: a 6x6 thumbnail (108 numbers)."""
    return np.stack([np.asarray(Image.fromarray(p).resize((6, 6)), np.float32).ravel() / 255 for p in images])


@pytest.fixture(scope="session")
def negative_set():
    """Generated pictures that are certainly not dermoscopy (see ``negatives``)."""
    from skin_model import negatives

    return negatives.generate(seed=3, per_photo=3, per_kind=6)


@pytest.fixture(scope="session")
def fitted_gate(negative_set, lesion_images):
    """A gate fitted on generated lesions (features: colour histograms) and the generated negatives; its validation
    images. Fitted once for the gate's tests and the alert rule's (which read its usual ranges)."""
    from skin_model import gate

    train, val = lesion_images(80, seed=1), lesion_images(100, seed=2)
    reference = gate.fit(colour_features, train, val, [n.pixels for n in negative_set])
    return reference, val


@pytest.fixture
def blob() -> Callable[..., np.ndarray]:
    """Factory: ``blob(label, seed, size=48)`` gives the pixels of one synthetic lesion."""

    def make(label: str = "melanoma", seed: int = 0, size: int = 48) -> np.ndarray:
        return blob_image(COLOURS[label], seed, size)

    return make


@dataclass
class SyntheticDataset:
    """A generated ISIC-layout folder and, when flawed, where each flaw was planted."""

    root: Path
    classes: tuple[str, ...]
    per_class: int
    originals: dict[str, list[Path]] = field(default_factory=dict)
    test_images: list[Path] = field(default_factory=list)
    duplicate: tuple[Path, Path] | None = None  # (original, exact copy in the same class)
    conflict: tuple[Path, Path] | None = None  # (original, same picture under another class)
    leak: tuple[Path, Path] | None = None  # (Train original, copy in Test)
    corrupt: Path | None = None
    text: Path | None = None

    def train_dir(self, label: str) -> Path:
        return self.root / "Train" / label


def build_dataset(
    root: Path, classes: tuple[str, ...] = SYNTHETIC_CLASSES, per_class: int = 6, flaws: bool = False
) -> SyntheticDataset:
    """Write ``<root>/Train/<class>/*.jpg``; with ``flaws`` also plant one of each flaw.

    The flaws: an exact duplicate within a class, the same picture under two
    classes, a Test/ folder holding a copy of a Train image, a truncated JPEG
    and a text file among the images.
    """
    data = SyntheticDataset(root=root, classes=classes, per_class=per_class)
    for c, label in enumerate(classes):
        folder = data.train_dir(label)
        folder.mkdir(parents=True)
        data.originals[label] = []
        for i in range(per_class):
            path = folder / f"ISIC_{c:02d}{i:03d}.jpg"
            path.write_bytes(encode_pixels(blob_image(COLOURS[label], seed=1000 * c + i), quality=95))
            data.originals[label].append(path)
    if not flaws:
        return data

    first, second, third = classes[0], classes[1], classes[-1]
    source = data.originals[first][0]
    data.duplicate = (source, data.train_dir(first) / "copy_of_first.jpg")
    shutil.copyfile(*data.duplicate)

    source = data.originals[first][1]
    data.conflict = (source, data.train_dir(second) / "filed_twice.jpg")
    shutil.copyfile(*data.conflict)

    for c, label in enumerate(classes):  # a genuine Test set, one new picture per class
        path = root / "Test" / label / f"ISIC_test_{c:02d}.jpg"
        path.parent.mkdir(parents=True)
        path.write_bytes(encode_pixels(blob_image(COLOURS[label], seed=50_000 + c), quality=95))
        data.test_images.append(path)
    data.leak = (data.originals[first][2], root / "Test" / first / "leaked.jpg")
    shutil.copyfile(*data.leak)

    whole = encode_pixels(blob_image(COLOURS[second], seed=99_999, size=160), quality=95)
    data.corrupt = data.train_dir(second) / "truncated.jpg"
    data.corrupt.write_bytes(whole[: len(whole) // 2])

    data.text = data.train_dir(third) / "notes.txt"
    data.text.write_text("dermatologist notes, not an image\n")
    return data


@pytest.fixture(scope="session")
def make_dataset(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., SyntheticDataset]:
    """Factory for a fresh dataset folder each call: ``make_dataset(flaws=True)``."""

    def make(**options) -> SyntheticDataset:
        return build_dataset(tmp_path_factory.mktemp("dataset"), **options)

    return make


@pytest.fixture
def clean_dataset(make_dataset) -> SyntheticDataset:
    """Three classes of six distinct images each, no flaws."""
    return make_dataset()


@pytest.fixture
def flawed_dataset(make_dataset) -> SyntheticDataset:
    """The clean dataset plus a duplicate, a label conflict, a leak, a corrupt JPEG and a text file."""
    return make_dataset(flaws=True)


@pytest.fixture(scope="session")
def encode() -> Callable[..., bytes]:
    """``encode(pixels, "PNG", **options)``: pixels to file bytes through Pillow."""
    return encode_pixels


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="session")
def snapshot() -> Callable[[Path], dict[str, tuple[int, int]]]:
    """``snapshot(folder)`` before and after an operation proves it wrote nothing there."""
    return listing


@pytest.fixture(scope="session")
def tiny_model():
    """An untrained 32-pixel, width-4 network: enough to exercise the registry and predictor."""
    from skin_model import CLASSES
    from skin_model.network import build
    from skin_model.runtime import seed_everything

    seed_everything(0)
    return build(32, len(CLASSES), width=4)


@pytest.fixture(scope="session")
def loud_tiny_model(tiny_model):
    """The tiny model with its logits 1e5 times larger: an untrained network's are about 1e-6, too small for
    a test to tell one view, one image or one average from another."""
    import keras

    from skin_model import CLASSES

    model = keras.models.clone_model(tiny_model)
    weights = tiny_model.get_weights()
    kernel = [w.ndim == 2 and w.shape[-1] == len(CLASSES) for w in weights].index(True)
    weights[kernel] = weights[kernel] * 1e5
    model.set_weights(weights)
    return model


@pytest.fixture
def live_tiny_model(tiny_model):
    """The tiny model registered in this test's SKIN_HOME registry and made live."""
    from skin_model.registry import Registry

    return Registry().register(tiny_model, VersionRecord.from_dict(servable_metadata(tiny_model)), activate=True)


@pytest.fixture(scope="session")
def servable() -> Callable[..., dict]:
    """``servable(model)``: metadata a Predictor accepts for an untrained model."""
    return servable_metadata


def servable_metadata(model) -> dict:
    """Servable metadata for an untrained model: temperature 1, threshold 0.5, a gate that refuses nothing."""
    from skin_model.imaging import STAT_NAMES

    width = int(model.get_layer("features").output.shape[-1]) + len(STAT_NAMES)
    ranges = {k: [-1e9, 1e9] for k in ("cast_blue_red", "dark_corners", "brightness", "saturation")}
    gate = {"mean": [0.0] * width, "scale": [1.0] * width, "weights": [0.0] * width, "bias": 1.0, "threshold": 0.5}
    gate["stat_names"] = list(STAT_NAMES)
    return {"temperature": 1.0, "alert_threshold": 0.5, "image_size": 32, "gate": gate | {"unusual_ranges": ranges}}


@pytest.fixture
def stop_job() -> Callable:
    """``stop_job(job)``: cancel a training job and wait until its worker has ended (the tests' clean-up)."""
    from skin_model import jobs

    def stop(job, timeout: float = 60.0):
        jobs.cancel(jobs.refresh(job))
        deadline = time.time() + timeout
        while jobs.refresh(job).active and time.time() < deadline:
            time.sleep(0.2)
        return jobs.refresh(job)

    return stop


def written(version) -> dict:
    """A registered version's ``metadata.json`` as stored: what the registry wrote, key by key."""
    import json

    return json.loads((version.path / "metadata.json").read_text())
