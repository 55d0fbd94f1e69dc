"""Versions side by side: the metrics table, ROC and confusion figures, and stress tables the Retrain and Models
pages show (Streamlit-free; the pages lay them out)."""

import pandas as pd
import plotly.graph_objects as go

from skin_model import CLASSES
from skin_model.card import pct
from skin_model.predict import percent
from skin_model.record import Scores
from skin_model.registry import Version

SHORT = ["AK", "BCC", "DF", "MEL", "NV", "PBK", "SK", "SCC", "VASC"]


def compare_pair(numbers: list[int], live: int | None) -> tuple[int, int]:
    """The comparison opens on two different versions: the newest and the live one (or the one before it)."""
    newest = numbers[-1]
    if live in numbers and live != newest:
        return newest, live
    return newest, numbers[-2] if len(numbers) > 1 else newest


def confusion_figure(matrix: list[list[int]]) -> go.Figure:
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=SHORT,
            y=SHORT,
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            showscale=False,
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(
        height=340,
        margin={"t": 10, "b": 10, "l": 10, "r": 10},
        xaxis_title="predicted",
        yaxis={"title": "true", "autorange": "reversed"},
    )
    return fig


def rounded(value: object, digits: int = 2) -> str:
    """A figure as a table shows it: shares as percentages, other numbers to ``digits`` decimals, "n/a" unknown."""
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def metrics_table(versions: list[Version]) -> pd.DataFrame:
    """Versions side by side (one column each, so it fits any width); every figure rounded, shares in %."""
    rows = {}
    for version in versions:
        held = version.record.metrics.headline
        m, policy = held.scores if held else Scores(), version.record.policy
        rows[f"version {version.number} ({held.key if held else 'val'})"] = {
            "images": rounded(m.images),
            "accuracy": pct(m.accuracy),
            "balanced accuracy": pct(m.balanced_accuracy),
            "melanoma sensitivity": pct(m.melanoma_sensitivity),
            "melanoma specificity": pct(m.melanoma_specificity),
            "melanoma ROC AUC": rounded(m.melanoma_roc_auc),
            "calibration error (ECE)": rounded(m.ece),
            "alert threshold": percent(policy.threshold),
            "alert threshold, unusual conditions": percent(policy.strict),
            **{f"recall: {c}": pct(m.recall(c)) for c in CLASSES},
        }
    return pd.DataFrame(rows)


def roc_figure(versions: list[Version]) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#aaa"}, name="chance"))
    for version in versions:
        held = version.record.metrics.headline
        m = held.scores if held else Scores()
        roc = m.melanoma_roc
        if not roc:
            continue
        fig.add_trace(
            go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines", name=f"v{version.number} (AUC {m.melanoma_roc_auc})")
        )
        fig.add_trace(
            go.Scatter(
                x=[1 - m.melanoma_specificity],
                y=[m.melanoma_sensitivity],
                mode="markers",
                marker={"size": 12, "symbol": "x"},
                name=f"v{version.number} alert threshold",
            )
        )
    fig.update_layout(
        height=380, margin={"t": 10, "b": 10}, xaxis_title="1 - specificity", yaxis_title="sensitivity (melanoma)"
    )
    return fig


def shift_table(version: Version, key: str) -> pd.DataFrame | None:
    """A version's per-source (``per_source``) or stress (``stress``) table of the test split, or None."""
    robustness = version.record.robustness
    table = getattr(robustness, key) if robustness else None
    if not table:
        return None
    rows = {
        name: {
            "images": rounded(m.images),
            "balanced accuracy": pct(m.balanced_accuracy),
            "melanoma sensitivity": pct(m.melanoma_sensitivity),
            "melanoma specificity": pct(m.melanoma_specificity),
            "melanoma AUC": rounded(m.melanoma_roc_auc),
            "refused": pct(m.refused),
        }
        for name, m in table.items()
    }
    return pd.DataFrame(rows).T
