"""Faults a clinic will meet: a tampered model file, long-running prediction loops."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from skin_model.errors import RegistryError
from skin_model.predict import Predictor
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


def test_the_app_falls_back_to_the_last_good_version_when_the_live_file_is_corrupt(tiny_model):
    registry = Registry()
    good = registry.register(tiny_model, {"temperature": 1.0, "alert_threshold": 0.5}, activate=True)
    never_live = registry.register(tiny_model, {"temperature": 1.0, "alert_threshold": 0.5})
    bad = registry.register(tiny_model, {"temperature": 1.0, "alert_threshold": 0.5}, activate=True)
    bad.model_path.write_bytes(b"not a keras file")
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert any("checksum" in e.value for e in at.error)
    assert any(f"Using model version {good.number}" in w.value for w in at.warning)
    assert not any(f"version {never_live.number}" in w.value for w in at.warning)  # never approved, never used
    assert registry.live_number() == bad.number  # nothing silently rewritten
