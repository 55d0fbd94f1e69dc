"""Plain words on the Models and Retrain pages (issue 30, item 7): rounded figures, steady time-left, no noise."""

from __future__ import annotations

import pytest

from skin_model import jobs


def test_the_job_log_drops_library_start_up_noise_and_keeps_the_jobs_own_lines():
    log = "\n".join(
        [
            "2026-12-07 10:00:00.123456: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on.",
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
            "E0000 00:00:1733565600.123456    4242 cuda_dnn.cc:8310] Unable to register cuDNN factory",
            "audit: 2,310 images, 2,296 usable",
            "epoch 1/8: loss 1.21, val balanced accuracy 0.41",
        ]
    )
    assert (
        jobs.readable_log(log) == "audit: 2,310 images, 2,296 usable\nepoch 1/8: loss 1.21, val balanced accuracy 0.41"
    )


def steps(times: list[float], epochs: int = 2, per_epoch: int = 10) -> list[dict]:
    return [
        {"event": "step", "time": t, "epoch": 1 + i // per_epoch, "epochs": epochs, "step": 1 + i % per_epoch}
        | {"steps": per_epoch}
        for i, t in enumerate(times)
    ]


def test_time_left_follows_the_average_pace_not_the_last_steps_swings():
    even = steps([float(i) for i in range(10)])  # one second a step: 10 of 20 steps left
    assert jobs.time_left(even) == pytest.approx(10.0)
    jumpy = steps([0, 1, 2, 3, 4, 5, 6, 7, 8, 9.5])  # one slow step moves it a little, not by half
    assert jobs.time_left(jumpy) == pytest.approx(10 * 9.5 / 9)
    assert jobs.time_left(even[:1]) is None


def test_the_expected_time_comes_from_the_live_versions_seconds_an_epoch():
    assert jobs.expected_seconds(8, 180.0) == 1440.0
    assert jobs.expected_seconds(8, None) is None
    assert jobs.ENDINGS["KILLED"].startswith("Cancelled")


def event(kind: str, **fields) -> dict:
    return {"event": kind, "time": fields.pop("time", 0.0), **fields}


def test_a_jobs_status_is_read_from_its_events_once_for_the_page_to_draw():
    from skin_model.jobs import job_status

    running = {"state": "RUNNING"}
    events = [
        event("prepare"),
        event("start", epochs=2, steps=10),
        event("step", epoch=1, epochs=2, step=1, steps=10, time=100.0),
        event("step", epoch=1, epochs=2, step=6, steps=10, time=110.0),
    ]

    preparing = job_status(running, events[:2])
    stepping = job_status(running, events)
    ended = job_status(running, [*events, event("epoch", epoch=1, epochs=2, loss=1.2, val_balanced_accuracy=0.4)])
    failed = job_status({"state": "FAILED", "error": "disk full"}, events)

    assert preparing.active and preparing.epoch is None and preparing.done == 0.0
    assert (stepping.epoch, stepping.epochs, stepping.step, stepping.steps) == (1, 2, 6, 10)
    assert stepping.done == pytest.approx(6 / 20) and stepping.seconds_left == pytest.approx(14 * 2.0)
    assert stepping.progress_line() == "epoch 1/2, step 6/10, about 0.5 min left"
    assert ended.step is None and ended.done == pytest.approx(10 / 20)  # an epoch's end counts all its steps
    assert ended.last.loss == 1.2 and ended.last.val_balanced_accuracy == 0.4 and ended.last.val_loss is None
    assert ended.progress_line().startswith("epoch 1/2, about")
    assert not failed.active and failed.error == "disk full" and failed.seconds_left is None
    assert failed.progress_line() == "epoch 1/2, step 6/10"
