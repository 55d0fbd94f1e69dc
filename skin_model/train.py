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

from skin_model import CLASSES, audit, balance, dataset, evaluate
from skin_model.config import TrainConfig
from skin_model.errors import Cancelled, DatasetError
from skin_model.runtime import seed_everything, tensorflow


@dataclass(frozen=True)
class Splits:
    """Decoded arrays of each split, and the fingerprints that identify them."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    records: dict[str, list[dataset.Record]]
    fingerprints: dict[str, str]
    audit: dict


@dataclass(frozen=True)
class TrainResult:
    model: object
    metadata: dict
    history: list[dict]


class ProgressLog:
    """Appends JSON lines (one per event) that the app tails; flushed at once."""

    def __init__(self, path: Path | None):
        self.path = path
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields) -> None:
        if not self.path:
            return
        line = json.dumps({"event": event, "time": round(time.time(), 3), **fields})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def prepare(root: Path | str, config: TrainConfig) -> Splits:
    """Audit, clean and split the data; decode each split into arrays."""
    report = audit.audit(root)
    records, parts = training_split(report, config)
    for name in ("train", "val"):
        if len({r.label for r in parts[name]}) < 2:
            raise DatasetError(f"{report.root}: the {name} split has fewer than 2 classes; add images")
    x = {name: dataset.load_pixels(recs) for name, recs in parts.items()}
    y = {name: dataset.labels_of(recs) for name, recs in parts.items()}
    prints = {name: dataset.fingerprint(recs, report.hashes) for name, recs in parts.items()}
    prints["all"] = dataset.fingerprint(records, report.hashes)
    summary = report.summary()
    brief = {k: summary[k] for k in ("images", "usable", "counts")}
    brief |= {k: len(summary[k]) for k in ("unreadable", "duplicates", "conflicts", "leaks")}
    return Splits(x=x, y=y, records=parts, fingerprints=prints, audit=brief)


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


def input_pipeline(x: np.ndarray, y: np.ndarray, config: TrainConfig):
    """Shuffled, augmented, batched, prefetched training batches from memory."""
    tf = tensorflow()
    from skin_model.network import augmenter

    augment = augmenter(config.seed)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True).batch(config.batch_size)
    ds = ds.map(lambda a, b: (augment(tf.cast(a, tf.float32)), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def logits_of(model, x: np.ndarray, batch: int = 128) -> np.ndarray:
    """Inference-mode logits in batches (no augmentation, no dropout)."""
    tf = tensorflow()
    out = [model(tf.constant(x[i : i + batch], tf.float32), training=False).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.empty((0, len(CLASSES)))


def callbacks(x_val: np.ndarray, y_val: np.ndarray, steps: int, epochs: int, log: ProgressLog, should_stop=None):
    """Best-epoch selection by validation balanced accuracy, and progress lines."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.best_epoch, self.best_weights = -1.0, 0, None
            self.started = time.time()
            self.history: list[dict] = []

        def on_train_batch_end(self, batch, logs=None):
            if batch % 5 == 0 or batch == steps - 1:
                log.write(
                    "step",
                    epoch=self.epoch + 1,
                    epochs=epochs,
                    step=batch + 1,
                    steps=steps,
                    loss=_num(logs, "loss"),
                    accuracy=_num(logs, "accuracy"),
                    eta_s=self._eta(batch + 1),
                )
            if should_stop and should_stop():
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            logits = logits_of(self.model, x_val)
            pred = logits.argmax(axis=1)
            bal = evaluate.balanced_accuracy(y_val, pred)
            logs = dict(logs or {})
            row = {
                "epoch": epoch + 1,
                "loss": _num(logs, "loss"),
                "accuracy": _num(logs, "accuracy"),
                "val_loss": round(float(_cross_entropy(logits, y_val)), 4),
                "val_accuracy": round(float((pred == y_val).mean()), 4),
                "val_balanced_accuracy": round(bal, 4),
            }
            self.history.append(row)
            if bal > self.best:
                self.best, self.best_epoch, self.best_weights = bal, epoch + 1, self.model.get_weights()
            log.write("epoch", epochs=epochs, best_epoch=self.best_epoch, eta_s=self._eta(steps), **row)

        def _eta(self, step_in_epoch: int) -> float:
            done = self.epoch * steps + step_in_epoch
            per_step = (time.time() - self.started) / max(done, 1)
            return round(per_step * (epochs * steps - done), 1)

    return Progress()


def _num(logs, key: str) -> float | None:
    value = (logs or {}).get(key)
    return None if value is None else round(float(value), 4)


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    p = evaluate.softmax(logits)[np.arange(len(y)), y]
    return float(-np.log(np.clip(p, 1e-12, 1)).mean())


def fit(splits: Splits, config: TrainConfig, progress: Path | None = None, should_stop=None) -> TrainResult:
    """Train on prepared splits; return the best model and its metadata (not yet registered)."""
    tf = tensorflow()
    import keras

    from skin_model.network import build, resize

    seed_everything(config.seed)
    log = ProgressLog(progress)
    started = time.time()
    extra = balance.balance(splits.x["train"], splits.y["train"], config.balance, splits.fingerprints["train"])
    # sized once with the model's own resize op, so augmentation works on fewer pixels
    x_train = np.concatenate([resize(splits.x["train"], config.image_size), resize(extra.images, config.image_size)])
    y_train = np.concatenate([splits.y["train"], extra.labels])
    steps = math.ceil(len(x_train) / config.batch_size)
    log.write(
        "start",
        epochs=config.epochs,
        steps=steps,
        train_images=len(x_train),
        originals=len(splits.x["train"]),
        val_images=len(splits.x["val"]),
        test_images=len(splits.x["test"]),
        balance_cached=extra.cached,
    )

    model = build(config.image_size, len(CLASSES), width=config.width)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(steps * config.epochs - steps, 1), warmup_target=config.learning_rate, warmup_steps=steps
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    progress_cb = callbacks(splits.x["val"], splits.y["val"], steps, config.epochs, log, should_stop)
    model.fit(input_pipeline(x_train, y_train, config), epochs=config.epochs, verbose=0, callbacks=[progress_cb])
    if progress_cb.best_weights is not None:
        model.set_weights(progress_cb.best_weights)
    train_seconds = time.time() - started

    calibration = calibrate(model, splits, config)
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
        **calibration,
        "training": {
            "seconds": round(train_seconds, 1),
            "epochs_run": len(progress_cb.history),
            "best_epoch": progress_cb.best_epoch,
            "seconds_per_epoch": round(train_seconds / max(len(progress_cb.history), 1), 2),
            "parameters": int(model.count_params()),
            "stopped_early": len(progress_cb.history) < config.epochs,
        },
        "history": progress_cb.history,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    return TrainResult(model=model, metadata=metadata, history=progress_cb.history)


def calibrate(model, splits: Splits, config: TrainConfig) -> dict:
    """Temperature and melanoma alert threshold fitted on validation; metrics of every held-out split."""
    val_logits = logits_of(model, splits.x["val"])
    temperature = evaluate.fit_temperature(val_logits, splits.y["val"])
    p_mel_val = evaluate.softmax(val_logits, temperature)[:, evaluate.MEL]
    is_mel_val = splits.y["val"] == evaluate.MEL
    # floor, not round: rounding up could push the smallest caught melanoma below the threshold
    threshold = math.floor(evaluate.alert_threshold(p_mel_val, is_mel_val, config.alert_sensitivity) * 1e4) / 1e4
    metrics = {"val": evaluate.report(val_logits, splits.y["val"], temperature, threshold)}
    if len(splits.x["test"]):
        metrics["test"] = evaluate.report(logits_of(model, splits.x["test"]), splits.y["test"], temperature, threshold)
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
):
    """The whole stage: prepare, fit, fit the out-of-distribution limit, register."""
    from skin_model.outliers import fit_reference
    from skin_model.registry import Registry

    log = ProgressLog(progress)
    log.write("prepare", data=str(root))
    splits = prepare(root, config)
    result = fit(splits, config, progress, should_stop)
    if should_stop and should_stop():
        log.write("cancelled")
        raise Cancelled("training was cancelled; nothing was registered")
    metadata = dict(result.metadata, data=dict(result.metadata["data"], root=str(Path(root).resolve())))
    metadata["outliers"] = fit_reference(result.model, splits.x["train"], splits.x["val"])
    version = (registry or Registry()).register(result.model, metadata, activate=activate)
    log.write("registered", version=version.number, live=activate)
    return version
