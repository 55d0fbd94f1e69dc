"""Several pictures of one lesion, one result: does combining them beat one picture? (issue 30)

The lesions with two or more pictures in the committed default's lesion-grouped test split (HAM10000 lesion ids
in isic9's metadata; no picture of them was trained or calibrated on) are scored three ways, as the app serves
them: each lesion's first picture alone, every picture alone (each lesion weighing as one, its pictures sharing
that weight), and all its pictures combined by ``Predictor.predict_lesion`` (the Classify page's "These pictures
show one lesion"). Writes ``bench/multiview_results.json`` and the section "Several pictures of one lesion" of
RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.publish import figure, publish
from skin_model import CLASSES
from skin_model.config import DEFAULT_MODEL_DIR, MALIGNANT, REPO_ROOT, data_dirs
from skin_model.images import decode
from skin_model.predict import Prediction, Predictor
from skin_model.registry import Registry
from skin_model.splits import prepare

OUT = Path(__file__).resolve().parent / "multiview_results.json"


def lesions_with_several(records) -> dict[str, list]:
    """Test records grouped by lesion id, only the lesions with two or more pictures (all of one label)."""
    groups: dict[str, list] = defaultdict(list)
    for record in records:
        if record.lesion:
            groups[record.lesion].append(record)
    several = {lesion: sorted(group, key=lambda r: r.path.name) for lesion, group in groups.items() if len(group) > 1}
    mixed = [lesion for lesion, group in several.items() if len({r.label for r in group}) > 1]
    if mixed:
        raise SystemExit(f"lesions with two labels in the test split: {mixed[:5]}")
    return several


def scores(rows: list[tuple[Prediction, str, float]]) -> dict:
    """Melanoma AUC, sensitivity and specificity at the alert, top-1 accuracy; each row (result, label, weight)."""
    kept = [(p, label, w) for p, label, w in rows if p.lesion_like]
    p_mel = np.array([p.alert_probability for p, _, _ in kept])
    is_mel = np.array([label == "melanoma" for _, label, _ in kept])
    alert = np.array([bool(p.melanoma_alert) for p, _, _ in kept])
    weight = np.array([w for _, _, w in kept])
    right = np.array([p.top_class == label for p, label, _ in kept])
    p_bad = np.array([p.malignant_probability for p, _, _ in kept])
    is_bad = np.array([label in MALIGNANT for _, label, _ in kept])
    return {
        "results": len(kept),
        "refused": len(rows) - len(kept),
        "melanoma_roc_auc": _weighted_auc(p_mel, is_mel, weight),
        "malignant_roc_auc": _weighted_auc(p_bad, is_bad, weight),
        "melanoma_sensitivity": _share(alert, is_mel, weight),
        "melanoma_specificity": _share(~alert, ~is_mel, weight),
        "accuracy": float((right * weight).sum() / weight.sum()),
    }


def _share(hit: np.ndarray, among: np.ndarray, weight: np.ndarray) -> float | None:
    total = float(weight[among].sum())
    return None if total == 0 else float(weight[among & hit].sum()) / total


def _weighted_auc(score: np.ndarray, positive: np.ndarray, weight: np.ndarray) -> float | None:
    """The chance a melanoma scores above a non-melanoma (ties half), each pair weighted by its two weights."""
    pos, neg = score[positive], score[~positive]
    if not len(pos) or not len(neg):
        return None
    wp, wn = weight[positive], weight[~positive]
    above = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return float((wp[:, None] * wn[None, :] * above).sum() / (wp.sum() * wn.sum()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", help="the dataset roots (default: SKIN_DATA_DIR)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="a trained version's folder")
    args = parser.parse_args(argv)
    roots = [Path(d).resolve() for d in args.data] if args.data else data_dirs()
    held_out = [r / "Validation" for r in roots if (r / "Validation").is_dir()]
    with tempfile.TemporaryDirectory() as scratch:
        predictor = Predictor.load(registry=Registry(Path(scratch) / "models", seed_dir=args.model))
        config = replace(predictor.record.config, cases=False)
        test = prepare(roots, config, hold_out=held_out).records["test"]
        lesions = lesions_with_several(test)
        first, each, combined = [], [], []
        for lesion, group in lesions.items():
            pictures = [(r.path.name, decode(r.path)) for r in group]
            together, own = predictor.predict_lesion(pictures, lesion)
            label = group[0].label
            first.append((own[0], label, 1.0))
            each.extend((p, label, 1.0 / len(own)) for p in own)
            combined.append((together, label, 1.0))
    counts = {name: sum(g[0].label == name for g in lesions.values()) for name in CLASSES}
    results = {
        "test_images": len(test),
        "lesions": len(lesions),
        "pictures": sum(len(g) for g in lesions.values()),
        "lesions_by_class": {k: v for k, v in counts.items() if v},
        "model": str(args.model.resolve().relative_to(REPO_ROOT))
        if args.model.resolve().is_relative_to(REPO_ROOT)
        else str(args.model),  # no path of this machine in the results
        "model_version_created": predictor.record.created,
        "first_picture": scores(first),
        "each_picture": scores(each),
        "combined": scores(combined),
        "alerts_changed_by_combining": sum(
            bool(a[0].melanoma_alert) != bool(c[0].melanoma_alert) for a, c in zip(first, combined, strict=True)
        ),
    }
    publish(OUT, results, "Several pictures of one lesion", render(results))
    return 0


def _f(value) -> str:
    return figure(value, "–")


def render(results: dict) -> str:
    by_class = ", ".join(f"{n} {k}" for k, n in results["lesions_by_class"].items())
    lines = [
        "## Several pictures of one lesion (issue 30)",
        "",
        f"`make bench-multiview`: the version in `{results['model']}` on the {results['lesions']} lesions with two "
        f"or more pictures ({results['pictures']} pictures; {by_class}) in its lesion-grouped test split "
        f"({results['test_images']} images, none trained or calibrated on), as the app serves them.",
        "",
        "| scored on | malignant vs benign ROC AUC | melanoma ROC AUC | melanoma sensitivity at the alert | "
        "specificity at the alert | top-1 accuracy |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "first_picture": "the first picture alone",
        "each_picture": "each picture alone (a lesion weighs one)",
        "combined": "all pictures combined",
    }
    for key, name in names.items():
        s = results[key]
        lines.append(
            f"| {name} | {_f(s['malignant_roc_auc'])} | {_f(s['melanoma_roc_auc'])} | "
            f"{_f(s['melanoma_sensitivity'])} | {_f(s['melanoma_specificity'])} | {_f(s['accuracy'])} |"
        )
    lines += [
        "",
        f"Combining changed the alert on {results['alerts_changed_by_combining']} of {results['lesions']} lesions "
        "against the first picture alone. Malignant: basal and squamous cell carcinoma (no melanoma lesion in isic9 "
        "has several pictures, so the melanoma columns are empty). These are HAM10000 lesions, the source the model "
        "learned most from, and few of them: a difference of a few lesions is within noise; it says whether "
        "combining hurts, not how much it helps on other images.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
