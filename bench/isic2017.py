"""The old default and the new side by side, in one run: ISIC 2017 validation first, then the grouped test split.

The old default (custom CNN, isic9 alone) is read from git at ``--old`` (the commit before the data and the
backbone changed); the new one from ``models/default``; ``--other`` adds any other trained version folder (the
custom CNN retrained on both roots: ``python -m skin_model.default_model --recipe custom-cnn --out DIR ...``).
Each is scored as the app serves it (its own decode, gate and alert rule) on:

- ISIC 2017 validation (no version trained on it, nor on a copy: ``--hold-out`` in ``make train-default``);
- the new default's lesion-grouped test split of isic9 + isic2017, restricted to the images no compared version
  trained or calibrated on (the old default's split of isic9 differs), with its per-source table.

Writes ``bench/isic2017_results.json`` and the section "ISIC 2017 and the pretrained backbone" of RESULTS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.publish import figure, publish
from skin_model import evaluate
from skin_model.audit import audit
from skin_model.config import DEFAULT_MODEL_DIR, REPO_ROOT, data_dirs
from skin_model.dataset import fingerprint, labels_of
from skin_model.predict import Predictor
from skin_model.registry import Registry
from skin_model.robustness import evaluate_folder, tables
from skin_model.splits import prepare, training_split

OUT = Path(__file__).resolve().parent / "isic2017_results.json"
OLD = "3e83d3b"  # the last commit whose default was the custom CNN on isic9 alone
FILES = ("model.keras", "metadata.json", "similar.npz")


def from_git(commit: str, dest: Path) -> Path:
    """``models/default`` as it was at ``commit``, into ``dest``."""
    dest.mkdir(parents=True)
    for name in FILES:
        blob = subprocess.run(
            ["git", "show", f"{commit}:models/default/{name}"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
        (dest / name).write_bytes(blob)
    return dest


def predictor_of(folder: Path, home: Path) -> Predictor:
    return Predictor.load(registry=Registry(home / "models", seed_dir=folder))


def seen(predictor: Predictor, roots: list[Path]) -> set[Path]:
    """The files a version trained or calibrated on, re-dealt from its own record (same seed), checked against the
    fingerprints it recorded: a split that cannot be re-dealt exactly is an error, not a guess."""
    data = predictor.record.data
    config = replace(predictor.record.config, cases=False)
    own = [r for r in roots if Path(r).name in " ".join(data.roots or ["isic9"])]
    held = data.audit.held_out.folders
    found = audit(own, hold_out=[r / "Validation" for r in own if held and (r / "Validation").is_dir()])
    if data.audit.roots is None:  # a version from before several roots: its audit knew no ids or near-copies
        found.same_id, found.near_copies = [], []
    parts = training_split(found, config)[1]
    for name in ("train", "val", "test"):
        if fingerprint(parts[name], found.hashes) != data.fingerprints[name]:
            raise SystemExit(f"cannot re-deal the {name} split of {predictor.version.path}: its data differ")
    return {r.path for name in ("train", "val") for r in parts[name]}


def headline(metrics: dict) -> dict:
    keys = ("images", "balanced_accuracy", "melanoma_sensitivity", "melanoma_specificity", "melanoma_roc_auc")
    return {k: metrics.get(k) for k in keys} | {"challenge_2017": metrics.get("challenge_2017")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", help="the dataset roots (default: SKIN_DATA_DIR)")
    parser.add_argument("--old", default=OLD, help="git commit of the old default")
    parser.add_argument("--other", action="append", default=[], help="NAME=FOLDER of another trained version")
    args = parser.parse_args(argv)
    roots = [Path(d).resolve() for d in args.data] if args.data else data_dirs()
    validation = next(r / "Validation" for r in roots if (r / "Validation").is_dir())
    with tempfile.TemporaryDirectory() as scratch:
        folders = {f"old default ({args.old}: custom CNN, isic9)": from_git(args.old, Path(scratch) / "old")}
        folders["new default (models/default)"] = DEFAULT_MODEL_DIR
        folders |= dict(item.split("=", 1) for item in args.other)
        homes = [Path(scratch) / f"home{i}" for i in range(len(folders))]
        models = {name: predictor_of(Path(f), home) for (name, f), home in zip(folders.items(), homes, strict=True)}
        new = models["new default (models/default)"]
        new_config = replace(new.record.config, cases=False)
        test = prepare(roots, new_config, hold_out=[validation]).records["test"]
        unseen = set.union(*(seen(m, roots) for m in models.values()))
        fair = [r for r in test if r.path not in unseen]
        results = {"test_images": len(test), "fair_test_images": len(fair), "versions": {}}
        for name, predictor in models.items():
            record = predictor.record
            on_2017 = evaluate_folder(predictor, validation)
            robust, logits, applied = tables(
                predictor.keras_model,
                predictor.info.image_size,
                fair,
                predictor.temperature,
                predictor.info.alert_rule,
                predictor.info.gate,
                record.config.views,
            )
            grouped = evaluate.metrics(logits, labels_of(fair), predictor.temperature, applied)
            results["versions"][name] = {
                "backbone": record.config.backbone,
                "training_minutes": round(record.training.seconds / 60, 1),
                "parameters": record.training.parameters,
                "isic2017_validation": headline(on_2017) | {"refused": on_2017["stress"]["none"]["refused"]},
                "grouped_test": headline(grouped) | {"refused": robust["stress"]["none"]["refused"]},
                "per_source": robust["per_source"],
            }
    publish(OUT, results, "ISIC 2017 and the pretrained backbone", render(results))
    return 0


def _f(value) -> str:
    return figure(value, "n/a")


def render(results: dict) -> str:
    lines = [
        "## ISIC 2017 and the pretrained backbone (`python -m bench.isic2017`)",
        "",
        "Each version scored as the app serves it, in one run. ISIC 2017 validation: no version trained on it or on "
        "a copy of it (the old default's isic9 held two of its pictures: ISIC_0000157, ISIC_0000171). Grouped test: "
        f"the new default's lesion-grouped test split of isic9 + isic2017 less every image any compared version "
        f"trained or calibrated on ({results['fair_test_images']} of {results['test_images']} images).",
        "",
        "| version | network | training (min) | ISIC 2017 val: melanoma AUC | seb. keratosis AUC | mean | "
        "sensitivity / specificity at the alert | grouped test: balanced accuracy | melanoma AUC | "
        "sensitivity / specificity |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in results["versions"].items():
        val, test = v["isic2017_validation"], v["grouped_test"]
        challenge = val["challenge_2017"] or {}
        lines.append(
            f"| {name} | {v['backbone']} | {v['training_minutes']} | {_f(challenge.get('melanoma_roc_auc'))} | "
            f"{_f(challenge.get('seborrheic_keratosis_roc_auc'))} | {_f(challenge.get('mean'))} | "
            f"{_f(val['melanoma_sensitivity'])} / {_f(val['melanoma_specificity'])} | "
            f"{_f(test['balanced_accuracy'])} | {_f(test['melanoma_roc_auc'])} | "
            f"{_f(test['melanoma_sensitivity'])} / {_f(test['melanoma_specificity'])} |"
        )
    sources = sorted({s for v in results["versions"].values() for s in v["per_source"]})
    lines += ["", "Per source (grouped test, balanced accuracy / melanoma AUC):", ""]
    names = list(results["versions"])
    lines += ["| source | images | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for source in sources:
        cells = [results["versions"][n]["per_source"].get(source) for n in names]
        images = next((c["images"] for c in cells if c), 0)
        lines.append(
            f"| {source} | {images} | "
            + " | ".join(
                "-" if c is None else f"{_f(c['balanced_accuracy'])} / {_f(c['melanoma_roc_auc'])}" for c in cells
            )
            + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
