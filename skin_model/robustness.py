"""How a version does away from its training conditions: per acquisition source and under stress.

The numbers a clinic should believe are these, not the pooled test score:
the held-out test images broken down by where they were acquired, and the
same images under each named device condition (``shift.CONDITIONS``), each
with the melanoma alert at the version's threshold and the gate's refusals.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from skin_model import evaluate, shift
from skin_model.alert import AlertRule
from skin_model.dataset import Record, labels_of
from skin_model.errors import DatasetError
from skin_model.gate import Gate
from skin_model.images import decode
from skin_model.imaging import stats_table
from skin_model.splits import domain


def embedder(model, image_size: int, views: int = 1):
    """Images of any size -> ``(logits, features)``, through the model's own resize (as the app feeds it).

    ``views``: logits averaged over that many test-time views; features are always the upright view's.
    """
    from skin_model.network import forward, two_heads

    net = two_heads(model)

    def run(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        logits, features = forward(net, list(images), views, image_size)
        return logits.numpy(), features.numpy()

    return run


def outputs(run, images: list[np.ndarray], batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    parts = [run(images[i : i + batch]) for i in range(0, len(images), batch)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def scored(metrics: dict, refused: np.ndarray) -> dict:
    """The headline of a split's ``evaluate.metrics``, with the gate's refusal rate."""
    keys = ("images", "balanced_accuracy", "melanoma_sensitivity", "melanoma_specificity", "melanoma_roc_auc", "ece")
    return {k: metrics[k] for k in keys} | {"refused": round(float(refused.mean()), 4) if len(refused) else None}


def tables(
    model,
    image_size: int,
    records: list[Record],
    temperature: float,
    rule: AlertRule,
    gate: dict | None,
    views: int = 1,
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Per-source and stress tables for held-out ``records`` (the test split), scored over ``views`` as served;
    the clean images' logits they were built from (so no caller scores them twice) and each one's alert threshold
    (``rule``: the strict one where the imaging conditions are unusual, as in the app)."""
    y = labels_of(records)
    clean = [decode(Path(r.path)) for r in records]
    run = embedder(model, image_size, views)
    checker = Gate(gate) if gate else None

    def measure(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, features = outputs(run, images)
        refused = (
            checker.scores(features, checker.stats(images)) < checker.threshold
            if checker
            else np.zeros(len(images), bool)
        )
        return logits, refused, rule.thresholds(stats_table(images))

    logits, refused, applied = measure(clean)
    by_source = defaultdict(list)
    for i, record in enumerate(records):
        by_source[domain(record)].append(i)
    sources = {
        name: scored(evaluate.metrics(logits[idx], y[idx], temperature, applied[idx]), refused[idx])
        for name, idx in sorted(by_source.items())
    }
    stress = {"none": scored(evaluate.metrics(logits, y, temperature, applied), refused)}
    for name in shift.CONDITIONS:
        stress_logits, stress_refused, stress_applied = measure([shift.apply(name, p) for p in clean])
        stress[name] = scored(evaluate.metrics(stress_logits, y, temperature, stress_applied), stress_refused)
    return {"per_source": sources, "stress": stress}, logits, applied


def evaluate_folder(predictor, roots: Path | str | list[Path], metadata: Path | str | None = None) -> dict:
    """A registered model's metrics on a labelled folder, never on images it was trained on.

    A ``Test`` source is used alone when there is one. When the folder is the
    model's own training data (same fingerprint), only its held-out test split
    is scored. Files reach the model as uploads do: the app's decoder, then
    the model's own resize. Adds the per-source and stress tables.
    """
    from skin_model.audit import audit, usable
    from skin_model.dataset import fingerprint
    from skin_model.splits import training_split

    found = audit(roots, metadata)
    record = predictor.record
    config = record.config
    records = usable(found, config.label_policy)
    scope = "all images"
    if any(r.source == "Test" for r in records):
        records, scope = [r for r in records if r.source == "Test"], "the Test folder"
    elif fingerprint(records, found.hashes) == record.data.fingerprint:
        records, scope = training_split(found, config)[1]["test"], "the model's held-out test split"
        if fingerprint(records, found.hashes) != record.data.fingerprints.get("test"):
            raise DatasetError(
                "this is the version's own training data, but its test split cannot be dealt again as it was "
                "(older code dealt it): score it on images from elsewhere"
            )
    if not records:
        raise DatasetError(f"{', '.join(str(r) for r in found.roots)}: no usable labelled images to evaluate")
    y = labels_of(records)
    shift_tables, logits, applied = tables(
        predictor.keras_model,
        config.image_size,
        records,
        predictor.temperature,
        predictor.info.alert_rule,
        predictor.info.gate,
        config.views,
    )
    return evaluate.metrics(logits, y, predictor.temperature, applied) | {"scope": scope} | shift_tables
