"""TensorFlow process settings: quiet logs, thread counts, seeds.

Thread counts must be set before the first TensorFlow op, so every entry
point calls :func:`tensorflow` instead of importing TensorFlow directly.
"""

from __future__ import annotations

import os
import warnings
from functools import cache

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@cache
def tensorflow():
    """Import TensorFlow once, with threads sized for the machine."""
    import tensorflow as tf

    threads = int(os.environ.get("SKIN_THREADS", "0")) or (os.cpu_count() or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:  # already initialised by a caller: keep its settings
        pass
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", message=".*shuffle=True.*was passed")
    return tf


PRIORITIES = ("idle", "low", "normal")


def yield_cpu() -> str:
    """Make this process (and every thread it starts later) give way to the app: ``$SKIN_WORKER_PRIORITY``.

    ``idle`` (the default) is Linux's SCHED_IDLE class: the trainer runs only on cycles no normal process
    wants, so a clinician's upload preempts it at once, and alone it runs at full speed. ``low`` is nice 19
    (where SCHED_IDLE is missing); ``normal`` competes on equal terms. Threads inherit the setting, so it
    must run before TensorFlow starts its pools. Returns what was applied.
    """
    wanted = os.environ.get("SKIN_WORKER_PRIORITY", "idle").strip().lower() or "idle"
    if wanted not in PRIORITIES:
        wanted = "idle"
    if wanted == "idle" and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return "idle"
        except OSError:
            wanted = "low"
    if wanted in ("idle", "low"):
        os.nice(19 - os.nice(0))
        return "low"
    return "normal"


def worker_threads() -> None:
    """A training worker's TensorFlow threads: ``$SKIN_WORKER_THREADS``, else one core fewer than the machine has.

    Measured on 2 cores (bench/RESULTS.md, "The app in a real browser"): with one thread the job yields to ten
    classifying sessions (410 s/epoch while they run) and costs 13 % per epoch alone (46.2 vs 41.0 s);
    with two it barely yields (216 s/epoch under the same load).
    """
    threads = os.environ.get("SKIN_WORKER_THREADS") or str(max(1, (os.cpu_count() or 2) - 1))
    os.environ["SKIN_THREADS"] = threads


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Fix Python, NumPy and TensorFlow seeds (and optionally op determinism)."""
    tf = tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
