"""``make train-default``: train with the default settings and commit-ready files.

Writes ``model.keras``, ``similar.npz``, ``metadata.json`` and ``MODEL_CARD.md`` into
``models/default``, which a fresh registry imports as version 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from skin_model import card, train
from skin_model.config import BACKBONES, DEFAULT_RECIPE, TrainConfig, roots_of
from skin_model.errors import SkinModelError
from skin_model.record import OtherRecipe, VersionRecord
from skin_model.registry import METADATA_FILE, MODEL_FILE, Registry, sha256, write_json
from skin_model.similar import INDEX_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True, help="a dataset root; repeat for several")
    parser.add_argument("--hold-out", action="append", default=[], help="scored on, never trained on (and copies)")
    parser.add_argument("--out", type=Path, default=Path("models/default"))
    parser.add_argument("--progress", type=Path)
    parser.add_argument(
        "--recipe",
        choices=BACKBONES,
        default=DEFAULT_RECIPE.backbone,
        help="the network: the default's recipe, or the custom CNN's (trained from scratch) to compare with it",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="keep the committed weights; recompute calibration, gate, metrics and card with the current code",
    )
    parser.add_argument(
        "--other-recipes", type=Path, help="bench/isic2017_results.json: name the other recipes' figures in the card"
    )
    args = parser.parse_args(argv)
    if args.other_recipes:
        return note_other_recipes(args.other_recipes, args.out)
    roots = [root for value in args.data for root in roots_of(value)]
    if args.recalibrate:
        return recalibrate(roots, args.out, args.hold_out)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            recipe = DEFAULT_RECIPE if args.recipe == DEFAULT_RECIPE.backbone else TrainConfig(cases=False)
            version = train.run(
                roots,
                recipe,  # the shared data alone, never this machine's confirmed cases
                progress=args.progress,
                registry=Registry(Path(scratch), seed_dir=None),
                hold_out=args.hold_out,
            )
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(version.model_path, args.out / MODEL_FILE)
            for name in version.record.files:
                shutil.copy2(version.path / name, args.out / name)
            write(args.out, shareable(version.record))
    except SkinModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/{MODEL_FILE}, {METADATA_FILE} and MODEL_CARD.md")
    return 0


def shareable(record: VersionRecord) -> VersionRecord:
    """The record with its data folders named as in the repository (``shared/data/...``), no path of this
    machine."""
    data = record.data
    held = data.audit.held_out
    folders = tuple(f"shared/data/{Path(f).parent.name}/{Path(f).name}" for f in held.folders)
    audit = replace(data.audit, held_out=replace(held, folders=folders))
    roots = tuple(f"shared/data/{Path(r).name}" for r in data.roots)
    return replace(record, data=replace(data, roots=roots, audit=audit))


def write(out: Path, record: VersionRecord) -> None:
    """The committed record and its card, from the same record."""
    write_json(out / METADATA_FILE, record.to_dict())
    (out / "MODEL_CARD.md").write_text(card.render(record))


def recalibrate(data: list[Path], out: Path, hold_out: list[str] = ()) -> int:
    """Re-derive everything after training from the committed weights (same split, same seed).

    Calibration choices are today's: the test-time views and the weight-free input layers (the
    field-of-view crop) come from today's defaults, not the old config.
    """
    import keras

    from skin_model.splits import prepare

    metadata = json.loads((out / METADATA_FILE).read_text())
    config = TrainConfig.from_dict(metadata["config"])
    recipe = DEFAULT_RECIPE if config.backbone == DEFAULT_RECIPE.backbone else TrainConfig()
    config = replace(config, views=recipe.views, field_of_view=recipe.field_of_view)
    metadata["config"] = config.to_dict()
    splits = prepare(data, config, hold_out=hold_out)
    if splits.fingerprints["all"] != metadata["data"]["fingerprints"]["all"]:
        print("error: the data differ from the data the committed model was trained on", file=sys.stderr)
        return 2
    import skin_model.network  # noqa: F401  (custom layers)

    model = in_todays_layers(keras.models.load_model(out / MODEL_FILE, compile=False, safe_mode=True), config)
    model.save(out / MODEL_FILE)
    metadata["sha256"] = sha256(out / MODEL_FILE)  # what the registry checks before seeding it
    metadata["gate"] = train.fit_gate(model, splits, config)
    metadata |= train.calibrate(model, splits, config, metadata["gate"]["unusual_ranges"])
    metadata |= train.score_test(model, splits, config, metadata, metadata["gate"])
    if hold_out:
        metadata["external"] = train.score_held_out(model, config, metadata, metadata["gate"], list(hold_out))
    metadata["training"].setdefault("started_from", train.started_from(config))
    (out / INDEX_FILE).write_bytes(train.similar_index(model, splits, config))
    metadata["files"] = {INDEX_FILE: sha256(out / INDEX_FILE)}
    record = VersionRecord.from_dict(metadata)
    write(out, record)
    policy = record.policy
    print(
        f"recalibrated {out}: temperature {policy.temperature}, threshold {policy.threshold} "
        f"({policy.unusual} for unusual imaging conditions)"
    )
    return 0


def note_other_recipes(results: Path, out: Path) -> int:
    """Name, in the committed card, how the other recipes measured on the same images (``bench.isic2017``)."""
    record = VersionRecord.from_dict(json.loads((out / METADATA_FILE).read_text()))
    measured = json.loads(results.read_text())["versions"]
    f = lambda v: "n/a" if v is None else f"{v:.3f}"

    def summary(v: dict) -> str:
        on_2017 = v["isic2017_validation"]
        keratosis = (on_2017["challenge_2017"] or {}).get("seborrheic_keratosis_roc_auc")
        return (
            f"ISIC 2017 validation melanoma AUC {f(on_2017['melanoma_roc_auc'])}, seborrheic keratosis AUC "
            f"{f(keratosis)}; grouped test balanced accuracy {f(v['grouped_test']['balanced_accuracy'])}; "
            f"{v['training_minutes']} min of training"
        )

    others = {name: v for name, v in measured.items() if not name.startswith("new default")}
    record = replace(record, other_recipes=tuple(OtherRecipe(name, summary(v)) for name, v in others.items()))
    write(out, record)
    print(f"named {len(record.other_recipes)} other recipe(s) in {out}/MODEL_CARD.md")
    return 0


def in_todays_layers(model, config: TrainConfig):
    """The same weights in the network ``config`` builds: its weight-free layers may differ, its weights may not."""
    from skin_model.network import for_config

    rebuilt = for_config(config, imagenet=False)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


if __name__ == "__main__":
    raise SystemExit(main())
