"""``python -m skin_model``: one sub-command per stage.

Every command prints a readable table, or JSON with ``--json``. Problems a
user can fix are one line on stderr and a non-zero exit, never a traceback
(set ``SKIN_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from skin_model import CLASSES
from skin_model.config import (
    BACKBONES,
    DEFAULT_RECIPE,
    DEVICE_AUGMENT,
    VIEWS,
    BalanceConfig,
    TrainConfig,
    data_dirs,
    roots_of,
)
from skin_model.distribute import STRATEGIES, worker_of
from skin_model.errors import SkinModelError
from skin_model.similar import MAX_K, REPORT_K
from skin_model.text import printable

if TYPE_CHECKING:
    from skin_model.record import AlertPolicy, Metrics

DATA_HELP = "dataset root (ISIC layout); repeat for several, learnt from as one (default: SKIN_DATA_DIR)"


def _data(values: list[str] | None) -> list[Path]:
    """The dataset roots of ``--data`` (given once or more), else ``SKIN_DATA_DIR``'s."""
    roots = [root for value in values or [] for root in roots_of(value)] or data_dirs()
    if not roots:
        raise SkinModelError("no dataset given: pass --data DIR (several: --data A --data B) or set SKIN_DATA_DIR")
    return roots


def _table(rows: list[list], headers: list[str]) -> str:
    """Aligned columns; every cell through ``text.printable``, so a stored note cannot drive the terminal."""
    cells = [[printable(h) for h in headers]] + [["" if c is None else printable(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _emit(args, data, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


# -- commands -----------------------------------------------------------------
def cmd_audit(args) -> int:
    from skin_model.audit import audit

    summary = audit(_data(args.data), args.metadata, args.hold_out or ()).summary()
    lines = [
        f"dataset {root}: {found['images']} images, {found['usable']} usable; metadata: {found['metadata'] or 'none'}"
        for root, found in summary["roots"].items()
    ]
    if len(summary["roots"]) > 1:
        lines.append(f"together: {summary['images']} images, {summary['usable']} usable for training")
    counts = summary["counts"]
    rows = [[name] + [counts.get(src, {}).get(name, 0) for src in counts] for name in CLASSES]
    lines += ["", _table(rows, ["class", *counts]), "", f"sizes: {summary['sizes']}"]
    lines.append(f"metadata: {summary['metadata'] or 'none'}; labels: {summary['label_policy']}")
    for key, label in (
        ("unreadable", "unreadable files"),
        ("not_images", "files that are not images"),
        ("outside_data_root", "files that link out of SKIN_DATA_ROOT (never read)"),
        ("duplicates", "exact duplicate groups (same class)"),
        ("conflicts", "same image under different classes (dropped from training)"),
        ("leaks", "images in both Train and Test (kept in Test only)"),
        ("official_label_disagreements", "folder labels the official ISIC label contradicts (official label used)"),
        ("same_id", "one ISIC id with different pixels (kept once)"),
        ("near_copies", "near-copies: the same picture at another size, compression or colour (kept once)"),
        ("held_out", "pictures a held-out folder repeats (never trained on)"),
    ):
        lines.append(f"{label}: {len(summary[key])}")
        for item in summary[key][: args.show]:
            lines.append(f"  {item}")
    _emit(args, summary, "\n".join(lines))
    return 0


def cmd_balance(args) -> int:
    from skin_model.audit import audit
    from skin_model.splits import balance_preview

    config = TrainConfig(balance=BalanceConfig(strategy=args.strategy, n=args.n))
    before, after = balance_preview(audit(_data(args.data), args.metadata), config)
    data = {"strategy": args.strategy, "n": args.n, "split": "train", "before": before, "after": after}
    rows = [[name, before[name], after[name]] for name in CLASSES]
    text = "training split, after the audit's cleaning\n\n" + _table(rows, ["class", "before", "after"])
    _emit(args, data, text)
    return 0


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The recipe the train command's flags describe (refused with a clear error when out of range).

    Flags left out take the chosen network's own recipe: the default model's for EfficientNet-Lite0, the
    custom CNN's (``TrainConfig()``) for it.
    """
    base = DEFAULT_RECIPE if args.backbone == DEFAULT_RECIPE.backbone else TrainConfig()
    pick = lambda value, name: getattr(base, name) if value is None else value
    balance = BalanceConfig(strategy=args.balance, n=args.n, seed=args.seed)
    return replace(
        base,
        backbone=args.backbone,
        continue_from=args.continue_from,
        epochs=pick(args.epochs, "epochs"),
        image_size=pick(args.image_size, "image_size"),
        batch_size=args.batch_size,
        learning_rate=pick(args.learning_rate, "learning_rate"),
        seed=args.seed,
        max_per_class=args.max_per_class,
        width=args.width,
        group_by=args.group_by,
        label_policy=args.labels,
        weighting=args.weighting,
        colour_constancy=args.colour_constancy,
        normalise_exposure=args.normalise_exposure,
        device_augment=args.device_augment,
        look_swap=args.look_swap,
        views=pick(args.views, "views"),
        cases=args.cases,
        balance=balance,
    )


def _thresholds(policy: AlertPolicy) -> str:
    """A version's alert threshold, and its stricter one for unusual imaging conditions when it has one."""
    usual, strict = policy.threshold, policy.unusual
    return f"{usual}" if strict in (None, usual) else f"{usual} (down to {strict} for unusual imaging conditions)"


def cmd_train(args) -> int:
    from skin_model import jobs, train
    from skin_model.console import TrainingConsole

    config = train_config(args)
    # one training at a time on this state folder, the app's jobs included; a cluster's other workers register nothing
    chief = args.strategy != "multiworker" or worker_of(os.environ.get("TF_CONFIG"))[1] == 0
    with jobs.training_lock() if chief else contextlib.nullcontext():
        version = train.run(
            _data(args.data),
            config,
            progress=args.progress,
            activate=args.activate,
            strategy=args.strategy,
            listener=None if args.json else TrainingConsole(),  # --json: stdout is the result alone
            isic_csv=args.metadata,
            hold_out=args.hold_out or (),
        )
    if version is None:
        _emit(args, {"version": None, "chief": False}, "this worker finished; the chief registers the version")
        return 0
    metrics = version.record.metrics
    rows = [
        [
            s.key,
            s.scores.accuracy,
            s.scores.balanced_accuracy,
            s.scores.melanoma_sensitivity,
            s.scores.melanoma_specificity,
        ]
        for s in metrics.splits()
    ]
    text = (
        f"registered model version {version.number}"
        + (" (live)" if args.activate else "")
        + "\n\n"
        + _table(rows, ["split", "accuracy", "balanced acc.", "melanoma sens.", "melanoma spec."])
    )
    _emit(args, {"version": version.number, "metrics": _headline(metrics)}, text)
    return 0


def _headline(metrics: Metrics) -> dict:
    keys = (
        "images",
        "accuracy",
        "balanced_accuracy",
        "melanoma_sensitivity",
        "melanoma_specificity",
        "melanoma_roc_auc",
        "ece",
    )
    return {s.key: {k: getattr(s.scores, k) for k in keys} for s in metrics.splits()}


def cmd_evaluate(args) -> int:
    from skin_model import evaluate
    from skin_model.predict import Predictor
    from skin_model.robustness import evaluate_folder

    predictor = Predictor.load(args.model)
    result = evaluate_folder(predictor, _data(args.data), args.metadata)
    rows = [[name, m["precision"], m["recall"], m["f1"], m["support"]] for name, m in result["per_class"].items()]
    shift_headers = ["images", "bal. acc.", "mel. sens.", "mel. spec.", "mel. AUC", "refused"]
    shift_keys = ("images", "balanced_accuracy", "melanoma_sensitivity", "melanoma_specificity", "melanoma_roc_auc")
    tables = "".join(
        f"\n\n{title}\n\n"
        + _table(
            [[name, *(m[k] for k in shift_keys), m["refused"]] for name, m in result[key].items()],
            [label, *shift_headers],
        )
        for key, title, label in (
            ("per_source", "per acquisition source", "source"),
            ("stress", "the same images under each device condition", "condition"),
        )
    )
    head = (
        f"model {predictor.version.number} on {result['images']} images ({result['scope']}): "
        f"accuracy {result['accuracy']}, "
        f"balanced accuracy {result['balanced_accuracy']}, melanoma sensitivity "
        f"{result['melanoma_sensitivity']} / specificity {result['melanoma_specificity']} "
        f"at threshold {_thresholds(predictor.record.policy)}"
    )
    if (challenge := result.get("challenge_2017")) is not None:
        top = evaluate.CHALLENGE_2017_TOP
        head += (
            f"\nISIC 2017 task 3: melanoma ROC AUC {challenge['melanoma_roc_auc']}, seborrheic keratosis ROC AUC "
            f"{challenge['seborrheic_keratosis_roc_auc']}, mean {challenge['mean']} (the challenge's top entry on its "
            f"test set: {top['melanoma_roc_auc']} / {top['seborrheic_keratosis_roc_auc']} / {top['mean']})"
        )
    _emit(args, result, head + "\n\n" + _table(rows, ["class", "precision", "recall", "f1", "support"]) + tables)
    return 0


def cmd_auth(args) -> int:
    """The operator lifts the admin sign-in throttle (the global ceiling and every locked-out client)."""
    from skin_model import auth

    lifted = auth.reset()
    text = (
        f"sign-in throttle lifted: {lifted['failures_in_window']} failure(s) in the window and "
        f"{lifted['clients']} client record(s) forgotten"
    )
    _emit(args, lifted, text)
    return 0


def cmd_cases(args) -> int:
    from skin_model import cases

    if args.action == "add":
        return _add_case(args)
    if args.action == "remove":
        found = cases.remove(args.target or "")
        note = cases.removal_note(found)
        _emit(args, found.to_dict() | {"note_on_removal": note}, f"removed case {found.id} ({found.diagnosis}); {note}")
        return 0
    if args.action == "export":
        if not args.target:
            raise SkinModelError("cases export needs a folder: cases export DIR")
        done = cases.export(Path(args.target))
        data = {"exported": done.written, "folder": args.target, "skipped": list(done.skipped)}
        _emit(args, data, f"exported {done.written} case(s) to {args.target}")
        for why in done.skipped:
            print(f"skipped {printable(why)}", file=sys.stderr)
        return 1 if done.skipped else 0
    found = cases.all_cases()
    rows = [[c.id, c.diagnosis, c.confirmed_by, c.time, c.note] for c in found]
    text = _table(rows, ["id", "diagnosis", "confirmed by", "time", "note"]) if found else "no confirmed cases yet"
    _emit(args, [c.to_dict() for c in found], text)
    return 0


def _add_case(args) -> int:
    """Store one confirmed case with the live version's prediction; refused when the dataset already has it."""
    from skin_model import cases, images
    from skin_model.audit import audit
    from skin_model.predict import Predictor

    if not args.target or not args.diagnosis or not args.confirmed_by:
        raise SkinModelError("cases add needs FILE --diagnosis CLASS --confirmed-by histopathology|follow-up|consensus")
    pixels = images.decode(Path(args.target))
    full_size = images.pixel_hash(images.decode(Path(args.target), max_side=None))  # what the audit hashes
    roots = [root for value in args.data or [] for root in roots_of(value)] or data_dirs()
    known = cases.dataset_hashes(audit(roots)) if roots else None
    try:
        predictor = Predictor.load()
        result = predictor.predict(pixels, name="case")
        version, prediction = predictor.version.number, _case_prediction(result)
    except SkinModelError:
        version, prediction = None, None  # no usable live model: the case is still worth keeping
    case = cases.add(pixels, args.diagnosis, args.confirmed_by, args.note or "", prediction, version, known, full_size)
    _emit(args, case.to_dict(), f"added case {case.id}: {case.diagnosis} ({case.confirmed_by})")
    return 0


def _case_prediction(result) -> dict:
    keys = ("lesion_like", "top_class", "top_probability", "melanoma_probability", "melanoma_alert")
    return {k: getattr(result, k) for k in keys} | {"alert_threshold": result.alert_threshold}


def _at_most(limit: int):
    """argparse type: a whole number from 0 to ``limit`` (argparse words the error)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None
        if not 0 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be from 0 to at most {limit}, received {value}")
        return value

    return whole


def cmd_report(args) -> int:
    from skin_model import explain, images, report
    from skin_model.predict import Predictor

    inputs = [Path(p) for p in args.images]
    report.check_target(args.output, inputs, args.force)  # before the work, not after it
    predictor = Predictor.load(args.model)
    pages = []
    for path in args.images:
        try:
            pixels = images.decode(Path(path))
        except SkinModelError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        result = predictor.predict(pixels, name=str(path), similar=args.similar)
        cam = None
        if args.gradcam and result.lesion_like:
            heat = explain.gradcam(predictor.keras_model, pixels, predictor.class_index(result.top_class))
            cam = explain.overlay(pixels, heat)
        pages.append(report.Page(pixels, result, cam))
    data = report.render(pages, predictor.record, args.case_reference)
    report.save(args.output, data, inputs, args.force)
    print(f"wrote {args.output}: {len(pages)} page(s), model version {predictor.version.number}")
    return 0


def cmd_predict(args) -> int:
    from skin_model import similar
    from skin_model.headline import alert_line, headline, risk_line
    from skin_model.predict import Predictor

    predictor = Predictor.load(args.model)
    failed = 0
    for path in args.images:
        try:
            result = predictor.predict_file(Path(path), tta=args.tta, similar=args.similar)
        except SkinModelError as error:
            failed += 1
            print(f"error: {error}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(result.to_dict()))
        else:
            if not result.lesion_like:
                print(f"{path}: no diagnosis: not a dermoscopic lesion image")
                continue
            shown = headline(result)
            print(f"{printable(path)}: {shown.title}. {shown.detail if shown.kind != 'alert' else alert_line(result)}")
            print(f"  {risk_line(result)}")
            for warning in result.warnings:
                print(f"  warning: {warning}")
            if result.similar is not None:
                print(f"  {similar.summary(result.similar) or 'no similar training images: this version has no index'}")
                for n in result.similar:
                    name, source = printable(n.image), printable(n.source)
                    print(f"    {name}  {n.diagnosis}  distance {n.distance:.3f}  ({source})")
    return 1 if failed else 0


def cmd_models(args) -> int:
    from skin_model.registry import Registry

    registry = Registry()
    if args.action == "activate":
        if args.version is None:
            raise SkinModelError("models activate needs a version number, e.g. `models activate 2`")
        version = registry.activate(args.version)
        _emit(args, {"live": version.number}, f"model version {version.number} is now live")
        return 0
    live = registry.live_number()
    versions = registry.versions()
    for line in registry.problems():  # an unreadable or modified record: named, never a crash
        print(f"warning: {line}", file=sys.stderr)
    data = [
        {
            "version": v.number,
            "live": v.number == live,
            "created": v.created,
            "metrics": _headline(v.record.metrics),
        }
        for v in versions
    ]
    rows = []
    for v in versions:
        test = v.record.metrics.test
        rows.append(
            [
                v.number,
                "*" if v.number == live else "",
                v.created,
                test and test.balanced_accuracy,
                test and test.melanoma_sensitivity,
                _thresholds(v.record.policy),
            ]
        )
    _emit(args, data, _table(rows, ["version", "live", "created", "test bal. acc.", "test mel. sens.", "threshold"]))
    return 0


def cmd_export(args) -> int:
    from skin_model import export

    out = export.savedmodel(args.out, number=args.model)
    _emit(args, {"savedmodel": str(out)}, f"SavedModel written to {out} (signature {export.SIGNATURE!r})")
    return 0


# -- parser -----------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m skin_model", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")

    a = sub.add_parser("audit", parents=[common], help="find unreadable files, duplicates, label conflicts, leaks")
    a.add_argument("--data", action="append", help=DATA_HELP)
    a.add_argument("--show", type=int, default=5, help="examples to list per finding")
    a.add_argument("--metadata", help="ISIC metadata CSV (default: <data>/metadata.csv when present)")
    a.add_argument("--hold-out", action="append", help="a folder scored on, never trained on: report what repeats it")
    a.set_defaults(run=cmd_audit)

    b = sub.add_parser("balance", parents=[common], help="class counts before and after Augmentor balancing")
    b.add_argument("--data", action="append", help=DATA_HELP)
    b.add_argument("--strategy", choices=["add", "target", "none"], default="target")
    b.add_argument("--n", type=int, default=BalanceConfig.n)
    b.add_argument("--metadata", help="ISIC metadata CSV (default: <data>/metadata.csv when present)")
    b.set_defaults(run=cmd_balance)

    defaults = TrainConfig()
    t = sub.add_parser("train", parents=[common], help="train a model and register it")
    t.add_argument("--data", action="append", help=DATA_HELP)
    t.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="custom-cnn",
        help="custom-cnn: the small CNN from scratch; efficientnet-lite0: fine-tuned from ImageNet (the default "
        "model's recipe, `make train-default`)",
    )
    t.add_argument("--continue-from", type=int, help="start from this registered version's weights (same network)")
    t.add_argument("--epochs", type=int, help="default: the network's recipe (32 custom CNN, 8 Lite0)")
    t.add_argument("--image-size", type=int, help="default: 128")
    t.add_argument("--batch-size", type=int, default=defaults.batch_size)
    t.add_argument("--learning-rate", type=float, help="default: the network's recipe")
    t.add_argument("--seed", type=int, default=defaults.seed)
    t.add_argument("--balance", choices=["add", "target", "none"], default=BalanceConfig.strategy)
    t.add_argument("--n", type=int, default=BalanceConfig.n)
    t.add_argument("--max-per-class", type=int, default=None, help="subsample for a quick run")
    t.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="default",
        help="tf.distribute strategy: this device, all local GPUs, or a TF_CONFIG cluster",
    )
    t.add_argument("--width", type=int, default=defaults.width, help="network width (filters of the first layer)")
    t.add_argument("--metadata", help="ISIC metadata CSV (default: <data>/metadata.csv when present)")
    t.add_argument(
        "--hold-out", action="append", help="a folder to be scored on: its pictures and copies are never trained on"
    )
    t.add_argument(
        "--group-by",
        choices=["lesion", "source", "id-block"],
        default=defaults.group_by,
        help="what never spans two splits (lesion; or whole sources / upload blocks of ISIC ids)",
    )
    t.add_argument(
        "--labels",
        choices=["official", "folder"],
        default=defaults.label_policy,
        help="official: the ISIC label wins where the metadata gives one",
    )
    t.add_argument(
        "--weighting",
        choices=["class", "class-domain"],
        default=defaults.weighting,
        help="loss weights: per class, or per class x acquisition domain",
    )
    t.add_argument(
        "--colour-constancy",
        action=argparse.BooleanOptionalAction,
        default=defaults.colour_constancy,
        help="a Shades-of-Gray colour-constancy layer first in the model (off: it hurt the oldest ISIC block)",
    )
    t.add_argument(
        "--exposure-constancy",
        dest="normalise_exposure",
        action=argparse.BooleanOptionalAction,
        default=defaults.normalise_exposure,
        help="that layer also brings every image to one brightness",
    )
    t.add_argument(
        "--device-augment",
        choices=DEVICE_AUGMENT,
        default=defaults.device_augment,
        help="camera-like augmentation (colour cast, exposure, vignette, defocus; crops and gamma when strong)",
    )
    t.add_argument(
        "--look-swap",
        type=float,
        default=defaults.look_swap,
        metavar="SHARE",
        help="share of training images given another image's colour look (0: the recipe before it was the default)",
    )
    t.add_argument(
        "--views",
        type=int,
        choices=VIEWS,
        default=None,
        help="test-time views the version is calibrated and served with (8: flips and quarter turns)",
    )
    t.add_argument(
        "--no-cases", dest="cases", action="store_false", help="leave the clinic's confirmed cases out of training"
    )
    t.add_argument("--progress", type=Path, help="append JSON-lines progress to this file")
    t.add_argument("--activate", action="store_true", help="make the new version live")
    t.set_defaults(run=cmd_train)

    e = sub.add_parser("evaluate", parents=[common], help="metrics of a model on a folder of class sub-folders")
    e.add_argument("--data", action="append", help=DATA_HELP)
    e.add_argument("--model", type=int, help="version (default: live)")
    e.add_argument("--metadata", help="ISIC metadata CSV (default: <data>/metadata.csv when present)")
    e.set_defaults(run=cmd_evaluate)

    x = sub.add_parser("export", parents=[common], help="write a model version for TensorFlow Serving")
    x.add_argument("out", type=Path, help="new folder, e.g. serving/skin/1 (TF Serving's <model>/<version>)")
    x.add_argument("--format", choices=["savedmodel"], default="savedmodel")
    x.add_argument("--model", type=int, help="version (default: live)")
    x.set_defaults(run=cmd_export)

    r = sub.add_parser("predict", parents=[common], help="classify image files")
    r.add_argument("images", nargs="+")
    r.add_argument("--model", type=int, help="version (default: live)")
    r.add_argument(
        "--tta",
        action="store_true",
        default=None,  # unset: the views the version was calibrated on
        help="average over 8 flips and rotations (versions calibrated on 8 views always do)",
    )
    r.add_argument(
        "--similar",
        type=_at_most(MAX_K),
        default=0,
        metavar="K",
        help=f"add the K most similar training images with their diagnoses (0 to {MAX_K})",
    )
    r.set_defaults(run=cmd_predict)

    rp = sub.add_parser("report", parents=[common], help="a printable PDF report, one page per image")
    rp.add_argument("images", nargs="+")
    rp.add_argument("-o", "--output", type=Path, required=True, help="the PDF to write (a new file)")
    rp.add_argument("--force", action="store_true", help="replace an existing file (never an input or a link)")
    rp.add_argument("--model", type=int, help="version (default: live)")
    rp.add_argument(
        "--similar", type=_at_most(REPORT_K), default=6, metavar="K", help=f"similar training images (0 to {REPORT_K})"
    )
    rp.add_argument("--gradcam", action="store_true", help="add the Grad-CAM overlay beside each image")
    rp.add_argument("--case-reference", help="printed on every page, never stored (no patient identifiers)")
    rp.set_defaults(run=cmd_report)

    c = sub.add_parser("cases", parents=[common], help="confirmed cases: add, list, remove, export")
    c.add_argument("action", choices=["add", "list", "remove", "export"])
    c.add_argument("target", nargs="?", help="add: the image file; remove: the case id; export: a new folder")
    c.add_argument("--diagnosis", choices=CLASSES, metavar="CLASS", help="the confirmed diagnosis (one of the 9)")
    c.add_argument("--confirmed-by", choices=["histopathology", "follow-up", "consensus"])
    c.add_argument("--note", help="optional; never a patient name or identifier")
    c.add_argument("--data", action="append", help="dataset(s) to check for the same image (default: SKIN_DATA_DIR)")
    c.set_defaults(run=cmd_cases)

    a = sub.add_parser("auth", parents=[common], help="operator: lift the admin sign-in throttle now")
    a.add_argument("action", choices=["reset"])
    a.set_defaults(run=cmd_auth)

    m = sub.add_parser("models", parents=[common], help="list versions or make one live")
    m.add_argument("action", nargs="?", choices=["list", "activate"], default="list")
    m.add_argument("version", nargs="?", type=int)
    m.set_defaults(run=cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except SkinModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("SKIN_DEBUG"):
            raise
        print(f"error: unexpected {type(error).__name__}: {error} (set SKIN_DEBUG=1 for details)", file=sys.stderr)
        return 1
