"""Training: audited data in, a registered model version out.

The story is linear: audit -> de-duplicated split -> Augmentor balancing of
the training split only -> tf.data with on-the-fly augmentation -> fit with
the best epoch chosen by validation balanced accuracy -> temperature and
melanoma alert threshold fitted on validation -> test metrics -> registry.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skin_model import CLASSES, alert, balance, dataset, distribute, evaluate, shift, stream
from skin_model.config import TrainConfig
from skin_model.errors import Cancelled, SkinModelError
from skin_model.runtime import seed_everything, tensorflow
from skin_model.splits import Splits, prepare, subset, weights

# per split, for the not-a-lesion gate: bounded whatever the dataset size. 600 training images left the gate's
# margin to chance: a fresh retrain's gate let 51 of 4,167 fitting negatives through; fitted on all 1,436, 2 (README)
# lesions the gate is fitted on, each under its 12 camera conditions; the pretrained network's forward pass costs
# about ten times the custom CNN's, so it takes fewer (600 x 12 per split still sets a 0.5 % refusal threshold)
GATE_IMAGES = {"custom-cnn": 1500, "efficientnet-lite0": 600}


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


def logits_of(model, x: np.ndarray, batch: int = 128, views: int = 1) -> np.ndarray:
    """Inference-mode logits of in-memory square pixels in batches, averaged over ``views`` (see network.forward)."""
    tf = tensorflow()
    from skin_model.network import forward

    out = [
        np.asarray(forward(model, tf.constant(x[i : i + batch], tf.float32), views)) for i in range(0, len(x), batch)
    ]
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


def started_from(config: TrainConfig) -> str:
    """Where a version's weights began, in words, for its record and card."""
    from skin_model import backbone

    if config.continue_from is not None:
        return f"the weights of model version {config.continue_from}"
    if config.backbone == "efficientnet-lite0":
        pinned = f"{backbone.WEIGHTS_PACKAGE}=={backbone.WEIGHTS_VERSION}"
        return f"ImageNet ({pinned}, sha256 {backbone.WEIGHTS_SHA256[:12]})"
    return "random weights (trained from scratch)"


def starting_weights(config: TrainConfig) -> list[np.ndarray]:
    """The weights of the registered version ``config.continue_from``, when it is the network ``config`` builds.

    Continuing from the live version's weights is quicker than from ImageNet or from scratch; the record says which.
    """
    from skin_model.registry import Registry

    registry = Registry()
    source = registry.get(config.continue_from)
    theirs = source.record.config
    same = ("backbone", "image_size", "width", "colour_constancy", "normalise_exposure", "field_of_view")
    differ = [name for name in same if getattr(theirs, name) != getattr(config, name)]
    if differ:
        raise SkinModelError(
            f"cannot continue from model version {source.number}: its {', '.join(differ)} differ from this recipe's"
        )
    return registry.load(source).get_weights()


def optimisers(model, config: TrainConfig, steps: int, learning_rate: float) -> list[tuple]:
    """``(optimizer, variables)`` groups: one for a network trained from scratch; for a pretrained backbone, its
    weights at ``config.backbone_lr_scale`` of the new head's rate, so the head settles before they move far.

    Each rate warms up over the first epoch, then follows a cosine to 0.
    """
    import keras

    from skin_model.network import is_backbone

    def optimiser(peak: float, variables: list):
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(steps * config.epochs - steps, 1), warmup_target=peak, warmup_steps=steps
        )
        built = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4)
        built.build(variables)
        return built, variables

    pretrained = [v for v in model.trainable_variables if is_backbone(v)] if config.backbone != "custom-cnn" else []
    head = [v for v in model.trainable_variables if not any(v is p for p in pretrained)]
    groups = [optimiser(learning_rate, head)]
    if pretrained:
        groups.append(optimiser(learning_rate * config.backbone_lr_scale, pretrained))
    return groups


def train_step(model, groups: list[tuple], strategy, global_batch: int, consistency: float = 0.0):
    """One synchronous step on every replica: ``(sum of mean loss, correct count)`` over the global batch.

    ``groups``: ``(optimizer, variables)`` pairs (see ``optimisers``), each applied to its own variables.

    A plain loop around ``strategy.run`` rather than ``model.fit``: Keras 3's
    fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), and
    one loop for every strategy is one thing to test.

    ``consistency``: each replica's batch is image twins (see ``stream.training``'s
    ``paired``); this weight times their Jensen-Shannon divergence joins the
    loss, so a camera change alone cannot move the answer (AugMix, Hendrycks et al. 2020).
    """
    tf = tensorflow()
    import keras

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def replica(x, y, w):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.nn.compute_average_loss(loss_fn(y, logits) * w, global_batch_size=global_batch)
            if consistency:
                pairs = global_batch // 2
                twin_w = tf.split(w, 2)[0]
                loss += consistency * tf.nn.compute_average_loss(disagreement(logits) * twin_w, global_batch_size=pairs)
        variables = [v for _, group in groups for v in group]
        grads = tape.gradient(loss, variables)
        start = 0
        for optimizer, group in groups:
            optimizer.apply_gradients(zip(grads[start : start + len(group)], group, strict=True))
            start += len(group)
        hits = tf.cast(tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), tf.cast(y, tf.int32)), tf.float32)
        return loss, tf.reduce_sum(hits)

    @tf.function
    def step(iterator):
        loss, hits = strategy.run(replica, args=next(iterator))
        return strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", hits, axis=None)

    return step


def disagreement(logits):
    """Jensen-Shannon divergence (nats) between the answers to each image and its twin: first half vs second."""
    tf = tensorflow()
    log_p = tf.stack(tf.split(tf.nn.log_softmax(logits), 2))  # (2, N, classes)
    log_mean = tf.reduce_logsumexp(log_p, axis=0) - math.log(2.0)
    return tf.reduce_mean(tf.reduce_sum(tf.exp(log_p) * (log_p - log_mean), axis=-1), axis=0)


def fit(
    splits: Splits, config: TrainConfig, progress: Path | None = None, should_stop=None, cluster=None, listener=None
) -> TrainResult:
    """Train on prepared splits; return the best model and its training metadata (not calibrated, not registered).

    ``config.batch_size`` is per replica; the global batch and the peak
    learning rate scale with the replicas of ``cluster`` (default: this device).
    """
    tf = tensorflow()
    import keras

    from skin_model.network import for_config

    cluster = cluster or distribute.cluster("default")
    seed_everything(config.seed)
    log = ProgressLog(progress if cluster.is_chief else None, listener)
    started = time.time()
    extra = balance.balance(splits.records["train"], config.balance, splits.fingerprints["train"])
    if should_stop and should_stop():
        raise Cancelled("training was cancelled; nothing was registered")
    paths = splits.paths("train") + extra.paths
    labels = np.concatenate([splits.y["train"], extra.labels])
    loss_weights = weights(splits.records["train"], extra.labels, config.weighting)
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
        model = for_config(config, imagenet=config.continue_from is None)
        if config.continue_from is not None:
            model.set_weights(starting_weights(config))
        groups = optimisers(model, config, steps, learning_rate)
    batches = cluster.strategy.distribute_datasets_from_function(
        lambda context: stream.training(
            paths,
            labels,
            loss_weights,
            config.image_size,
            config.batch_size,
            config.seed,
            context,
            config.device_augment,
            paired=config.consistency > 0,
            look_swap=config.look_swap,
        )
    )
    step = train_step(model, groups, cluster.strategy, global_batch, config.consistency)
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
            # the best epoch is chosen on one view (8 would cost 8x every epoch); calibration then uses the version's
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
            "train_counts": {name: int((splits.y["train"] == i).sum()) for i, name in enumerate(CLASSES)},
            "balanced_counts": extra.after,
        },
        "training": {
            "seconds": round(train_seconds, 1),
            "epochs_run": len(tracker.history),
            "best_epoch": tracker.best_epoch,
            "seconds_per_epoch": round(train_seconds / max(len(tracker.history), 1), 2),
            "parameters": int(model.count_params()),
            "started_from": started_from(config),
            "stopped_early": False,
            **cluster.describe(),
            "global_batch": global_batch,
            "peak_learning_rate": learning_rate,
        },
        "history": tracker.history,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    return TrainResult(model=model, metadata=metadata, history=tracker.history)


def calibrate(model, splits: Splits, config: TrainConfig, ranges: dict | None) -> dict:
    """Temperature and melanoma alert thresholds that hold on validation and under every stress condition.

    Logits are averaged over the version's test-time views, as it is served.
    The temperature minimises the negative log-likelihood over the clean and
    the stressed validation images together. Two thresholds (see
    ``alert.alert_thresholds``): a strict one for images whose imaging
    conditions fall outside ``ranges`` (the gate's usual ranges, as the app
    judges them), and a usual one for the rest, so the promise survives
    another clinic's camera without every image paying for the worst one.
    No ``ranges``: one threshold, the strict one, for every image.
    """
    y = splits.y["val"]
    conditions = [None, *shift.CONDITIONS]
    val = {
        c: stream.logits(model, splits.paths("val"), config.image_size, condition=c, views=config.views)
        for c in conditions
    }
    temperature = evaluate.fit_temperature(np.concatenate(list(val.values())), np.tile(y, len(conditions)))
    is_mel = y == evaluate.MEL
    p_mel = {c or "none": evaluate.softmax(logits, temperature)[:, evaluate.MEL] for c, logits in val.items()}
    # floor, not round: rounding up could push the smallest caught melanoma below the threshold
    floor = lambda t: math.floor(t * 1e4) / 1e4
    by_condition = {c: floor(alert.alert_threshold(p, is_mel, config.alert_sensitivity)) for c, p in p_mel.items()}
    by_warning = None
    if ranges:
        found = warnings_by_condition(splits.paths("val"), ranges, conditions)
        unusual = {c: np.any(np.stack(list(f.values())), axis=0) for c, f in found.items()}
        usual, strict = (floor(t) for t in alert.alert_thresholds(p_mel, unusual, is_mel, config.alert_sensitivity))
        own = alert.warning_thresholds(p_mel, found, is_mel, config.alert_sensitivity, usual, strict)
        by_warning = {name: floor(t) for name, t in own.items()}
        applied = alert.held_to(found["none"], usual, strict, by_warning)  # each clean validation image's own
    else:
        unusual = {"none": np.ones(len(y), bool)}
        usual = strict = min(by_condition.values())
        applied = np.full(len(y), strict)
    spec_at = lambda t: evaluate.sensitivity_specificity(p_mel["none"], is_mel, t)[1]
    return {
        "temperature": temperature,
        "alert_threshold": usual,
        "alert_threshold_unusual": strict,
        "alert_threshold_by_warning": by_warning,
        "threshold_by_condition": by_condition,
        "threshold_cost": {  # validation specificity: clean threshold alone, as applied, and the strict one everywhere
            "clean_threshold": by_condition["none"],
            "clean_specificity": round(spec_at(by_condition["none"]), 4),
            "specificity": round(spec_at(applied), 4),
            "strict_specificity": round(spec_at(strict), 4),
            "unusual_share": round(float(unusual["none"].mean()), 4) if ranges else None,
        },
        # the slider's exact values: the usual threshold, not the strict one (chosen, it would hold every image)
        "operating_curve": evaluate.operating_curve(p_mel["none"], is_mel, extra=(usual,)),
        "metrics": {"val": evaluate.metrics(val[None], y, temperature, applied)},
    }


def warnings_by_condition(
    paths: list[Path], ranges: dict, conditions: list, chunk: int = 64
) -> dict[str, dict[str, np.ndarray]]:
    """Per condition, per unusual-conditions warning, which images the app would give it: decoded as uploads are."""
    from skin_model.images import decode
    from skin_model.imaging import stats_table, warnings_in

    found: dict[str, list[dict]] = {c or "none": [] for c in conditions}
    for start in range(0, len(paths), chunk):
        images = [decode(path) for path in paths[start : start + chunk]]
        for c in conditions:
            found[c or "none"].append(warnings_in(ranges, stats_table(shift.under(c, images))))
    return {c: {name: np.concatenate([f[name] for f in parts]) for name in parts[0]} for c, parts in found.items()}


def alert_rule(calibrated: dict, ranges: dict | None, config: TrainConfig) -> alert.AlertRule:
    """The alert rule a calibration result describes, read as a version's record reads it."""
    from skin_model.record import Calibration

    return alert.AlertRule.of(Calibration.from_dict(calibrated, config.views).policy, ranges)


def score_test(model, splits: Splits, config: TrainConfig, calibrated: dict, gate: dict | None) -> dict:
    """The test split's metrics and its per-source and stress tables, from one scoring of its images.

    ``calibrated``: what ``calibrate`` returned (temperature, threshold, validation metrics).
    """
    from skin_model import robustness

    temperature = calibrated["temperature"]
    ranges = gate["unusual_ranges"] if gate else None
    rule = alert_rule(calibrated, ranges, config)
    records = splits.records["test"]
    tables, logits, applied = robustness.tables(
        model, config.image_size, records, temperature, rule, gate, config.views
    )
    test = evaluate.metrics(logits, splits.y["test"], temperature, applied)
    return {"robustness": tables, "metrics": calibrated["metrics"] | {"test": test}}


def score_held_out(model, config: TrainConfig, calibrated: dict, gate: dict, folders: list[Path | str]) -> dict:
    """Each held-out folder scored as the app serves (its own decode, gate and alert rule), keyed ``parent/name``.

    These are images from elsewhere that no split was drawn from (ISIC 2017 validation for the default): the
    figures that predict another clinic's, quoted first.
    """
    from skin_model import robustness
    from skin_model.audit import audit, usable

    rule = alert_rule(calibrated, gate["unusual_ranges"] if gate else None, config)
    scores = {}
    for folder in folders:
        found = audit(folder)
        records = usable(found, config.label_policy)
        tables, logits, applied = robustness.tables(
            model, config.image_size, records, calibrated["temperature"], rule, gate, config.views
        )
        name = f"{found.root.parent.name}/{found.root.name}"
        refused = tables["stress"]["none"]["refused"]
        scores[name] = evaluate.metrics(logits, dataset.labels_of(records), calibrated["temperature"], applied)
        scores[name] |= {"refused": refused, **tables}
    return scores


def fit_gate(model, splits: Splits, config: TrainConfig) -> dict:
    """The not-a-lesion gate, fitted on this model's features (see ``gate``)."""
    from skin_model import gate, negatives, robustness

    run = robustness.embedder(model, config.image_size)
    cap = GATE_IMAGES[config.backbone]
    train = dataset.Pixels(subset(splits.records["train"], cap, config.seed))
    val = dataset.Pixels(subset(splits.records["val"], cap, config.seed))
    found = negatives.generate(config.seed)
    return gate.fit(lambda images: run(images)[1], list(train), list(val), [n.pixels for n in found])


def similar_index(model, splits: Splits, config: TrainConfig) -> bytes:
    """The similar-cases index of a version: every image it was trained and validated on (see ``similar``)."""
    from skin_model import robustness, similar

    run = robustness.embedder(model, config.image_size)
    records = splits.records["train"] + splits.records["val"]
    index = similar.build(lambda images: run(images)[1], records, dataset.Pixels(records))
    return index.to_bytes()


def run(
    roots: Path | str | list[Path | str],
    config: TrainConfig,
    progress: Path | None = None,
    activate: bool = False,
    registry=None,
    should_stop=None,
    strategy: str = "default",
    listener=None,
    isic_csv: Path | str | None = None,
    cases_dir: Path | None = None,
    hold_out: list[Path | str] = (),
):
    """The whole stage: prepare, fit, fit the out-of-distribution limit, register.

    ``roots``: one dataset root or several, learnt from as one. ``hold_out``: folders the version will be
    scored on (ISIC 2017 validation for the default): no picture of theirs, nor a copy, is trained on.
    ``isic_csv``: the ISIC metadata CSV (None: each root's own ``metadata.csv`` when present).

    Returns the new version; on a cluster's non-chief workers, None (they
    train in step with the chief, which alone registers). ``listener`` is
    called with every progress event, written to a file or not (the CLI's display).
    With ``config.cases`` the clinic's confirmed cases join the data: those a
    job snapshotted into ``cases_dir`` when it started, else a copy of today's
    taken now, so cases added or removed meanwhile change nothing in the run.
    """
    from skin_model import cases
    from skin_model.record import VersionRecord
    from skin_model.registry import Registry
    from skin_model.similar import INDEX_FILE

    cluster = distribute.cluster(strategy)
    log = ProgressLog(progress if cluster.is_chief else None, listener)
    roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
    log.write("prepare", data=os.pathsep.join(str(r) for r in roots))
    with tempfile.TemporaryDirectory(prefix="skin-cases-") as scratch:
        where = cases_dir or Path(scratch)
        taken = (cases.snapshot(where) if cases_dir is None else cases.load_snapshot(where)) if config.cases else []
        try:
            splits = prepare(roots, config, isic_csv, cases.records(taken, where), hold_out)
            if should_stop and should_stop():
                raise Cancelled("training was cancelled; nothing was registered")
            result = fit(splits, config, progress, should_stop, cluster, listener)
        except Cancelled:
            log.write("cancelled")
            raise
        if not cluster.is_chief:
            return None
        shown = [str(Path(r).resolve()) for r in roots]
        data = dict(result.metadata["data"], roots=shown, cases=cases.summary(taken, splits.records))
        log.write("gate")
        fitted_gate = fit_gate(result.model, splits, config)
        log.write("calibrate")
        metadata = dict(result.metadata, data=data) | calibrate(
            result.model, splits, config, fitted_gate["unusual_ranges"]
        )
        metadata["gate"] = fitted_gate
        if splits.records["test"]:
            log.write("stress")
            metadata |= score_test(result.model, splits, config, metadata, metadata["gate"])
        if hold_out:
            log.write("held-out")
            metadata["external"] = score_held_out(result.model, config, metadata, metadata["gate"], list(hold_out))
        log.write("index")
        files = {INDEX_FILE: similar_index(result.model, splits, config)}
    record = VersionRecord.from_dict(metadata)
    version = (registry or Registry()).register(result.model, record, activate=activate, files=files)
    log.write("registered", version=version.number, live=activate)
    return version
