"""``make bench-gate``: which not-a-lesion gate, on the live model's features, refuses what.

Every variant is fitted on the same images (the version's training subset and the negatives
of the training seed, each as it is, under every stress condition and under a seeded pair of
them) and gets its threshold the same way (the lowest score kept by the allowed share of
validation images under each condition and under the pairs). Reported side by side: the
threshold, the worst share of validation and test images refused under any condition, and
the fitting and held-out negatives (another seed's crops and drawings) that get through,
clean and stress-transformed. Then the live gate
itself on the test split under every pair of conditions at once (an older dermatoscope is
cool and vignetted together), each pair in both orders. Last, the default gate refitted
without each kind of negative in turn and shown that kind: how it meets a picture unlike
anything it was fitted on; and the live gate on photographs from two other packages that no gate is
ever fitted on (``negatives.UNSEEN``; ``--unseen-photos`` measures only those). Writes
``bench/gate_results.json`` and the "Not-a-lesion gate" section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.publish import put_section
from skin_model import dataset, gate, imaging, negatives, robustness, shift, splits
from skin_model.config import data_dirs, roots_of
from skin_model.predict import Predictor
from skin_model.train import GATE_IMAGES

HERE = Path(__file__).resolve().parent
CONDITIONS = shift.LOOKS
HELD_OUT_SEED = 99
Score = Callable[[np.ndarray], np.ndarray]


def design(embed, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Features, and every statistic, of each image under each condition: ``(condition, image, column)`` each."""
    features, stats = [], []
    for name in CONDITIONS:
        shown = shift.under(name, images)
        features.append(gate._batched(embed, shown))
        stats.append(imaging.stats_table(shown, field_of_view=True))
    return np.stack(features), np.stack(stats)


def with_distance(features: np.ndarray, stats: np.ndarray, typical: gate.Typical) -> np.ndarray:
    """The default gate's inputs, block by block: as ``gate._design`` lays them out."""
    return np.stack([gate._design(f, s, typical) for f, s in zip(features, stats, strict=True)])


def variants(x: np.ndarray, y: np.ndarray, val: np.ndarray) -> dict[str, Score]:
    """name -> scorer on standardised rows laid out as ``gate._design`` does: features, statistics, distance.

    ``val``: the standardised validation blocks, which the default's refits with hard negatives need."""
    n_stats = len(imaging.STAT_NAMES)
    features = np.arange(x.shape[1] - n_stats - 1)
    no_distance = np.arange(x.shape[1] - 1)
    out = {}
    for name, keep in (
        ("logistic, first 13 statistics (the first gate)", np.concatenate([features, len(features) + np.arange(13)])),
        ("logistic, all 18 statistics", no_distance),
    ):
        w, b = gate.fit_logistic(x[:, keep], y)
        out[name] = lambda a, w=w, b=b, keep=keep: gate._sigmoid(a[:, keep] @ w + b)
    for name, members, keep in (
        (f"network, 1 x {gate.HIDDEN} hidden", 1, None),
        (
            f"network, {gate.MEMBERS} x {gate.HIDDEN} hidden, no distance from the lesions (before 6 December)",
            gate.MEMBERS,
            no_distance,
        ),
        (f"network, {gate.MEMBERS} x {gate.HIDDEN} hidden, no refits with hard negatives", gate.MEMBERS, None),
    ):
        chosen = x if keep is None else x[:, keep]
        net = gate.fit_ensemble(chosen, y, members)
        out[name] = lambda a, net=net, keep=keep: gate.ensemble_scores(net, a if keep is None else a[:, keep])
    net, _ = gate.fit_mined(x, y, list(val))
    out[f"network, {gate.MEMBERS} x {gate.HIDDEN} hidden (default)"] = lambda a: gate.ensemble_scores(net, a)
    return out


def measure(score: Score, blocks: dict[str, np.ndarray], allowed: float) -> dict:
    val = [score(v) for v in blocks["val"]]
    cut = gate.threshold_for(val, allowed)

    def missed(name: str) -> dict:
        scores = [score(v) for v in blocks[name]]
        return {
            "clean": int((scores[0] >= cut).sum()),
            "stressed": int(sum((s >= cut).sum() for s in scores[1:])),
            "of_clean": len(scores[0]),
            "of_stressed": sum(len(s) for s in scores[1:]),
        }

    return {
        "threshold": round(cut, 4),
        "val_refused_worst": round(max(float((v < cut).mean()) for v in val), 4),
        "test_refused_worst": round(max(float((score(t) < cut).mean()) for t in blocks["test"]), 4),
        "fitting_negatives_missed": missed("fit"),
        "held_out_negatives_missed": missed("held_out"),
    }


def live_inputs(roots: list[Path]):
    """The live model and its feature embedder, its split of ``roots``, and the training and validation images
    its gate was fitted on (the same subsets, same seed): what every gate comparison starts from."""
    predictor = Predictor.load()
    config = predictor.record.config
    held_out = [r / "Validation" for r in roots if (r / "Validation").is_dir()]  # as make train-default holds out
    prepared = splits.prepare(roots, config, hold_out=held_out)
    cap = GATE_IMAGES[config.backbone]
    train = list(dataset.Pixels(splits.subset(prepared.records["train"], cap, config.seed)))
    val = list(dataset.Pixels(splits.subset(prepared.records["val"], cap, config.seed)))
    return predictor, prepared, pooled_features(predictor), train, val


def pooled_features(predictor: Predictor):
    """Images -> the live model's pooled features (upright view), what its gate reads."""
    run_net = robustness.embedder(predictor.keras_model, predictor.record.config.image_size)
    return lambda images: run_net(images)[1]


def run(roots: list[Path]) -> dict:
    predictor, prepared, embed, train, val = live_inputs(roots)
    seed = predictor.record.config.seed
    fitting, held_out = negatives.generate(seed), negatives.generate(HELD_OUT_SEED)
    sets = {
        "train": train,
        "val": val,
        "test": list(dataset.Pixels(prepared.records["test"])),
        "fit": [n.pixels for n in fitting],
        "held_out": [n.pixels for n in held_out],
    }
    measured = {name: design(embed, images) for name, images in sets.items()}
    train_features = measured["train"][0]
    typical = gate.Typical.fit(train_features.reshape(-1, train_features.shape[-1]))
    blocks = {name: with_distance(*m, typical) for name, m in measured.items()}
    x, y, standardise = training_rows(blocks["train"], blocks["fit"])
    standard = {k: standardise(v) for k, v in blocks.items()}
    scorers = variants(x, y, standard["val"])
    results = {}
    for name, score in scorers.items():
        for allowed in (0.005, 0.01):
            results[f"{name} | {allowed:.1%}"] = measure(score, standard, allowed)
            print(name, allowed, results[f"{name} | {allowed:.1%}"], flush=True)
    return {
        "model_version": predictor.version.number,
        "images": {k: len(v) for k, v in sets.items()},
        "variants": results,
        "pairs": pairs(gate.Gate(predictor.info.gate), embed, sets["test"]),
        "unseen_kinds": unseen_kinds(blocks, [n.base for n in fitting], [n.base for n in held_out]),
        "unseen_photos": unseen_photos(gate.Gate(predictor.info.gate), embed),
    }


def unseen_photos(live: gate.Gate, embed) -> dict[str, dict]:
    """Share of each ``negatives.UNSEEN`` photograph's crops the live gate refuses, as taken and stressed."""
    photos = negatives.unseen()
    bases = np.array([n.base for n in photos])
    refused = []  # (condition, image)
    for condition in CONDITIONS:
        shown = shift.under(condition, [n.pixels for n in photos])
        refused.append(live.scores(gate._batched(embed, shown), live.stats(shown)) < live.threshold)
    refused = np.stack(refused)
    return {
        str(base): {
            "images": int((bases == base).sum()),
            "clean": round(float(refused[0, bases == base].mean()), 3),
            "stressed": round(float(refused[1:, bases == base].mean()), 3),
        }
        for base in dict.fromkeys(bases)
    }


def training_rows(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray, Callable]:
    """Standardised rows and labels to fit on, from (condition, image, column) blocks, and the standardisation."""
    rows = np.concatenate([positives.reshape(-1, positives.shape[-1]), negatives.reshape(-1, negatives.shape[-1])])
    y = np.concatenate(
        [np.ones(positives.shape[0] * positives.shape[1]), np.zeros(negatives.shape[0] * negatives.shape[1])]
    )
    mean, scale = rows.mean(axis=0), rows.std(axis=0) + 1e-6
    return (rows - mean) / scale, y, lambda a: (a - mean) / scale


def unseen_kinds(blocks: dict[str, np.ndarray], fit_bases: list[str], held_bases: list[str]) -> dict[str, dict]:
    """Per kind of negative: the default gate refitted without any picture of that kind, then shown that kind.

    (The distance from the lesions is fitted on lesions alone, so no kind of negative shapes it.)

    The acceptance's non-lesion photos are pictures the gate never saw. Held-out crops of the same
    photos flatter it; a kind it never saw at all (no brick wall, no chart) is the honest test.
    """
    fit_bases, held_bases = np.array(fit_bases), np.array(held_bases)
    out = {}
    for base in sorted(set(fit_bases)):
        x, y, standardise = training_rows(blocks["train"], blocks["fit"][:, fit_bases != base])
        net, _ = gate.fit_mined(x, y, [standardise(v) for v in blocks["val"]])
        score = lambda a, net=net: gate.ensemble_scores(net, a)
        cut = gate.threshold_for([score(standardise(v)) for v in blocks["val"]])
        shown = np.concatenate([blocks["fit"][:, fit_bases == base], blocks["held_out"][:, held_bases == base]], axis=1)
        refused = np.stack([score(standardise(v)) < cut for v in shown])  # (condition, image)
        out[base] = {
            "images": int(shown.shape[1]),
            "clean": round(float(refused[0].mean()), 3),
            "stressed": round(float(refused[1:].mean()), 3),
        }
        print("unseen", base, out[base], flush=True)
    return out


def pairs(live: gate.Gate, embed, images: list[np.ndarray]) -> dict[str, float]:
    """Share of ``images`` the live gate refuses under each ordered pair of stress conditions."""
    out = {}
    for first, second in itertools.permutations(shift.CONDITIONS, 2):
        shown = [shift.apply(second, shift.apply(first, p)) for p in images]
        refused = live.scores(gate._batched(embed, shown), live.stats(shown)) < live.threshold
        out[f"{first}, then {second}"] = round(float(refused.mean()), 4)
    return out


def render(results: dict) -> str:
    n = results["images"]
    lines = [
        "## Not-a-lesion gate (`make bench-gate`)",
        "",
        f"On the live model's features (version {results['model_version']}): fitted on {n['train']} training images "
        f"and {n['fit']} negatives, each also under the {len(CONDITIONS) - 2} stress conditions and under a seeded "
        f"pair of them; threshold from {n['val']} validation images; {n['test']} test images; {n['held_out']} "
        f"held-out negatives (seed {HELD_OUT_SEED}: other crops, other drawings), each also under every condition and "
        "a pair. *Missed*: negatives that "
        "get a result, clean / stress-transformed.",
        "",
        "| gate | validation refused allowed | threshold | validation refused, worst condition | test refused, worst "
        "condition | fitting negatives missed | held-out negatives missed |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in results["variants"].items():
        name, allowed = key.split(" | ")
        fit, held = r["fitting_negatives_missed"], r["held_out_negatives_missed"]
        lines.append(
            f"| {name} | {allowed} | {r['threshold']} | {r['val_refused_worst']:.1%} | {r['test_refused_worst']:.1%} "
            f"| {fit['clean']} / {fit['stressed']} of {fit['of_clean']} / {fit['of_stressed']} "
            f"| {held['clean']} / {held['stressed']} of {held['of_clean']} / {held['of_stressed']} |"
        )
    if "pairs" in results:
        shares = results["pairs"]
        worst = sorted(shares, key=shares.get, reverse=True)[:5]
        over = sum(v > gate.FALSE_REFUSALS for v in shares.values())
        lines += [
            "",
            f"**Two conditions at once**: the live gate on the {n['test']} test images under each of {len(shares)} "
            f"ordered pairs of conditions; {over} pairs refuse more than {gate.FALSE_REFUSALS:.0%}. The worst: "
            + "; ".join(f"{name} {shares[name]:.1%}" for name in worst)
            + ".",
        ]
    if "unseen_kinds" in results:
        unseen = results["unseen_kinds"]
        whole = [k for k, r in unseen.items() if r["clean"] == 1.0]
        lines += [
            "",
            f"**Kinds of picture the gate never saw**: the default gate refitted without one kind of negative (every "
            "crop or drawing of it, both seeds), its threshold set the same way, then shown that kind's pictures, "
            f"clean and under every condition and a pair. {len(whole)} of {len(unseen)} kinds are refused entirely "
            "as taken; the rest:",
            "",
            "| kind never seen | pictures | refused as taken | refused, stress-transformed |",
            "|---|---|---|---|",
            *(
                f"| {k} | {r['images']} | {r['clean']:.0%} | {r['stressed']:.0%} |"
                for k, r in sorted(unseen.items(), key=lambda kv: (kv[1]["clean"], kv[1]["stressed"]))
                if k not in whole
            ),
        ]
    if "unseen_photos" in results:
        photos = results["unseen_photos"]
        lines += [
            "",
            f"**Photographs from other packages** (matplotlib's and scikit-learn's sample images, in no gate's "
            f"fitting set): the live gate on each, whole and {next(iter(photos.values()))['images'] - 1} crops, as "
            f"taken and under every condition and a pair.",
            "",
            "| photograph | pictures | refused as taken | refused, stress-transformed |",
            "|---|---|---|---|",
            *(f"| {k} | {r['images']} | {r['clean']:.0%} | {r['stressed']:.0%} |" for k, r in photos.items()),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", help="dataset roots, joined with os.pathsep or repeated")
    parser.add_argument("--unseen-photos", action="store_true", help="measure only the photographs from other packages")
    args = parser.parse_args(argv)
    if args.unseen_photos:
        predictor = Predictor.load()
        results = json.loads((HERE / "gate_results.json").read_text())
        results["unseen_photos"] = unseen_photos(gate.Gate(predictor.info.gate), pooled_features(predictor))
    else:
        results = run(roots_of(os.pathsep.join(args.data)) if args.data else data_dirs())
    (HERE / "gate_results.json").write_text(json.dumps(results, indent=2) + "\n")
    put_section("Not-a-lesion gate", render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
