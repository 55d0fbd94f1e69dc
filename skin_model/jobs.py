"""The background training job: start, watch, cancel.

Training runs in its own OS process (``python -m skin_model.jobs JOB_DIR``,
new session), so it survives a browser refresh or an app restart. All state
lives on disk under ``SKIN_HOME/jobs``: a ``flock`` that admits one training
at a time, held by the worker (or the command-line trainer) for its whole
life and released by the kernel when it ends, however it ends; and per job a
``status.json`` written atomically, a JSON-lines progress file and a log.
States follow MLflow's words: SCHEDULED, RUNNING, FINISHED, FAILED, KILLED;
a job whose process vanished is reported INTERRUPTED.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from skin_model.config import REPO_ROOT, TrainConfig, skin_home
from skin_model.errors import Cancelled, SkinModelError
from skin_model.registry import write_json

ACTIVE = ("SCHEDULED", "RUNNING")
WORKER = "skin_model.jobs"


class JobError(SkinModelError):
    """A job cannot be started or changed."""


@dataclass(frozen=True)
class Job:
    """A job folder and its last recorded status."""

    path: Path
    status: dict

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def state(self) -> str:
        return self.status.get("state", "UNKNOWN")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def progress(self) -> list[dict]:
        """Every progress event so far (a torn last line is skipped)."""
        path = self.path / "progress.jsonl"
        events = []
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events

    def summary(self) -> JobStatus:
        """Its state and progress as the Retrain page draws them (``job_status``)."""
        return job_status(self.status, self.progress())

    def log_tail(self, lines: int = 30) -> str:
        path = self.path / "log.txt"
        return (
            "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]) if path.exists() else ""
        )


def jobs_dir() -> Path:
    return skin_home() / "jobs"


def _lock_path() -> Path:
    return jobs_dir() / "train.lock"


def _holder_path() -> Path:
    return jobs_dir() / "holder.json"


def _try_lock() -> int | None:
    """An fd holding the training lock (``flock``, exclusive), or None when another process holds it.

    The kernel releases a flock when the last process holding it ends, however it ends (even SIGKILL), so
    there is no stale lock to detect: no pids, no start times, no grace windows.
    """
    jobs_dir().mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _busy() -> JobError:
    holder = _read_json(_holder_path()) or {}
    return JobError(f"a training job is already running ({holder.get('label') or 'another process'})")


EXIT_GRACE_S = 30.0  # how long a start waits for a job that has recorded its end to finish exiting


def _holder_has_ended() -> bool:
    """The lock's holder is a job whose status is final: it is only exiting."""
    job = (_read_json(_holder_path()) or {}).get("job", "")
    state = (_read_json(jobs_dir() / job / "status.json") or {}).get("state") if job else None
    return state is not None and state not in ACTIVE


def _running(job_id: str) -> bool:
    """True while the training lock is held and its holder is this job (a worker holds it for its whole life)."""
    fd = _try_lock()
    if fd is not None:
        os.close(fd)
        return False
    return (_read_json(_holder_path()) or {}).get("job") == job_id


@contextmanager
def training_lock() -> Iterator[None]:
    """Hold the one-training-at-a-time lock in this process (``python -m skin_model train``).

    The app's jobs and command-line runs on the same state folder then exclude each other; the lock goes
    when the block ends or the process does.
    """
    fd = _try_lock()
    if fd is None:
        raise _busy()
    try:
        pid = os.getpid()
        write_json(_holder_path(), {"job": f"cli-{pid}", "label": f"command-line training, pid {pid}"})
        yield
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _set_status(job_dir: Path, **fields) -> dict:
    status = (_read_json(job_dir / "status.json") or {}) | fields
    write_json(job_dir / "status.json", status)
    return status


def _worker_env() -> dict[str, str]:
    """The app's environment, with this package importable and the state folder pinned."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, SKIN_HOME=str(skin_home()))


def start(data_roots: Path | str | list[Path], config: TrainConfig, activate: bool = False) -> Job:
    """Start one training worker; JobError when another job is running.

    This process takes the training lock, and the worker inherits it (the same open file), so the
    lock is held without a gap from here until the worker ends.
    """
    from skin_model.dataset import find_layouts

    layouts = find_layouts(data_roots)  # a wrong folder fails here, before any process starts
    fd = _try_lock()
    deadline = time.time() + EXIT_GRACE_S
    while fd is None and _holder_has_ended() and time.time() < deadline:
        time.sleep(0.2)  # a job that recorded its end is still exiting (TensorFlow tears down): its lock goes next
        fd = _try_lock()
    if fd is None:
        raise _busy()
    job_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{os.getpid() % 1000:03d}{time.time_ns() % 1000:03d}"
    job_dir = jobs_dir() / job_id
    try:
        job_dir.mkdir(parents=True)
        if config.cases:  # the cases as they are now: adding or removing one during the run changes nothing in it
            from skin_model import cases

            cases.snapshot(job_dir / "cases")
        status = _set_status(
            job_dir,
            id=job_id,
            state="SCHEDULED",
            data=os.pathsep.join(str(layout.root) for layout in layouts),
            config=config.to_dict(),
            activate=activate,
            created=time.time(),
        )
        write_json(_holder_path(), {"job": job_id, "label": f"job {job_id}"})
        with (job_dir / "log.txt").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", WORKER, str(job_dir)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=REPO_ROOT,
                env=_worker_env(),
                pass_fds=(fd,),  # the worker holds the training lock for its whole life
            )
        # wait for it on a thread: however the worker ends (even SIGKILL), it is reaped at once, not left a zombie
        threading.Thread(target=process.wait, name=f"reap-{job_id}", daemon=True).start()
    finally:
        os.close(fd)  # this process's hold; the worker's copy keeps the lock
    return Job(job_dir, status)


def cancel(job: Job) -> None:
    """Ask the worker to stop after the current step; it records KILLED itself."""
    if not job.active:
        raise JobError(f"job {job.id} is not running ({job.state})")
    (job.path / "cancel").touch()


def drop_case_pixels(job_dir: Path) -> None:
    """An ended job's copy of the confirmed cases keeps their records (ids, pixel hashes), never their pixels:
    a case removed later must not survive in ``jobs/<id>/cases/``."""
    for image in (job_dir / "cases").glob("*.png"):
        image.unlink(missing_ok=True)


def holding(file_name: str) -> list[str]:
    """The running jobs whose snapshot holds this case image (each drops it when it ends); ended jobs' copies
    are dropped on the way (``refresh``)."""
    return [j.id for j in all_jobs() if j.active and (j.path / "cases" / file_name).exists()]


def refresh(job: Job) -> Job:
    """Re-read a job's status; an active job that no longer holds the training lock became INTERRUPTED.
    An ended job (however it ended, even killed) loses its copy of the cases' pixels here."""
    status = _read_json(job.path / "status.json") or job.status
    if status.get("state") in ACTIVE and not _running(job.id):
        time.sleep(0.2)  # the worker may be writing its final status right now
        status = _read_json(job.path / "status.json") or status
        if status.get("state") in ACTIVE:
            status = _set_status(
                job.path,
                state="INTERRUPTED",
                ended=time.time(),
                error="the training process stopped unexpectedly",
            )
    if status.get("state") not in ACTIVE:
        drop_case_pixels(job.path)
    return Job(job.path, status)


def all_jobs() -> list[Job]:
    """Every job, newest first."""
    if not jobs_dir().exists():
        return []
    found = [Job(p, _read_json(p / "status.json") or {}) for p in jobs_dir().iterdir() if (p / "status.json").exists()]
    return [refresh(j) for j in sorted(found, key=lambda j: j.status.get("created", 0), reverse=True)]


def latest() -> Job | None:
    """The newest job, read alone: the Retrain page polls it every two seconds for every admin session.

    Job ids start with their UTC start time, so the newest is the greatest name; older jobs' status files
    are not opened.
    """
    if not jobs_dir().exists():
        return None
    newest = max((p for p in jobs_dir().iterdir() if (p / "status.json").exists()), key=lambda p: p.name, default=None)
    return refresh(Job(newest, _read_json(newest / "status.json") or {})) if newest else None


def work(job_dir: Path) -> int:
    """The worker process body: train, register, record the outcome (at a priority below the app's)."""
    from skin_model.runtime import worker_threads, yield_cpu

    priority = yield_cpu()  # before TensorFlow starts a thread: its pools inherit it
    worker_threads()
    from skin_model import train
    from skin_model.config import roots_of

    status = _set_status(job_dir, state="RUNNING", pid=os.getpid(), started=time.time(), priority=priority)
    cancel_flag = job_dir / "cancel"
    try:
        config = TrainConfig.from_dict(status["config"])
        version = train.run(
            roots_of(status["data"]),
            config,
            progress=job_dir / "progress.jsonl",
            activate=bool(status.get("activate")),
            should_stop=cancel_flag.exists,
            cases_dir=job_dir / "cases" if config.cases else None,
        )
        _set_status(job_dir, state="FINISHED", ended=time.time(), version=version.number)
        return 0
    except Cancelled:
        _set_status(job_dir, state="KILLED", ended=time.time(), error="cancelled by an administrator")
        return 1
    except SkinModelError as error:
        _set_status(job_dir, state="FAILED", ended=time.time(), error=str(error))
        return 1
    except BaseException as error:
        traceback.print_exc()
        message = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        if isinstance(error, OSError) and error.errno in (28, 30, 13):
            message = f"could not write to the state folder ({error.strerror}); nothing was changed"
        _set_status(job_dir, state="FAILED", ended=time.time(), error=message)
        return 1
    finally:
        drop_case_pixels(job_dir)  # the job has ended: its copy of the cases goes with it


if __name__ == "__main__":
    code = work(Path(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    # the outcome is on disk; leave now: TensorFlow's teardown took over 30 s under load (bench/app.py), and the
    # training lock, which the next job waits for, is only released when this process is gone
    os._exit(code)


# -- what the Retrain page tells people (issue 30): plain words, a steady time-left, a log without noise ------

ENDINGS = {
    "KILLED": "Cancelled by an administrator",
    "FAILED": "Failed",
    "INTERRUPTED": "Interrupted (the app or the machine stopped)",
}
NOISE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] (tensorflow|external|xla)/"  # TensorFlow's C++ start-up lines
    r"|^[IWE]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ "  # absl's C++ logging
    r"|^WARNING: All log messages before absl::InitializeLog"
    r"|oneDNN custom operations are on|TF_ENABLE_ONEDNN_OPTS|This TensorFlow binary is optimized"
    r"|rebuild TensorFlow with the appropriate compiler flags|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered|cuda_init|could not find cuda drivers",
    re.IGNORECASE,
)


def readable_log(text: str) -> str:
    """The job's log without the libraries' start-up noise (TensorFlow, absl, CUDA probes)."""
    return "\n".join(line for line in text.splitlines() if not NOISE.search(line))


def time_left(events: list[dict]) -> float | None:
    """Seconds left, from the average pace since the first step (steady, unlike the last steps' pace); None early."""
    steps = [e for e in events if e.get("event") == "step" and e.get("steps") and "time" in e]
    if len(steps) < 2:
        return None
    first, last = steps[0], steps[-1]
    done = lambda e: (e["epoch"] - 1) * e["steps"] + e["step"]
    pace = (last["time"] - first["time"]) / max(done(last) - done(first), 1)
    return max(last["epochs"] * last["steps"] - done(last), 0) * pace


def expected_seconds(epochs: int, seconds_per_epoch: float | None) -> float | None:
    """About how long ``epochs`` epochs take at the live version's own seconds an epoch (None if unknown)."""
    return None if not seconds_per_epoch else float(seconds_per_epoch) * epochs


@dataclass(frozen=True)
class Epoch:
    """One finished epoch's figures, as the training curves draw them."""

    epoch: int
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_balanced_accuracy: float | None = None


@dataclass(frozen=True)
class JobStatus:
    """What the Retrain page draws of a job: its state, how far it is, and how it ended.

    ``epoch``/``step`` are None before the first step (the data is still being prepared); ``step`` is None
    right after an epoch ends. ``seconds_left`` is None early, and once the job is no longer active.
    """

    state: str
    active: bool
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    done: float = 0.0  # share of all steps, 0 to 1
    seconds_left: float | None = None
    history: tuple[Epoch, ...] = ()
    error: str | None = None  # why it failed, was killed or interrupted
    version: int | None = None  # what a finished job registered

    @property
    def last(self) -> Epoch | None:
        return self.history[-1] if self.history else None

    def progress_line(self) -> str:
        """``epoch 2/8, step 5/10, about 3.1 min left`` (the step and the time when known)."""
        line = f"epoch {self.epoch}/{self.epochs}"
        if self.step is not None:
            line += f", step {self.step}/{self.steps}"
        if self.seconds_left:
            line += f", about {self.seconds_left / 60:.1f} min left"
        return line


def job_status(status: dict, events: list[dict]) -> JobStatus:
    """A job's ``status.json`` and progress events, read once for the page (which then only draws).

    The share done counts steps; an epoch's end counts its steps as the last step event gave them, since
    epoch events carry no step count.
    """
    state = status.get("state", "UNKNOWN")
    active = state in ACTIVE
    named = set(Epoch.__dataclass_fields__)
    history = tuple(Epoch(**{k: v for k, v in e.items() if k in named}) for e in events if e["event"] == "epoch")
    ended = {"error": status.get("error"), "version": status.get("version"), "history": history}
    moving = [e for e in events if e["event"] in ("step", "epoch")]
    if not moving:
        return JobStatus(state, active, **ended)
    last = moving[-1]
    steps = max(next((e["steps"] for e in reversed(moving) if "steps" in e), 1), 1)
    step = last.get("step") if last["event"] == "step" else None
    done = (last["epoch"] - 1) * steps + step if step is not None else last["epoch"] * steps
    left = time_left(events) if active else None
    return JobStatus(
        state,
        active,
        epoch=last["epoch"],
        epochs=last["epochs"],
        step=step,
        steps=steps,
        done=min(done / max(last["epochs"] * steps, 1), 1.0),
        seconds_left=left,
        **ended,
    )
