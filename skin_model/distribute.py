"""Which devices and machines train together, and who is in charge.

One training loop serves every scale; only the ``tf.distribute`` strategy
changes:
- ``default``: this process's one device (CPU or one GPU);
- ``mirrored``: every local GPU of this machine (``MirroredStrategy``);
- ``multiworker``: several machines, each running the same command with its
  own ``TF_CONFIG`` (``MultiWorkerMirroredStrategy``).

The batch size in the settings is per replica, so the global batch and the
learning rate scale with the number of replicas (the linear scaling rule).
Only the chief writes progress and the registry entry; every worker may
write the balancing cache, whose entries are renamed into place atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from skin_model.errors import SkinModelError
from skin_model.runtime import tensorflow

STRATEGIES = ("default", "mirrored", "multiworker")


@dataclass(frozen=True)
class Cluster:
    """The strategy and this process's place in it."""

    name: str
    strategy: object
    replicas: int
    workers: int
    worker_index: int

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0

    def describe(self) -> dict:
        return {"strategy": self.name, "replicas": self.replicas, "workers": self.workers}


def worker_of(tf_config: str | None) -> tuple[int, int]:
    """``(workers, index)`` from a ``TF_CONFIG`` value; index 0 is the chief.

    A ``chief`` task, when the cluster names one, is index 0 and the workers
    follow it, so "chief" means the same thing in both TF_CONFIG styles.
    """
    if not tf_config:
        raise SkinModelError("--strategy multiworker needs TF_CONFIG (the cluster and this worker's task); see README")
    try:
        spec = json.loads(tf_config)
        cluster, task = spec["cluster"], spec["task"]
        chiefs = len(cluster.get("chief", []))
        workers = chiefs + len(cluster.get("worker", []))
        index = int(task["index"]) + (chiefs if task["type"] == "worker" else 0)
    except (ValueError, KeyError, TypeError) as error:
        raise SkinModelError(f"TF_CONFIG is not a valid cluster description: {error}") from None
    if task["type"] not in ("chief", "worker") or not 0 <= index < workers:
        raise SkinModelError(f"TF_CONFIG task {task} is not one of the cluster's {workers} workers")
    return workers, index


def cluster(name: str = "default") -> Cluster:
    """Create the strategy (once per process: TensorFlow fixes the cluster at start-up)."""
    if name not in STRATEGIES:
        raise SkinModelError(f"strategy must be one of {', '.join(STRATEGIES)}; received {name!r}")
    tf = tensorflow()
    if name == "multiworker":
        workers, index = worker_of(os.environ.get("TF_CONFIG"))
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        workers, index = 1, 0
        strategy = tf.distribute.MirroredStrategy() if name == "mirrored" else tf.distribute.get_strategy()
    return Cluster(name, strategy, int(strategy.num_replicas_in_sync), workers, index)
