"""The CLI: JSON on stdout, one "error:" line on stderr for problems a user can fix, never a traceback."""

from __future__ import annotations

import json

import pytest

from skin_model import CLASSES
from skin_model.cli import main
from skin_model.record import VersionRecord


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    return lines[0]


def test_audit_json_reports_every_planted_flaw(capsys, flawed_dataset):
    code, out, _ = run(capsys, "audit", "--data", str(flawed_dataset.root), "--json")

    summary = json.loads(out)
    assert code == 0
    assert len(summary["conflicts"]) == 1
    assert len(summary["leaks"]) == 1
    assert [item["file"] for item in summary["unreadable"]] == ["Train/nevus/truncated.jpg"]
    assert summary["not_images"] == ["Train/basal cell carcinoma/notes.txt"]


def test_audit_reads_the_dataset_from_skin_data_dir(capsys, clean_dataset, monkeypatch):
    monkeypatch.setenv("SKIN_DATA_DIR", str(clean_dataset.root))

    code, out, _ = run(capsys, "audit", "--json")

    assert code == 0
    assert json.loads(out)["images"] == 18


def test_audit_table_names_the_findings(capsys, flawed_dataset):
    code, out, _ = run(capsys, "audit", "--data", str(flawed_dataset.root))

    assert code == 0
    assert "same image under different classes (dropped from training): 1" in out
    assert "unreadable files: 1" in out


def test_audit_of_a_missing_folder_exits_2_with_one_error_line(capsys, tmp_path):
    missing = tmp_path / "nonexistent"

    code, out, err = run(capsys, "audit", "--data", str(missing))

    assert code == 2
    assert out == ""
    assert str(missing) in assert_one_error_line(err)


def test_audit_without_data_says_how_to_give_it(capsys):
    code, _, err = run(capsys, "audit")

    assert code == 2
    assert "--data" in assert_one_error_line(err)


def test_predict_prints_one_json_line_per_good_file_and_one_error_per_bad_file(
    capsys, live_tiny_model, tmp_path, blob, encode
):
    good, bad = tmp_path / "good.jpg", tmp_path / "bad.jpg"
    good.write_bytes(encode(blob(seed=1, size=120)))
    bad.write_text("not an image")

    code, out, err = run(capsys, "predict", str(good), str(bad), "--json")

    assert code == 1
    lines = out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert {"file", "probabilities", "top_class", "melanoma_alert", "warnings"} <= set(result)
    assert result["file"] == str(good)
    assert set(result["probabilities"]) == set(CLASSES)
    assert result["model_version"] == live_tiny_model.number
    assert "bad.jpg" in assert_one_error_line(err)


def test_predict_with_only_good_files_exits_0(capsys, live_tiny_model, tmp_path, blob, encode):
    good = tmp_path / "good.png"
    good.write_bytes(encode(blob(seed=2, size=120), "PNG"))

    code, out, err = run(capsys, "predict", str(good), "--tta")

    assert code == 0 and err == ""
    assert out.startswith(f"{good}: ")


def test_predict_when_no_version_is_live_exits_2_with_one_error_line(capsys, tiny_model, tmp_path, blob, encode):
    from skin_model.registry import Registry

    Registry(seed_dir=None).register(
        tiny_model, VersionRecord.from_dict({}), activate=False
    )  # a registry with no default to seed
    good = tmp_path / "good.jpg"
    good.write_bytes(encode(blob(seed=3)))

    code, _, err = run(capsys, "predict", str(good))

    assert code == 2
    assert "no live model" in assert_one_error_line(err)


def test_models_json_lists_versions_and_marks_the_live_one(capsys, live_tiny_model, tiny_model):
    from skin_model.registry import Registry

    extra = Registry().register(tiny_model, VersionRecord.from_dict({"temperature": 1.0}))

    code, out, _ = run(capsys, "models", "--json")

    assert code == 0
    listed = {row["version"]: row["live"] for row in json.loads(out)}
    assert listed[live_tiny_model.number] is True
    assert listed[extra.number] is False


def test_models_activate_makes_a_version_live(capsys, live_tiny_model, tiny_model):
    from skin_model.registry import Registry

    extra = Registry().register(tiny_model, VersionRecord.from_dict({"temperature": 1.0}))

    code, out, _ = run(capsys, "models", "activate", str(extra.number), "--json")

    assert code == 0
    assert json.loads(out) == {"live": extra.number}
    assert Registry().live_number() == extra.number


@pytest.mark.parametrize("argv", [["models", "activate", "99"], ["models", "activate"]], ids=["missing", "no-number"])
def test_models_activate_of_a_missing_version_exits_2(capsys, live_tiny_model, argv):
    code, _, err = run(capsys, *argv)

    assert code == 2
    assert_one_error_line(err)


def test_balance_json_shows_counts_before_and_after(capsys, clean_dataset):
    code, out, _ = run(
        capsys, "balance", "--data", str(clean_dataset.root), "--strategy", "target", "--n", "10", "--json"
    )

    data = json.loads(out)
    assert code == 0
    assert set(data["before"]) == set(data["after"]) == set(CLASSES)
    assert all(data["after"][name] == 10 for name in clean_dataset.classes)
    assert data["after"]["dermatofibroma"] == 0


def test_train_flags_reach_the_recipe_so_an_earlier_recipe_can_be_retrained_from_the_command_line():
    from skin_model.cli import parser, train_config
    from skin_model.config import TrainConfig

    default = train_config(parser().parse_args(["train"]))
    earlier = train_config(parser().parse_args(["train", "--look-swap", "0", "--views", "1"]))

    assert default == TrainConfig()  # no flag: the custom CNN's recipe
    assert (earlier.look_swap, earlier.views) == (0.0, 1)


def test_the_pretrained_backbone_flag_takes_the_default_models_recipe_unless_a_flag_says_otherwise():
    from dataclasses import replace

    from skin_model.cli import parser, train_config
    from skin_model.config import DEFAULT_RECIPE

    lite0 = train_config(parser().parse_args(["train", "--backbone", "efficientnet-lite0"]))
    longer = train_config(parser().parse_args(["train", "--backbone", "efficientnet-lite0", "--epochs", "3"]))
    onwards = train_config(parser().parse_args(["train", "--backbone", "efficientnet-lite0", "--continue-from", "2"]))

    assert lite0 == replace(DEFAULT_RECIPE, cases=True)  # the clinic's cases join unless --no-cases
    assert (longer.epochs, longer.learning_rate, longer.views) == (3, DEFAULT_RECIPE.learning_rate, 1)
    assert onwards.continue_from == 2


def test_train_with_a_look_swap_outside_0_to_1_exits_2_before_training(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--data", str(tmp_path), "--look-swap", "1.5")

    assert code == 2
    assert "look swap" in assert_one_error_line(err)
