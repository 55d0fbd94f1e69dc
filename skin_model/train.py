"""Training: audited data in, a registered model version out.

The story is linear: audit -> de-duplicated split -> Augmentor balancing of
the training split only -> tf.data with on-the-fly augmentation -> fit with
the best epoch chosen by validation balanced accuracy -> temperature and
melanoma alert threshold fitted on validation -> test metrics -> registry.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skin_model import CLASSES, audit, balance, dataset, distribute, evaluate, stream
from skin_model.config import TrainConfig
from skin_model.errors import Cancelled, DatasetError
from skin_model.runtime import seed_everything, tensorflow

REFERENCE_IMAGES = 2000  # per split, for the not-a-lesion reference: bounded whatever the dataset size


@dataclass(frozen=True)
class Splits:
    """The files and labels of each split, and the fingerprints that identify them (no pixels)."""

    records: dict[str, list[dataset.Record]]
    y: dict[str, np.ndarray]
    fingerprints: dict[str, str]
    audit: dict

    def paths(self, name: str) -> list[Path]:
        return [r.path for r in self.records[name]]


@dataclass(frozen=True)
class TrainResult:
    model: object
    metadata: dict
    history: list[dict]


class ProgressLog:
    """Appends JSON lines (one per event) that the app tails; flushed at once. ``listener`` also gets each event."""

    def __init__(self, path: Path | None, listener=None):
        self.path, self.listener = path, listener
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields) -> None:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        if self.listener:
            self.listener(record)
        if not self.path:
            return
        line = json.dumps(record)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def prepare(root: Path | str, config: TrainConfig) -> Splits:
    """Audit, clean and split the data; pixels stay on disk until a batch needs them."""
    report = audit.audit(root)
    records, parts = training_split(report, config)
    for name in ("train", "val"):
        if len({r.label for r in parts[name]}) < 2:
            raise DatasetError(f"{report.root}: the {name} split has fewer than 2 classes; add images")
    y = {name: dataset.labels_of(recs) for name, recs in parts.items()}
    prints = {name: dataset.fingerprint(recs, report.hashes) for name, recs in parts.items()}
    prints["all"] = dataset.fingerprint(records, report.hashes)
    summary = report.summary()
    brief = {k: summary[k] for k in ("images", "usable", "counts")}
    brief |= {k: len(summary[k]) for k in ("unreadable", "duplicates", "conflicts", "leaks")}
    return Splits(records=parts, y=y, fingerprints=prints, audit=brief)


def training_split(report: audit.AuditReport, config: TrainConfig) -> tuple[list, dict[str, list[dataset.Record]]]:
    """The usable records and the train/val/test split that training uses, without decoding."""
    records = audit.usable(report)
    if config.max_per_class:
        records = _cap_per_class(records, config.max_per_class, config.seed)
    return records, dataset.split(records, config.val_fraction, config.test_fraction, config.seed)


def balance_preview(report: audit.AuditReport, config: TrainConfig) -> tuple[dict[str, int], dict[str, int]]:
    """Training-split counts per class before and after balancing (for the charts)."""
    _, parts = training_split(report, config)
    before = {name: sum(r.label == name for r in parts["train"]) for name in CLASSES}
    return before, balance.counts_after(before, config.balance)


def _cap_per_class(records: list[dataset.Record], cap: int, seed: int) -> list[dataset.Record]:
    rng = np.random.default_rng(seed)
    kept = []
    for label in CLASSES:
        items = [r for r in records if r.label == label]
        if len(items) > cap:
            items = [items[i] for i in sorted(rng.choice(len(items), cap, replace=False))]
        kept += items
    return kept


def logits_of(model, x: np.ndarray, batch: int = 128) -> np.ndarray:
    """Inference-mode logits of in-memory pixels in batches (no augmentation, no dropout)."""
    tf = tensorflow()
    out = [model(tf.constant(x[i : i + batch], tf.float32), training=False).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.empty((0, len(CLASSES)))


class Tracker:
    """Per-step progress lines, and the best epoch by validation balanced accuracy."""

    def __init__(self, log: ProgressLog, steps: int, epochs: int):
        self.log, self.steps, self.epochs = log, steps, epochs
        self.best, self.best_epoch, self.best_weights = -1.0, 0, None
        self.started = time.time()
        self.history: list[dict] = []

    def step(self, epoch: int, step: int, loss: float, accuracy: float) -> None:
        if step % 5 == 1 or step == self.steps:
            eta = self._eta(epoch * self.steps + step)
            self.log.write(
                "step",
                epoch=epoch + 1,
                epochs=self.epochs,
                step=step,
                steps=self.steps,
                loss=loss,
                accuracy=accuracy,
                eta_s=eta,
            )

    def epoch_end(self, epoch: int, model, loss: float, accuracy: float, val_logits: np.ndarray, y_val) -> None:
        pred = val_logits.argmax(axis=1)
        bal = evaluate.balanced_accuracy(y_val, pred)
        row = {
            "epoch": epoch + 1,
            "loss": loss,
            "accuracy": accuracy,
            "val_loss": round(float(_cross_entropy(val_logits, y_val)), 4),
            "val_accuracy": round(float((pred == y_val).mean()), 4),
            "val_balanced_accuracy": round(bal, 4),
        }
        self.history.append(row)
        if bal > self.best:
            self.best, self.best_epoch, self.best_weights = bal, epoch + 1, model.get_weights()
        self.log.write(
            "epoch", epochs=self.epochs, best_epoch=self.best_epoch, eta_s=self._eta((epoch + 1) * self.steps), **row
        )

    def _eta(self, done: int) -> float:
        per_step = (time.time() - self.started) / max(done, 1)
        return round(per_step * (self.epochs * self.steps - done), 1)


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    p = evaluate.softmax(logits)[np.arange(len(y)), y]
    return float(-np.log(np.clip(p, 1e-12, 1)).mean())


def train_step(model, optimizer, strategy, global_batch: int):
    """One synchronous step on every replica: ``(sum of mean loss, correct count)`` over the global batch.

    A plain loop around ``strategy.run`` rather than ``model.fit``: Keras 3's
    fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), and
    one loop for every strategy is one thing to test.
    """
    tf = tensorflow()
    import keras

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def replica(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.nn.compute_average_loss(loss_fn(y, logits), global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        hits = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), tf.cast(y, tf.int32)), tf.float32)
        return loss, tf.reduce_sum(hits)

    @tf.function
    def step(iterator):
        loss, hits = strategy.run(replica, args=next(iterator))
        return strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", hits, axis=None)

    return step


def fit(
    splits: Splits, config: TrainConfig, progress: Path | None = None, should_stop=None, cluster=None, listener=None
) -> TrainResult:
    """Train on prepared splits; return the best model and its metadata (not yet registered).

    ``config.batch_size`` is per replica; the global batch and the peak
    learning rate scale with the replicas of ``cluster`` (default: this device).
    """
    tf = tensorflow()
    import keras

    from skin_model.network import build

    cluster = cluster or distribute.cluster("default")
    seed_everything(config.seed)
    log = ProgressLog(progress if cluster.is_chief else None, listener)
    started = time.time()
    extra = balance.balance(splits.records["train"], config.balance, splits.fingerprints["train"])
    if should_stop and should_stop():
        raise Cancelled("training was cancelled; nothing was registered")
    paths = splits.paths("train") + extra.paths
    labels = np.concatenate([splits.y["train"], extra.labels])
    global_batch = config.batch_size * cluster.replicas
    learning_rate = config.learning_rate * cluster.replicas
    steps = math.ceil(len(paths) / global_batch)
    log.write(
        "start",
        epochs=config.epochs,
        steps=steps,
        train_images=len(paths),
        originals=len(splits.records["train"]),
        val_images=len(splits.records["val"]),
        test_images=len(splits.records["test"]),
        balance_cached=extra.cached,
        **cluster.describe(),
    )

    with cluster.strategy.scope():
        model = build(config.image_size, len(CLASSES), width=config.width)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(steps * config.epochs - steps, 1), warmup_target=learning_rate, warmup_steps=steps
        )
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4)
        optimizer.build(model.trainable_variables)
    batches = cluster.strategy.distribute_datasets_from_function(
        lambda context: stream.training(paths, labels, config.image_size, config.batch_size, config.seed, context)
    )
    step = train_step(model, optimizer, cluster.strategy, global_batch)
    tracker = Tracker(log, steps, config.epochs)
    iterator = iter(batches)
    for epoch in range(config.epochs):
        loss_sum = hits = 0.0
        for i in range(steps):
            loss, right = step(iterator)
            loss_sum, hits = loss_sum + float(loss), hits + float(right)
            loss_mean, accuracy = round(loss_sum / (i + 1), 4), round(hits / ((i + 1) * global_batch), 4)
            tracker.step(epoch, i + 1, loss_mean, accuracy)
            if should_stop and should_stop():
                raise Cancelled("training was cancelled; nothing was registered")
        if cluster.is_chief:  # the others train in step; only the chief's choice of epoch is kept
            val_logits = stream.logits(model, splits.paths("val"), config.image_size)
            tracker.epoch_end(epoch, model, loss_mean, accuracy, val_logits, splits.y["val"])
    if tracker.best_weights is not None:
        model.set_weights(tracker.best_weights)
    train_seconds = time.time() - started

    metadata = {
        "classes": list(CLASSES),
        "image_size": config.image_size,
        "config": config.to_dict(),
        "data": {
            "fingerprints": splits.fingerprints,
            "audit": splits.audit,
            "split_sizes": {k: len(v) for k, v in splits.records.items()},
            "balanced_counts": extra.after,
        },
        "training": {
            "seconds": round(train_seconds, 1),
            "epochs_run": len(tracker.history),
            "best_epoch": tracker.best_epoch,
            "seconds_per_epoch": round(train_seconds / max(len(tracker.history), 1), 2),
            "parameters": int(model.count_params()),
            "stopped_early": False,
            **cluster.describe(),
            "global_batch": global_batch,
            "peak_learning_rate": learning_rate,
        },
        "history": tracker.history,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    if cluster.is_chief:
        metadata |= calibrate(model, splits, config)
    return TrainResult(model=model, metadata=metadata, history=tracker.history)


def calibrate(model, splits: Splits, config: TrainConfig) -> dict:
    """Temperature and melanoma alert threshold fitted on validation; metrics of every held-out split."""
    val_logits = stream.logits(model, splits.paths("val"), config.image_size)
    temperature = evaluate.fit_temperature(val_logits, splits.y["val"])
    p_mel_val = evaluate.softmax(val_logits, temperature)[:, evaluate.MEL]
    is_mel_val = splits.y["val"] == evaluate.MEL
    # floor, not round: rounding up could push the smallest caught melanoma below the threshold
    threshold = math.floor(evaluate.alert_threshold(p_mel_val, is_mel_val, config.alert_sensitivity) * 1e4) / 1e4
    metrics = {"val": evaluate.report(val_logits, splits.y["val"], temperature, threshold)}
    if splits.records["test"]:
        test_logits = stream.logits(model, splits.paths("test"), config.image_size)
        metrics["test"] = evaluate.report(test_logits, splits.y["test"], temperature, threshold)
    return {
        "temperature": temperature,
        "alert_threshold": threshold,
        "operating_curve": evaluate.operating_curve(p_mel_val, is_mel_val, extra=(threshold,)),
        "metrics": metrics,
    }


def run(
    root: Path | str,
    config: TrainConfig,
    progress: Path | None = None,
    activate: bool = False,
    registry=None,
    should_stop=None,
    strategy: str = "default",
    listener=None,
):
    """The whole stage: prepare, fit, fit the out-of-distribution limit, register.

    Returns the new version; on a cluster's non-chief workers, None (they
    train in step with the chief, which alone registers). ``listener`` is
    called with every progress event, written to a file or not (the CLI's display).
    """
    from skin_model.outliers import fit_reference
    from skin_model.registry import Registry

    cluster = distribute.cluster(strategy)
    log = ProgressLog(progress if cluster.is_chief else None, listener)
    log.write("prepare", data=str(root))
    try:
        splits = prepare(root, config)
        if should_stop and should_stop():
            raise Cancelled("training was cancelled; nothing was registered")
        result = fit(splits, config, progress, should_stop, cluster, listener)
    except Cancelled:
        log.write("cancelled")
        raise
    if not cluster.is_chief:
        return None
    metadata = dict(result.metadata, data=dict(result.metadata["data"], root=str(Path(root).resolve())))
    reference = {name: _subset(splits.records[name], REFERENCE_IMAGES, config.seed) for name in ("train", "val")}
    metadata["outliers"] = fit_reference(
        result.model, dataset.Pixels(reference["train"]), dataset.Pixels(reference["val"])
    )
    version = (registry or Registry()).register(result.model, metadata, activate=activate)
    log.write("registered", version=version.number, live=activate)
    return version


def _subset(records: list[dataset.Record], cap: int, seed: int) -> list[dataset.Record]:
    """At most ``cap`` records, a seeded sample: the not-a-lesion reference needs a sample, not every image."""
    if len(records) <= cap:
        return records
    keep = np.random.default_rng(seed).choice(len(records), cap, replace=False)
    return [records[i] for i in sorted(keep)]
