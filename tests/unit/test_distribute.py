"""Distributed training: TF_CONFIG parsing, and a real two-worker cluster on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from skin_model.distribute import worker_of
from skin_model.errors import SkinModelError
from skin_model.registry import Registry
from tests.conftest import written


def tf_config(workers: list[str], index: int, kind: str = "worker", chief: list[str] | None = None) -> str:
    cluster = {"worker": workers} | ({"chief": chief} if chief else {})
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


def test_the_first_worker_is_the_chief_when_no_chief_is_named():
    assert worker_of(tf_config(["a:1", "b:2"], 0)) == (2, 0)
    assert worker_of(tf_config(["a:1", "b:2"], 1)) == (2, 1)


def test_a_named_chief_comes_first_and_the_workers_follow():
    assert worker_of(tf_config(["b:2"], 0, "chief", chief=["a:1"])) == (2, 0)
    assert worker_of(tf_config(["b:2"], 0, "worker", chief=["a:1"])) == (2, 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "needs TF_CONFIG"),
        ("{not json", "not a valid cluster"),
        (json.dumps({"cluster": {"worker": ["a:1"]}}), "not a valid cluster"),
        (tf_config(["a:1"], 3), "not one of the cluster's 1 workers"),
        (tf_config(["a:1"], 0, "ps"), "not one of the cluster's"),
    ],
)
def test_a_missing_or_wrong_tf_config_is_one_clear_error(value, message):
    with pytest.raises(SkinModelError, match=message):
        worker_of(value)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_in_step_and_only_the_chief_registers(make_dataset, tmp_path):
    """Two processes, MultiWorkerMirroredStrategy over loopback gRPC, one short epoch on a small set."""
    data = make_dataset(per_class=8)
    workers = [f"localhost:{port}" for port in free_ports(2)]
    homes = [tmp_path / "chief", tmp_path / "worker"]
    command = [sys.executable, "-m", "skin_model", "train", "--data", str(data.root), "--strategy", "multiworker"]
    command += ["--epochs", "1", "--image-size", "32", "--batch-size", "4", "--width", "4", "--n", "10", "--json"]
    command += ["--activate", "--progress"]
    procs = []
    for index, home in enumerate(homes):
        env = os.environ | {"TF_CONFIG": tf_config(workers, index), "SKIN_HOME": str(home), "SKIN_THREADS": "1"}
        procs.append(
            subprocess.Popen(
                [*command, str(home / "progress.jsonl")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=240))
    finally:
        for proc in procs:
            proc.kill()

    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    chief_out, worker_out = (json.loads(out) for out, _ in outputs)
    assert chief_out["version"] == 2 and worker_out == {"version": None, "chief": False}  # 1: the committed default

    chief_registry = Registry(homes[0] / "models")
    assert [v.number for v in chief_registry.versions()] == [1, 2]
    version = chief_registry.get(2)
    chief_registry.verify(version)
    assert chief_registry.live_number() == 2
    training = written(version)["training"]
    assert (training["strategy"], training["replicas"], training["workers"]) == ("multiworker", 2, 2)
    assert training["global_batch"] == 8 and training["epochs_run"] == 1

    events = [json.loads(line) for line in (homes[0] / "progress.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "registered"
    assert not (homes[1] / "progress.jsonl").exists()
    assert not (homes[1] / "models").exists()


@pytest.mark.slow
def test_mirrored_strategy_trains_and_records_its_replicas(make_dataset, tmp_path, monkeypatch):
    """MirroredStrategy over this machine's devices (one CPU here; every GPU on a GPU machine)."""
    from skin_model import train
    from skin_model.config import BalanceConfig, TrainConfig

    monkeypatch.setenv("SKIN_HOME", str(tmp_path))
    config = TrainConfig(epochs=1, image_size=32, batch_size=4, width=4, balance=BalanceConfig(strategy="none"))

    registry = Registry(tmp_path / "models", seed_dir=None)

    version = train.run(make_dataset(per_class=6).root, config, registry=registry, strategy="mirrored")

    training = written(version)["training"]
    assert training["strategy"] == "mirrored" and training["replicas"] >= 1
    assert training["global_batch"] == 4 * training["replicas"]
    assert training["peak_learning_rate"] == pytest.approx(config.learning_rate * training["replicas"])
    registry.verify(version)


def test_an_unknown_strategy_is_refused_naming_the_choices():
    from skin_model.distribute import cluster

    with pytest.raises(SkinModelError, match="default, mirrored, multiworker"):
        cluster("parameter-server")
