"""The model card: what a version was trained on, how well it does, its limits."""

from __future__ import annotations

from skin_model import CLASSES


def pct(value) -> str:
    """A share as a percentage; "n/a" when unknown (None or NaN)."""
    return "n/a" if value is None or value != value else f"{value:.1%}"


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def render(metadata: dict) -> str:
    """Markdown for the app's Models page and ``models/default/MODEL_CARD.md``."""
    config = metadata.get("config", {})
    data = metadata.get("data", {})
    training = metadata.get("training", {})
    metrics = metadata.get("metrics", {})
    audit = data.get("audit", {})
    lines = [
        f"# Model card: skin lesion CNN, version {metadata.get('version', '?')}",
        "",
        "Decision support for dermatologists, not a diagnosis. Trained from scratch (no pretrained weights) "
        "on dermoscopic images of 9 ISIC diagnoses.",
        "",
        "## Data",
        f"- Source: {data.get('root', 'n/a')} (fingerprint `{data.get('fingerprints', {}).get('all', 'n/a')}`).",
        f"- Audit: {audit.get('images', '?')} files, {audit.get('usable', '?')} usable; "
        f"{audit.get('conflicts', 0)} images filed under two classes were dropped, "
        f"{audit.get('duplicates', 0)} exact duplicates kept once, {audit.get('unreadable', 0)} unreadable.",
        f"- Splits (no content in two splits): {data.get('split_sizes', {})}.",
        f"- Balancing (training split only, Augmentor): strategy `{config.get('balance', {}).get('strategy')}`, "
        f"n={config.get('balance', {}).get('n')}.",
        "",
        "## Training",
        f"- Input {config.get('image_size')} px (resized inside the model), {_count(training.get('parameters'))} "
        f"parameters, {training.get('epochs_run', '?')} epochs ({training.get('seconds_per_epoch', '?')} s/epoch, "
        f"{training.get('seconds', 0) / 60:.1f} min in all), best epoch {training.get('best_epoch', '?')} "
        "by validation balanced accuracy.",
        f"- Temperature {metadata.get('temperature')}; melanoma alert at P(melanoma) >= "
        f"{metadata.get('alert_threshold')} (chosen on validation so that melanoma sensitivity is at least "
        f"{config.get('alert_sensitivity')} with 95% confidence).",
        "",
        "## Performance",
        "| split | images | accuracy | balanced accuracy | melanoma sensitivity | melanoma specificity | "
        "melanoma AUC | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split, m in metrics.items():
        lines.append(
            f"| {split} | {m['images']} | {pct(m['accuracy'])} | {pct(m['balanced_accuracy'])} | "
            f"{pct(m['melanoma_sensitivity'])} | {pct(m['melanoma_specificity'])} | "
            f"{m.get('melanoma_roc_auc')} | {m.get('ece')} |"
        )
    test = metrics.get("test") or metrics.get("val") or {}
    if test.get("per_class"):
        lines += [
            "",
            f"Per class ({'test' if 'test' in metrics else 'validation'} split):",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        for name in CLASSES:
            c = test["per_class"][name]
            lines.append(f"| {name} | {pct(c['precision'])} | {pct(c['recall'])} | {pct(c['f1'])} | {c['support']} |")
    lines += [
        "",
        "## Limits",
        "- Small training set (about 2,000 images at 180x180): expect lower accuracy on other cameras and clinics.",
        "- Seborrheic keratosis: nearly all of its images were also filed as melanoma, so they were dropped; "
        "the model has almost no seborrheic keratosis examples and should not be trusted for it.",
        "- Actinic keratosis lost about half of its images to the same kind of conflict (with nevus).",
        "- Not validated on non-dermoscopic photos; the app warns when an image looks unlike the training data.",
        f"- Built with TensorFlow {metadata.get('versions', {}).get('tensorflow')} / "
        f"Keras {metadata.get('versions', {}).get('keras')}.",
    ]
    return "\n".join(lines) + "\n"
