"""Versions side by side (issue 30, item 7): the comparison opens on two versions, every figure rounded."""

from __future__ import annotations

from skin_model.comparison import compare_pair, metrics_table
from skin_model.record import VersionRecord
from skin_model.registry import Version


def test_the_comparison_opens_on_two_different_versions():
    assert compare_pair([1, 2, 3], live=3) == (3, 2)
    assert compare_pair([1, 2, 3], live=1) == (3, 1)
    assert compare_pair([1], live=1) == (1, 1)  # one version: nothing else to compare with


def test_the_comparison_table_rounds_every_figure_and_gives_shares_as_percentages(tmp_path):
    metrics = {"test": {"images": 307, "accuracy": 0.60583, "balanced_accuracy": 0.65742, "melanoma_roc_auc": 0.88384}}
    record = VersionRecord.from_dict({"metrics": metrics, "alert_threshold": 0.1031, "created": "2026-12-01"})
    version = Version(2, tmp_path, record)

    column = metrics_table([version])["version 2 (test)"]

    assert column["images"] == "307" and column["accuracy"] == "60.6%" and column["balanced accuracy"] == "65.7%"
    assert column["melanoma ROC AUC"] == "0.88" and column["alert threshold"] == "10.3 %"
    assert column["melanoma sensitivity"] == "n/a"
