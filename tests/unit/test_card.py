"""The model card says where the numbers come from, shows the shift tables and never parses a typed path."""

from __future__ import annotations

from skin_model import card
from skin_model.record import VersionRecord
from skin_model.shift import PAIRED

ROW = {
    "images": 10,
    "balanced_accuracy": 0.5,
    "melanoma_sensitivity": 0.9,
    "melanoma_specificity": None,
    "melanoma_roc_auc": None,
    "ece": 0.1,
    "refused": 0.0,
}


def test_a_typed_data_folder_is_shown_as_typed_not_as_markdown():
    text = card.render(VersionRecord.from_dict({"data": {"root": "![t](http://127.0.0.1:9/beacon.png) **B**"}}))

    assert "` ![t](http://127.0.0.1:9/beacon.png) **B** `" in text


def test_per_source_and_stress_tables_and_the_threshold_cost_are_shown():
    metadata = {
        "robustness": {"per_source": {"isic_archive/isic-0k": ROW}, "stress": {"none": ROW, "dark vignette": ROW}},
        "threshold_cost": {"clean_threshold": 0.06, "clean_specificity": 0.54, "specificity": 0.38},
        "gate": {"threshold": 0.14, "negatives_refused": 0.978, "negatives": 926},
    }

    text = card.render(VersionRecord.from_dict(metadata))

    assert "| ` isic_archive/isic-0k ` | 10 | 50.0% | 90.0% | n/a | n/a | 0.0% |" in text  # a name from the data
    assert "| dark vignette | 10 |" in text
    assert "would be 0.06" in text and "costs specificity 16.0%" in text
    assert "Refuses 97.8% of its 926 fitting negatives" in text


def test_two_alert_thresholds_are_both_named_with_what_each_costs():
    cost = {"clean_threshold": 0.1065, "clean_specificity": 0.633, "specificity": 0.601}
    cost |= {"strict_specificity": 0.472, "unusual_share": 0.046}

    text = card.render(
        VersionRecord.from_dict({"alert_threshold": 0.102, "alert_threshold_unusual": 0.0603, "threshold_cost": cost})
    )

    assert "P(melanoma) >= 0.102, or >= 0.0603 for an image whose imaging conditions are unusual" in text
    assert "Validation specificity 60.1% (4.6% of its images unusual); 47.2% were every image held" in text


def test_each_warnings_own_threshold_is_named():
    own = {"cool (blue) colour cast": 0.0603, "dark vignette at the corners": 0.0951}
    metadata = {"alert_threshold": 0.102, "alert_threshold_unusual": 0.0603, "alert_threshold_by_warning": own}

    text = card.render(VersionRecord.from_dict(metadata))

    assert "P(melanoma) >= 0.102, or lower for an image whose imaging conditions are unusual" in text
    assert "(cool (blue) colour cast 0.0603, dark vignette at the corners 0.0951; an image with several" in text
    assert "The strict 0.0603 is the lowest that does alone." in text


def test_the_gate_line_counts_missed_negatives_instead_of_rounding_them_away():
    gate = {"threshold": 0.44, "negatives_refused": 0.9998, "negatives": 4167, "hidden_weights": {}}

    missed_one = card.render(VersionRecord.from_dict({"gate": gate | {"negatives_missed": 1}}))
    missed_none = card.render(
        VersionRecord.from_dict({"gate": gate | {"negatives_missed": 0, "negatives_refused": 1.0}})
    )

    assert "Refuses all but 1 of its 4167 fitting negatives" in missed_one and "100.0%" not in missed_one
    assert "Refuses every one of its 4167 fitting negatives" in missed_none


def test_the_recipe_line_names_twins_and_look_swaps_only_when_a_version_used_them():
    def recipe(config: dict) -> str:
        return next(
            line
            for line in card.render(VersionRecord.from_dict({"config": config})).splitlines()
            if line.startswith("- Recipe:")
        )

    plain = recipe({"weighting": "class-domain"})
    assert plain == "- Recipe: loss weights balanced over class x acquisition domain."
    both = recipe({"weighting": "class-domain", "device_augment": "mild", "consistency": 12.0, "look_swap": 0.5})
    assert "; each image beside a camera-altered twin, their disagreement weighted 12; " in both
    assert both.endswith("; 50% of images given another image's colour look.")


def test_the_gate_lines_say_pairs_of_conditions_only_for_a_gate_fitted_on_them():
    gate = {"threshold": 0.41, "negatives_refused": 1.0, "negatives": 5093, "hidden_weights": {}}

    paired = card.render(VersionRecord.from_dict({"gate": gate | {"fitted_under": ["as taken", "dim", PAIRED]}}))
    single = card.render(VersionRecord.from_dict({"gate": gate}))

    assert "or under a seeded pair of them at once" in paired and "every stress condition and a pair" in paired
    assert "pair" not in single


def test_the_gate_summary_names_what_it_refuses_and_what_it_costs_real_lesions():
    gate = {"threshold": 0.5, "negatives_refused": 0.9995, "negatives": 5556, "negatives_missed": 3}
    stress = {
        "none": {"images": 307, "refused": 0.0},
        "cool cast": {"images": 307, "refused": 0.0065},
        "narrow field of view": {"images": 307, "refused": 0.0098},
    }

    line = card.gate_summary(
        VersionRecord.from_dict({"gate": gate, "robustness": {"stress": stress}, "metrics": {"test": {}}})
    )

    assert "refuses all but 3 of its 5,556 fitting negatives" in line
    assert "Of the 307 held-out test lesions it refuses none as taken and at most 1.0% under any of 2 " in line
    assert line.endswith("(narrow field of view).")
    assert card.gate_summary(VersionRecord.from_dict({"metrics": {}})) is None
    assert "lesions" not in card.gate_summary(
        VersionRecord.from_dict({"gate": gate})
    )  # no stress table: only what it refuses


def test_a_source_name_from_the_metadata_csv_stays_text_in_its_table_cell():
    from markdown_it import MarkdownIt

    hostile = "x | ![b](https:127.0.0.1:8698) [Sign in](https:127.0.0.1:8698)"
    text = card.render(VersionRecord.from_dict({"robustness": {"per_source": {hostile: ROW}, "stress": {"none": ROW}}}))

    rendered = MarkdownIt("commonmark").enable("table").render(text)
    assert "<img" not in rendered and "<a " not in rendered
    row = next(r for r in rendered.split("<tr>") if "Sign in" in r)
    assert row.count("<td>") == 7  # the name's own pipe is escaped: one cell, not two
