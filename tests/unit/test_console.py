"""`python -m skin_model train` shows its progress: a bar per epoch on a terminal, one line per epoch when piped."""

from __future__ import annotations

import json

import pytest

from skin_model.cli import main
from skin_model.console import TrainingConsole


def events(epochs: int = 2, steps: int = 6) -> list[dict]:
    """What train.run reports for a short run: prepare, start, a step event every few steps, one per epoch."""
    found = [
        {"event": "prepare", "data": "/data/isic"},
        {"event": "start", "epochs": epochs, "steps": steps, "train_images": 48, "originals": 18, "val_images": 6},
    ]
    for epoch in range(1, epochs + 1):
        for step in (1, steps):
            found.append(
                {"event": "step", "epoch": epoch, "epochs": epochs, "step": step, "steps": steps}
                | {"loss": 1.5 - step / 10, "accuracy": 0.25, "eta_s": 12.0}
            )
        found.append(
            {"event": "epoch", "epoch": epoch, "epochs": epochs, "loss": 1.2, "accuracy": 0.4, "val_loss": 1.3}
            | {"val_accuracy": 0.5, "val_balanced_accuracy": 0.45, "best_epoch": 1, "eta_s": 30.0 * (epochs - epoch)}
        )
    return [*found, {"event": "registered", "version": 2, "live": False}]


def test_on_a_terminal_each_epoch_gets_a_keras_progress_bar_then_its_validation_line(capsys):
    console = TrainingConsole(terminal=True)
    for event in events():
        console(event)

    out = capsys.readouterr().out
    assert out.count("━") >= 2 * 20  # Keras's bar, 20 wide, drawn in each epoch
    assert "6/6" in out and "/step" in out and "loss: 0.9000" in out
    lines = [line for line in out.splitlines() if line.startswith("epoch 1/2: ") or line.startswith("epoch 2/2: ")]
    assert lines == [
        "epoch 1/2: loss 1.2000, accuracy 0.4000, val loss 1.3000, val accuracy 0.5000, "
        "val balanced accuracy 0.4500 (best epoch 1), about 0.5 min left",
        "epoch 2/2: loss 1.2000, accuracy 0.4000, val loss 1.3000, val accuracy 0.5000, "
        "val balanced accuracy 0.4500 (best epoch 1)",
    ]


def test_piped_output_is_one_plain_line_per_epoch(capsys):
    console = TrainingConsole(terminal=False)
    for event in events(epochs=3):
        console(event)

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "\x1b" not in "".join(lines) and "━" not in "".join(lines)


TRAIN = ["train", "--epochs", "2", "--image-size", "32", "--width", "4", "--batch-size", "8", "--n", "8"]


@pytest.mark.slow
def test_train_prints_a_line_per_epoch_while_it_runs_and_json_stays_one_document(capsys, clean_dataset):
    assert main([*TRAIN, "--data", str(clean_dataset.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["epoch 1/2", "epoch 2/2"]
    assert "val balanced accuracy" in lines[0] and lines[2].startswith("registered model version")

    assert main([*TRAIN, "--data", str(clean_dataset.root), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"version", "metrics"}  # nothing but the result
