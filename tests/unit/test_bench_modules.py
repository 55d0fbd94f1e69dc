"""Every measurement in bench/ still imports: a rename in the package must not leave a benchmark that only fails
when someone next runs it (bench.gate had been broken by a renamed setting)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__")


def test_the_bench_folder_holds_the_measurements_the_makefile_names():
    makefile = (BENCH.parent / "Makefile").read_text()
    named = {m for m in MODULES if f"bench.{m}" in makefile}
    assert {"isic2017", "gate", "app", "stress", "multiview"} <= named


@pytest.mark.parametrize("name", MODULES)
def test_every_bench_module_imports_and_has_a_command_line(name):
    module = importlib.import_module(f"bench.{name}")
    if name not in {"publish", "external", "look"}:  # libraries the others import
        assert callable(getattr(module, "main", None)), f"bench.{name} has no main()"
