"""The training worker as a real OS process: one at a time, cancel, crash, wrong input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from skin_model import jobs
from skin_model.config import REPO_ROOT, BalanceConfig, TrainConfig
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
    again = jobs.start(clean_dataset.root, LONG)  # at once: the ended worker may still be exiting
    jobs.cancel(again)
    assert wait_for(lambda: finished(again), what="the second cancel").state == "KILLED"


def thread_priorities(pid: int) -> set[tuple[int, int]]:
    """(scheduling policy, nice) of every thread of a process: a thread started early could escape the setting."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[-1].split()
        found.add((os.sched_getscheduler(int(task.name)), int(fields[16])))
    return found


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(None, {(os.SCHED_IDLE, 0)}), ("low", {(os.SCHED_OTHER, 19)})],
    ids=["default-idle", "low"],
)
def test_the_worker_and_all_its_threads_run_below_the_app(clean_dataset, monkeypatch, setting, expected):
    if setting:
        monkeypatch.setenv("SKIN_WORKER_PRIORITY", setting)
    job = jobs.start(clean_dataset.root, LONG)
    try:
        wait_for(lambda: training_steps(job), what="the worker to train")
        pid = jobs.refresh(job).status["pid"]
        assert len(list(Path(f"/proc/{pid}/task").iterdir())) > 2  # TensorFlow's pools are running
        assert thread_priorities(pid) == expected
        assert jobs.refresh(job).status["priority"] == (setting or "idle")
        assert os.sched_getscheduler(0) == os.SCHED_OTHER and os.nice(0) == 0  # the starter is untouched
    finally:
        jobs.cancel(job)
        wait_for(lambda: finished(job), what="the cancel")


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
    """``SKIN_HOME/models`` on its own 32 MB tmpfs (the default model is about 18 MB), seeded with it (needs root)."""
    import subprocess

    models = skin_home / "models"
    models.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(models)], capture_output=True
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


QUICK_TO_CANCEL = TrainConfig(epochs=200, image_size=32, batch_size=4, width=4, balance=BalanceConfig(strategy="none"))


def cli_train(data, *extra: str) -> list[str]:
    """``python -m skin_model train`` on a small, slow-to-finish configuration."""
    return [sys.executable, "-m", "skin_model", "train", "--data", str(data), "--image-size", "32", "--n", "0", *extra]


def test_command_line_training_is_refused_with_one_line_while_an_app_job_runs(clean_dataset):
    before = registry_state()
    job = jobs.start(clean_dataset.root, QUICK_TO_CANCEL)
    try:
        cli = subprocess.run(
            cli_train(clean_dataset.root, "--epochs", "1"), capture_output=True, text=True, timeout=120
        )
        assert cli.returncode == 2
        assert cli.stderr.strip().splitlines() == [f"error: a training job is already running (job {job.id})"]
        assert jobs.refresh(job).active and registry_state() == before
    finally:
        jobs.cancel(jobs.refresh(job))
        wait_for(lambda: finished(job), what="the cancel")


def test_an_app_job_is_refused_while_command_line_training_runs_and_starts_once_that_process_is_gone(clean_dataset):
    cli = subprocess.Popen(cli_train(clean_dataset.root, "--epochs", "200"), stderr=subprocess.DEVNULL, cwd=REPO_ROOT)
    try:
        holder = lambda: (jobs._read_json(jobs._holder_path()) or {}).get("label", "")
        wait_for(lambda: holder().endswith(f"pid {cli.pid}"), what="the CLI to lock")
        with pytest.raises(jobs.JobError) as refused:
            jobs.start(clean_dataset.root, QUICK_TO_CANCEL)
        assert str(refused.value) == f"a training job is already running (command-line training, pid {cli.pid})"
    finally:
        cli.kill()  # SIGKILL: no chance to release the lock
        cli.wait(timeout=30)
    job = jobs.start(clean_dataset.root, QUICK_TO_CANCEL)  # the dead process's lock is taken over
    jobs.cancel(job)
    assert wait_for(lambda: finished(job), what="the cancel").state == "KILLED"


def test_the_training_lock_is_released_when_command_line_training_ends(clean_dataset):
    with jobs.training_lock(), pytest.raises(jobs.JobError, match="command-line training"):
        jobs.start(clean_dataset.root, QUICK_TO_CANCEL)
    free = jobs._try_lock()  # nobody holds it any more
    assert free is not None
    os.close(free)


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False  # gone: reaped


def test_a_killed_worker_leaves_no_zombie_once_its_status_is_read(clean_dataset):
    job = jobs.start(clean_dataset.root, LONG)
    pid = wait_for(lambda: jobs.refresh(job).status.get("pid"), what="the worker to start")
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: finished(job), what="the job to be seen as ended").state == "INTERRUPTED"
    assert not is_zombie(pid)


def test_latest_is_the_newest_job_even_among_many_finished_ones(skin_home):
    for job_id in ("20261101-090000-001001", "20261128-101500-002002", "20261115-120000-003003"):
        (jobs.jobs_dir() / job_id).mkdir(parents=True)
        (jobs.jobs_dir() / job_id / "status.json").write_text(f'{{"id": "{job_id}", "state": "FINISHED"}}')
    (jobs.jobs_dir() / "20261130-000000-000000").mkdir()  # a folder without a status is not a job
    newest = jobs.latest()
    assert newest is not None and newest.id == "20261128-101500-002002" and newest.state == "FINISHED"
