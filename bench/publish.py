"""One results file, three writers: each bench owns one part of ``bench/RESULTS.md`` and keeps the others."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _parts(body: str) -> tuple[str, list[str]]:
    head, *sections = body.split("\n## ")
    return head, ["## " + s for s in sections]


def put_head(text: str, path: Path = RESULTS) -> None:
    """Replace everything before the first ``## `` section (the recipe comparison of ``bench.run``)."""
    _, sections = _parts(path.read_text() if path.exists() else "")
    path.write_text("\n\n".join([text.rstrip(), *(s.rstrip() for s in sections)]) + "\n")


def put_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section whose first line is ``## heading...`` or append it; ``text`` starts with that line."""
    head, sections = _parts(path.read_text() if path.exists() else "# Benchmarks\n")
    kept = [s.rstrip() for s in sections if not s.startswith(f"## {heading}")]
    index = next((i for i, s in enumerate(sections) if s.startswith(f"## {heading}")), len(kept))
    kept.insert(index, text.strip())
    path.write_text("\n\n".join([head.rstrip(), *kept]) + "\n")


def publish(out: Path, results: dict, heading: str, text: str) -> None:
    """A bench's results: its JSON file, its section of RESULTS.md, and the same text on the terminal."""
    import json

    out.write_text(json.dumps(results, indent=2) + "\n")
    put_section(heading, text)
    print(text)


def figure(value: float | None, missing: str = "n/a") -> str:
    """A figure as the tables print it: three decimals, or ``missing``."""
    return missing if value is None else f"{value:.3f}"
