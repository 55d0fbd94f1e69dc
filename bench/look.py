"""Whose colours carry the melanoma signal: images re-toned to another source's colour look, content kept."""

from __future__ import annotations

import numpy as np

from bench.external import OLDEST
from skin_model import evaluate
from skin_model.alert import AlertRule
from skin_model.config import TrainConfig
from skin_model.images import decode
from skin_model.imaging import stats_table
from skin_model.network import resize
from skin_model.splits import Splits, domain
from skin_model.train import logits_of


def look_stats(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An image's colour look: mean and spread of each CIELAB channel (Reinhard et al. 2001)."""
    from skimage.color import rgb2lab

    lab = rgb2lab(pixels / 255.0).reshape(-1, 3)
    return lab.mean(axis=0), lab.std(axis=0) + 1e-6


def restyle(pixels: np.ndarray, look: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The image with another look's CIELAB means and spreads: its content kept, its colours re-toned."""
    from skimage.color import lab2rgb, rgb2lab

    mean, spread = look_stats(pixels)
    lab = (rgb2lab(pixels / 255.0) - mean) / spread * look[1] + look[0]
    return np.clip(lab2rgb(lab) * 255.0, 0, 255).astype(np.uint8)


def old_nevi_look(train: list) -> tuple[np.ndarray, np.ndarray] | None:
    """The oldest block's look, from its nevi alone (no melanoma's colours in it); None without any to lend."""
    old_nevi = [r for r in train if domain(r) == OLDEST and r.label == "nevus"]
    return average_look(old_nevi[:200]) if old_nevi else None


def average_look(records: list) -> tuple[np.ndarray, np.ndarray]:
    """A source's look: its images' CIELAB means and spreads, averaged."""
    looks = [look_stats(decode(r.path)) for r in records]
    return np.mean([m for m, _ in looks], axis=0), np.mean([s for _, s in looks], axis=0)


def probabilities(model, images: list[np.ndarray], config: TrainConfig, temperature: float) -> np.ndarray:
    """Calibrated class probabilities of in-memory images of any size, on the views ``config`` serves with."""
    x = np.stack([resize(i[None], config.image_size)[0] for i in images])
    return evaluate.softmax(logits_of(model, x, batch=64, views=config.views), temperature)


def look_probe(model, config: TrainConfig, fitted: Splits, temperature: float, rule: AlertRule) -> dict:
    """Whose colour look carries the melanoma signal: the test split's images re-toned to each source's look.

    Every melanoma here is from the ISIC archive and every HAM10000 image is
    something else, so a model can answer "archive colours, so melanoma". If
    HAM10000 lesions given the oldest block's look get melanoma alerts, and
    old-block melanomas given HAM10000's look lose them, the colours of a
    source, not the lesion, carry the answer. Looks: the average of the
    training split's images of each (up to 200); the oldest block's from its
    nevi alone, so no melanoma's colours are in it. Re-toning HAM10000
    images to their own source's look is the control: what re-toning alone does.
    """
    train, test = fitted.records["train"], fitted.records["test"]
    old_look = old_nevi_look(train)
    ham = [r for r in train if r.origin.startswith("ham10000")]
    if old_look is None or not ham:
        return {}  # e.g. a source held out: no look to lend
    looks = {
        "the oldest block's look": old_look,
        "HAM10000's look": average_look(ham[:200]),
    }
    groups = {
        "HAM10000 lesions (none a melanoma)": [r for r in test if r.origin.startswith("ham10000")],
        "oldest-block melanomas": [r for r in test if domain(r) == OLDEST and r.label == "melanoma"],
        "oldest-block nevi": [r for r in test if domain(r) == OLDEST and r.label == "nevus"],
    }

    def p_melanoma(images: list[np.ndarray]) -> np.ndarray:
        return probabilities(model, images, config, temperature)[:, evaluate.MEL]

    out: dict = {}
    for group, records in groups.items():
        if not records:
            continue
        taken = [decode(r.path) for r in records]
        versions = {"as taken": taken} | {name: [restyle(i, look) for i in taken] for name, look in looks.items()}
        out[group] = {"images": len(records)}
        for name, images in versions.items():
            p = p_melanoma(images)
            out[group][name] = {
                "median_p_melanoma": round(float(np.median(p)), 3),
                "alerted": round(float((p >= rule.thresholds(stats_table(images))).mean()), 3),
            }
    return out
