"""Figures and tables shared by the Retrain and Models pages (not a page)."""

import pandas as pd
import plotly.graph_objects as go

from skin_model import CLASSES
from skin_model.registry import Version

SHORT = ["AK", "BCC", "DF", "MEL", "NV", "PBK", "SK", "SCC", "VASC"]


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


def metrics_table(versions: list[Version]) -> pd.DataFrame:
    rows = {}
    for version in versions:
        metrics = version.metadata.get("metrics", {})
        split = "test" if "test" in metrics else "val"
        m = metrics.get(split, {})
        rows[f"version {version.number} ({split})"] = {
            "images": m.get("images"),
            "accuracy": m.get("accuracy"),
            "balanced accuracy": m.get("balanced_accuracy"),
            "melanoma sensitivity": m.get("melanoma_sensitivity"),
            "melanoma specificity": m.get("melanoma_specificity"),
            "melanoma ROC AUC": m.get("melanoma_roc_auc"),
            "calibration error (ECE)": m.get("ece"),
            "alert threshold": version.metadata.get("alert_threshold"),
            "alert threshold, unusual conditions": version.metadata.get(
                "alert_threshold_unusual", version.metadata.get("alert_threshold")
            ),
            **{f"recall: {c}": m.get("per_class", {}).get(c, {}).get("recall") for c in CLASSES},
        }
    return pd.DataFrame(rows)


def roc_figure(versions: list[Version]) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#aaa"}, name="chance"))
    for version in versions:
        metrics = version.metadata.get("metrics", {})
        split = "test" if "test" in metrics else "val"
        m = metrics.get(split, {})
        roc = m.get("melanoma_roc")
        if not roc:
            continue
        fig.add_trace(
            go.Scatter(
                x=roc["fpr"], y=roc["tpr"], mode="lines", name=f"v{version.number} (AUC {m.get('melanoma_roc_auc')})"
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[1 - m["melanoma_specificity"]],
                y=[m["melanoma_sensitivity"]],
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
    table = version.metadata.get("robustness", {}).get(key)
    if not table:
        return None
    rows = {
        name: {
            "images": m["images"],
            "balanced accuracy": m["balanced_accuracy"],
            "melanoma sensitivity": m["melanoma_sensitivity"],
            "melanoma specificity": m["melanoma_specificity"],
            "melanoma AUC": m["melanoma_roc_auc"],
            "refused as not a lesion": m["refused"],
        }
        for name, m in table.items()
    }
    return pd.DataFrame(rows).T
