"""The external-like estimate drawn from cross-validated scores (bench.external): what it counts, and from where."""

from __future__ import annotations

import numpy as np
import pytest

from bench.external import EXTERNAL_MIX, OLDEST, external_draws, load_rows, save_rows


def rows_for(label: str, n: int, p_melanoma: float, alert: bool, predicted: str | None = None, where=OLDEST):
    return [
        {
            "image": f"{label}-{where}-{i}",
            "label": label,
            "domain": where,
            "fold": 1 + i % 5,
            "p_melanoma": p_melanoma,
            "predicted": predicted or label,
            "alert": alert,
        }
        for i in range(n)
    ]


def perfect() -> list[dict]:
    rows = rows_for("melanoma", 40, 0.9, True)
    for label in EXTERNAL_MIX:
        if label not in ("melanoma", "seborrheic keratosis"):
            rows += rows_for(label, 40, 0.01, False)
    return rows


def test_a_model_right_on_every_image_meets_every_target_but_misses_seborrheic_keratosis():
    out = external_draws(perfect(), draws=50)
    assert out["meets_all"] == 1.0
    assert out["melanoma_roc_auc"]["median"] == 1.0
    assert out["melanoma_sensitivity"]["median"] == 1.0 and out["melanoma_specificity"]["median"] == 1.0
    # nine classes, one of which the training data does not have: 8 of 9 recalls
    assert out["balanced_accuracy"]["median"] == pytest.approx(8 / 9, abs=1e-3)


def test_melanomas_and_nevi_come_from_the_oldest_block_alone():
    rows = perfect()
    # later-era melanomas that the model misses, and later-era nevi it alerts on: neither may enter a draw
    rows += rows_for("melanoma", 200, 0.0, False, "nevus", where="isic_archive/isic-10k")
    rows += rows_for("nevus", 200, 0.99, True, "melanoma", where="isic_archive/isic-10k")
    assert external_draws(rows, draws=50)["meets_all"] == 1.0


def test_alerts_on_old_nevi_cost_specificity_in_proportion_to_their_share():
    rows = [r | {"alert": True, "p_melanoma": 0.95} if r["label"] == "nevus" else r for r in perfect()]
    out = external_draws(rows, draws=50)
    # 16 of the 102 images that are not melanomas are nevi
    assert out["melanoma_specificity"]["median"] == pytest.approx(1 - 16 / 102, abs=1e-3)
    assert out["melanoma_specificity"]["meets_target"] == 1.0 and out["melanoma_roc_auc"]["median"] < 1.0


def test_draws_vary_when_scores_do_and_the_share_meeting_a_target_follows():
    rng = np.random.default_rng(0)
    rows = [r | {"alert": bool(rng.random() < 0.75)} if r["label"] == "melanoma" else r for r in perfect()]
    out = external_draws(rows, draws=400)
    low, high = out["melanoma_sensitivity"]["central_90"]
    assert low < 0.75 < high
    assert 0.2 < out["melanoma_sensitivity"]["meets_target"] < 0.9


def test_too_few_old_melanomas_say_so_instead_of_drawing():
    rows = [r for r in perfect() if r["label"] != "melanoma"] + rows_for("melanoma", 10, 0.9, True)
    assert external_draws(rows, draws=10) == {"draws": 0, "too_few_images": {"melanoma": 10}}


def test_scores_saved_as_csv_read_back_the_same(tmp_path, monkeypatch):
    import bench.external

    monkeypatch.setattr(bench.external, "FOLD_SCORES", tmp_path)
    rows = perfect()[::10]  # melanomas alerted and other classes not: both alert values go through the file
    path = save_rows("a recipe: with x, y (z)", rows)
    assert path.parent == tmp_path and path.name == "a-recipe-with-x-y-z.csv"
    assert {r["alert"] for r in rows} == {True, False}
    assert load_rows(path) == rows


def test_a_stand_in_never_counts_as_finding_the_class_it_stands_in_for():
    # a model that calls every benign keratosis a seborrheic keratosis still finds no seborrheic keratosis
    rows = [
        r | {"predicted": "seborrheic keratosis"} if r["label"] == "pigmented benign keratosis" else r
        for r in perfect()
    ]
    assert external_draws(rows, draws=20)["balanced_accuracy"]["median"] == pytest.approx(7 / 9, abs=1e-3)
    # with seborrheic keratoses of its own, found, the class counts
    rows = perfect() + rows_for("seborrheic keratosis", 5, 0.01, False)
    assert external_draws(rows, draws=20)["balanced_accuracy"]["median"] == pytest.approx(1.0, abs=1e-3)


def test_a_small_split_is_drawn_with_replacement_when_asked():
    rows = [r for r in perfect() if r["label"] != "dermatofibroma"] + rows_for("dermatofibroma", 5, 0.01, False)
    assert external_draws(rows, draws=10)["too_few_images"] == {"dermatofibroma": 5}
    assert external_draws(rows, draws=10, bootstrap=True)["meets_all"] == 1.0


def in_old_look(rows: list[dict], p_melanoma: float, alert: bool, predicted: str = "melanoma") -> list[dict]:
    """The rows as a model scores their images re-toned to the oldest block's look."""
    return [
        r | {"p_melanoma_old_look": p_melanoma, "predicted_old_look": predicted, "alert_old_look": alert} for r in rows
    ]


def test_retoned_draws_score_only_the_other_classes_in_the_old_look():
    # a model that alerts on every image in the archive's colours: melanomas and nevi keep their own scores (they
    # are in that look already), every other class becomes a false alarm
    rows = in_old_look(perfect(), 0.99, True)
    as_taken, retoned = external_draws(rows, draws=20), external_draws(rows, draws=20, others_retoned=True)
    assert as_taken["meets_all"] == 1.0
    assert retoned["melanoma_sensitivity"]["median"] == 1.0
    # only the 16 nevi of the 102 images that are not melanomas stay unalerted
    assert retoned["melanoma_specificity"]["median"] == pytest.approx(16 / 102, abs=1e-3)
    # and only melanoma and nevus are still named: 2 of 9 recalls
    assert retoned["balanced_accuracy"]["median"] == pytest.approx(2 / 9, abs=1e-3)
    assert retoned["meets_all"] == 0.0


def test_a_model_that_ignores_the_look_scores_the_same_retoned():
    rows = [
        r | {"p_melanoma_old_look": r["p_melanoma"], "predicted_old_look": r["predicted"], "alert_old_look": r["alert"]}
        for r in perfect()
    ]
    assert external_draws(rows, draws=30, others_retoned=True) == external_draws(rows, draws=30)


def test_scores_without_the_old_look_say_so():
    assert external_draws(perfect(), draws=5, others_retoned=True) == {"draws": 0, "not_scored_in_the_old_look": True}


def test_old_look_scores_survive_the_csv(tmp_path, monkeypatch):
    import bench.external

    monkeypatch.setattr(bench.external, "FOLD_SCORES", tmp_path)
    rows = in_old_look(perfect()[::10], 0.25, False, "nevus")
    rows[0] |= {"p_melanoma_old_look": 0.75, "alert_old_look": True}
    assert load_rows(save_rows("retoned", rows)) == rows
