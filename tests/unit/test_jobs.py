"""The training worker as a real OS process: one at a time, cancel, crash, wrong input."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from skin_model import jobs
from skin_model.config import BalanceConfig, TrainConfig
from skin_model.errors import DatasetError
from skin_model.registry import Registry

pytestmark = pytest.mark.slow

LONG = TrainConfig(epochs=200, image_size=32, batch_size=4, width=4, balance=BalanceConfig(strategy="target", n=40))


def wait_for(condition, timeout: float = 90.0, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def training_steps(job: jobs.Job) -> bool:
    return any(e["event"] == "step" for e in job.progress())


def finished(job: jobs.Job) -> jobs.Job | None:
    job = jobs.refresh(job)
    return None if job.active else job


def registry_state() -> tuple[list[int], int | None]:
    registry = Registry()
    return [v.number for v in registry.versions()], registry.live_number()


def test_a_killed_worker_is_reported_interrupted_and_the_registry_is_untouched(clean_dataset, skin_home):
    before = registry_state()
    job = jobs.start(clean_dataset.root, LONG)
    wait_for(lambda: training_steps(job), what="the worker to train")
    os.kill(jobs.refresh(job).status["pid"], signal.SIGKILL)
    ended = wait_for(lambda: finished(job), what="the job to be seen as ended")
    assert ended.state == "INTERRUPTED"
    assert "stopped unexpectedly" in ended.status["error"]
    assert registry_state() == before
    assert not [p for p in (skin_home / "models").iterdir() if p.name.startswith(".staging")]
    again = jobs.start(clean_dataset.root, LONG)  # the stale lock does not block a new job
    jobs.cancel(again)
    assert wait_for(lambda: finished(again), what="the cancel").state == "KILLED"


def test_cancel_stops_the_worker_and_registers_nothing(clean_dataset):
    before = registry_state()
    job = jobs.start(clean_dataset.root, LONG)
    wait_for(lambda: training_steps(job), what="the worker to train")
    jobs.cancel(job)
    ended = wait_for(lambda: finished(job), what="the cancel")
    assert ended.state == "KILLED"
    assert "cancelled" in ended.status["error"]
    assert registry_state() == before


def test_two_simultaneous_starts_start_exactly_one_job(clean_dataset):
    barrier = threading.Barrier(2)
    started, refused = [], []

    def press_start():
        barrier.wait()
        try:
            started.append(jobs.start(clean_dataset.root, LONG))
        except jobs.JobError as error:
            refused.append(str(error))

    threads = [threading.Thread(target=press_start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(started) == 1 and len(refused) == 1
    assert "already running" in refused[0]
    jobs.cancel(started[0])
    wait_for(lambda: finished(started[0]), what="the cancel")


def test_a_wrong_data_folder_starts_no_process(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        jobs.start(tmp_path / "missing", LONG)
    assert jobs.all_jobs() == []


def test_a_short_job_finishes_and_registers_one_version_without_making_it_live(clean_dataset):
    before_versions, live = registry_state()
    quick = TrainConfig(epochs=1, image_size=32, batch_size=8, width=4, balance=BalanceConfig(strategy="target", n=8))
    job = jobs.start(clean_dataset.root, quick)
    ended = wait_for(lambda: finished(job), timeout=180, what="the job to finish")
    assert ended.state == "FINISHED", ended.status.get("error")
    versions, live_after = registry_state()
    assert versions == [*before_versions, ended.status["version"]]
    assert live_after == live


@pytest.fixture
def small_models_fs(skin_home):
    """``SKIN_HOME/models`` on its own 4 MB tmpfs, seeded with the default model (needs root)."""
    import subprocess

    models = skin_home / "models"
    models.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(models)], capture_output=True
        ).returncode
    ):
        pytest.skip("needs root to mount a small tmpfs for the state folder")
    try:
        Registry().versions()  # seed the committed default model as live version 1
        yield models
    finally:
        subprocess.run(["umount", "-l", str(models)], check=False)


QUICK = TrainConfig(epochs=1, image_size=32, batch_size=8, width=4, balance=BalanceConfig(strategy="target", n=8))


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_state_folder_that_cannot_be_written_fails_the_job_and_changes_nothing(clean_dataset, small_models_fs, fault):
    import subprocess

    before = registry_state()
    if fault == "full":
        subprocess.run(["dd", "if=/dev/zero", f"of={small_models_fs / 'filler'}", "bs=64k"], capture_output=True)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(small_models_fs)], check=True)
    job = jobs.start(clean_dataset.root, QUICK)
    ended = wait_for(lambda: finished(job), timeout=180, what="the job to end")
    assert ended.state == "FAILED"
    assert "could not write to the state folder" in ended.status["error"]
    assert registry_state() == before
    assert not [p for p in small_models_fs.iterdir() if p.name.startswith(".staging")]
