"""Faults a clinic will meet: a tampered model file, long-running prediction loops, huge photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from skin_model.errors import RegistryError
from skin_model.predict import Predictor
from skin_model.record import VersionRecord
from skin_model.registry import Registry

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_five_hundred_predictions_grow_memory_by_less_than_100_mb(live_tiny_model, blob, encode):
    predictor = Predictor.load()
    data = encode(blob("nevus", 4, size=300), "JPEG")
    for _ in range(30):  # warm-up: tracing, allocator pools
        predictor.predict_bytes(data, "warm.jpg")
    before = rss_mb()
    for i in range(500):
        predictor.predict_bytes(data, f"img{i}.jpg", tta=i % 10 == 0)
    assert rss_mb() - before < 100


def test_a_tampered_model_file_is_refused_by_checksum(live_tiny_model):
    registry = Registry()
    with live_tiny_model.model_path.open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(RegistryError, match="checksum"):
        registry.load(registry.get(live_tiny_model.number))
    with pytest.raises(RegistryError, match="checksum"):
        registry.activate(live_tiny_model.number)


def test_the_app_falls_back_to_the_last_good_version_when_the_live_file_is_corrupt(tiny_model, servable):
    registry = Registry()
    good = registry.register(tiny_model, VersionRecord.from_dict(servable(tiny_model)), activate=True)
    never_live = registry.register(tiny_model, VersionRecord.from_dict(servable(tiny_model)))
    bad = registry.register(tiny_model, VersionRecord.from_dict(servable(tiny_model)), activate=True)
    bad.model_path.write_bytes(b"not a keras file")
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert any("checksum" in e.value for e in at.error)
    assert any(f"Using model version {good.number}" in w.value for w in at.warning)
    assert not any(f"version {never_live.number}" in w.value for w in at.warning)  # never approved, never used
    assert registry.live_number() == bad.number  # nothing silently rewritten


# Runs in a fresh process so its peak RSS (ru_maxrss) belongs to this photo alone.
HUGE_PHOTO_CHILD = """
import json, resource, sys
from pathlib import Path
import numpy as np
from skin_model import images
from skin_model.predict import Predictor

peak_mb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
predictor = Predictor.load()
predictor.predict(np.full((300, 400, 3), 128, np.uint8))  # model loaded and warm: the baseline
before = peak_mb()
pixels = images.decode(Path(sys.argv[1]).read_bytes(), name="huge.jpg")  # as the page does with an upload
result = predictor.predict(pixels, name="huge.jpg")
print(json.dumps({"growth_mb": peak_mb() - before, "shape": list(pixels.shape), "top": result.top_class}))
"""
HUGE_PHOTO_BOUND_MB = 100  # a full-resolution decode of 8000x6000 needs 144 MB for one RGB copy alone


def test_a_huge_valid_photo_is_classified_within_a_bounded_peak_memory(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(90, 230, (60, 80, 3), dtype=np.uint8))
    path = tmp_path / "huge.jpg"
    small.resize((8000, 6000), Image.Resampling.BILINEAR).save(path, quality=85)  # 48 MP, under the 50 MP limit
    child = subprocess.run(
        [sys.executable, "-c", HUGE_PHOTO_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )
    assert child.returncode == 0, child.stderr[-2000:]
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [768, 1024, 3]
    assert measured["growth_mb"] < HUGE_PHOTO_BOUND_MB, measured
