"""``bench.stress render``: the out-of-source section of RESULTS.md is what the committed measurements say."""

from __future__ import annotations

from bench import stress
from bench.publish import RESULTS


def test_the_committed_results_section_is_rendered_from_the_committed_measurements():
    results = stress.load()
    text = stress.render(results)

    assert text.strip() in RESULTS.read_text()  # a rerun bench or a hand edit left it stale otherwise
    for key in results:
        if key.startswith(("recipe: ", "folds: ")):
            assert key.split(": ", 1)[1] in text  # every measured recipe has its row


def test_render_without_any_measurement_still_gives_the_section(tmp_path, monkeypatch):
    monkeypatch.setattr(stress, "RESULTS_JSON", tmp_path / "none.json")
    monkeypatch.setattr(stress, "put_section", lambda heading, text: None)  # leave the committed file alone

    assert stress.main(["render"]) == 0
    assert stress.render({}).startswith("## Out-of-source")
