"""Dataset: class balance before and after Augmentor balancing, augmentation preview, audit."""

import os
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages.common import admin_gate, audit_of, literal, page_frame
from skin_model import CLASSES, cases
from skin_model.balance import sample
from skin_model.config import BalanceConfig, TrainConfig, roots_of
from skin_model.dataset import load_pixels, user_folder
from skin_model.errors import SkinModelError
from skin_model.splits import balance_preview, domain, training_split
from skin_model.spreadsheet import safe_frame

page_frame()


st.title("Dataset")
default = "\n".join(str(root) for root in roots_of(os.environ.get("SKIN_DATA_DIR", "")))
roots_text = st.text_area(
    "Dataset folders, one per line",
    value=default,
    height=80,
    help="ISIC layout: <root>/Train/<class>/ or <root>/<class>/. Several folders are learnt from as one.",
)
if not roots_text.strip():
    st.info("Enter the folder(s) that hold the ISIC images (or set SKIN_DATA_DIR before starting the app).")
    st.stop()
try:
    roots = [user_folder(line) for line in roots_text.splitlines() if line.strip()]
    report = audit_of(roots)
except SkinModelError as error:
    st.error(literal(error))
    st.stop()
except OSError as error:  # e.g. a 5,000-character name inside SKIN_DATA_ROOT (ENAMETOOLONG)
    st.error(literal(f"{error.filename or 'a dataset folder'}: not a usable folder ({error.strerror or error})"))
    st.stop()

summary = report.summary()
st.dataframe(
    safe_frame(
        pd.DataFrame(
            [
                {
                    "dataset folder": root,
                    "images": found["images"],
                    "usable": found["usable"],
                    "metadata": Path(found["metadata"]).name if found["metadata"] else "none",
                }
                for root, found in summary["roots"].items()
            ]
            + (
                [{"dataset folder": "all together", "images": summary["images"], "usable": summary["usable"]}]
                if len(summary["roots"]) > 1
                else []
            )
        )
    ),
    hide_index=True,
    width="stretch",
)
st.caption(
    f"Usable: one copy of each picture after the audit; labels: {summary['label_policy']}."
    + ("" if summary["metadata"] else " Without metadata.csv each image counts as its own lesion.")
)

st.subheader("Class balance")
c1, c2, c3 = st.columns(3)
strategy = c1.selectbox(
    "Strategy",
    ["target", "add", "none"],
    format_func={"target": "bring every class to N", "add": "add N per class (original)", "none": "no balancing"}.get,
)
n = c2.number_input("N", min_value=0, max_value=5000, value=BalanceConfig.n, step=50)
with c3:
    rotate = st.slider("Rotation (±degrees)", 0, 25, 10)
    flip = st.checkbox("Flips", value=True)
    zoom = st.checkbox("Zoom", value=True)
balance_config = BalanceConfig(strategy=strategy, n=int(n), rotate=float(rotate), flip=flip, zoom=zoom)
before, after = balance_preview(report, TrainConfig(balance=balance_config))
try:
    confirmed = cases.all_cases()
except SkinModelError as error:
    st.error(literal(error))
    confirmed = []
case_counts = [sum(c.diagnosis == name for c in confirmed) for name in CLASSES]


def bars_of(name: str, counts: list[int], colour: str, group: str, base: list[int] | None = None) -> go.Bar:
    return go.Bar(name=name, x=list(CLASSES), y=counts, base=base, marker_color=colour, offsetgroup=group)


dataset_counts = [before[c] for c in CLASSES]
bars = [bars_of("before balancing", dataset_counts, "#7f8c8d", "before")]
if confirmed:  # stacked on the dataset's own counts
    bars.append(bars_of("+ confirmed cases (all splits)", case_counts, "#d68910", "before", base=dataset_counts))
bars.append(bars_of("after balancing", [after[c] for c in CLASSES], "#0b6e8a", "after"))
fig = go.Figure(bars)
fig.update_layout(
    barmode="group", height=380, margin={"t": 10, "b": 10}, yaxis_title="images", legend={"orientation": "h", "y": 1.1}
)
st.plotly_chart(fig, width="stretch", key="balance-chart")
st.caption("Counts of the training split (validation and test images are never augmented or balanced).")
st.dataframe(
    safe_frame(
        pd.DataFrame({"class": CLASSES, "before": [before[c] for c in CLASSES], "after": [after[c] for c in CLASSES]})
    ),
    hide_index=True,
    width="stretch",
)

st.subheader(f"Confirmed cases: {len(confirmed)}")
if not confirmed:
    st.caption(
        "None yet. A signed-in admin adds one from the Classify page once a lesion is confirmed "
        "(histopathology, follow-up or consensus); they join retraining as the source `clinic`."
    )
else:
    st.dataframe(
        safe_frame(  # notes are typed by people: the toolbar's "Download as CSV" must not export a formula
            pd.DataFrame(
                {
                    "image": [cases.thumbnail_uri(c) for c in confirmed],
                    "id": [c.id for c in confirmed],
                    "diagnosis": [c.diagnosis for c in confirmed],
                    "confirmed by": [c.confirmed_by for c in confirmed],
                    "added": [c.time[:10] for c in confirmed],
                    "model said": [(c.prediction or {}).get("top_class") for c in confirmed],
                    "note": [c.note for c in confirmed],
                }
            )
        ),
        column_config={"image": st.column_config.ImageColumn("image", width="small")},
        hide_index=True,
        width="stretch",
    )
    with st.expander("Remove a case"):
        if admin_gate("Removing a confirmed case"):
            chosen = st.selectbox("Case", [c.id for c in confirmed])
            if st.button("Remove this case", type="secondary"):
                try:
                    gone = cases.remove(chosen)
                    st.success(f"Removed case {gone.id} ({gone.diagnosis}); {cases.removal_note(gone)}.")
                    st.rerun()
                except SkinModelError as error:
                    st.error(literal(error))

st.subheader("What the augmentation does")
_, parts = training_split(report, TrainConfig())
label = st.selectbox("Class", [c for c in CLASSES if before[c]], index=0)
originals = [r for r in parts["train"] if r.label == label][:4]
if originals:
    pixels = load_pixels(originals)
    st.caption("Originals")
    st.image(list(pixels), width=140)
    st.caption("Augmented samples generated from them")
    st.image(list(sample(pixels, 8, balance_config, seed=1)), width=140)

st.subheader("Audit")
cols = st.columns(4)
cols[0].metric("Unreadable files", len(summary["unreadable"]))
cols[1].metric("Exact duplicates", len(summary["duplicates"]))
cols[2].metric("Conflicting labels", len(summary["conflicts"]))
cols[3].metric("Train/Test leaks", len(summary["leaks"]))
cols = st.columns(4)
cols[0].metric("Corrected by official label", len(summary["official_label_disagreements"]))
cols[1].metric("One ISIC id, other pixels", len(summary["same_id"]))
cols[2].metric("Near-copies", len(summary["near_copies"]))
for item in summary["unreadable"]:
    st.error(literal(f"{item['file']}: {item['reason']}"))
corrections = report.disagreements()
if corrections:
    with st.expander(
        f"Folder labels the official ISIC diagnosis contradicts: {len(corrections)} (the official label is used)"
    ):
        st.caption(
            "Folder label -> official ISIC 2019 label. BKL (benign keratosis) agrees with both keratosis folders."
        )
        for start in range(0, min(len(corrections), 24), 6):
            chunk = corrections[start : start + 6]
            st.image(
                [str(r.path) for r, _ in chunk],
                width=110,
                caption=[literal(f"{r.path.name}: {r.label} -> {code}") for r, code in chunk],
            )
        if len(corrections) > 24:
            st.caption(f"... and {len(corrections) - 24} more; `python -m skin_model audit --json` lists all.")
for key, title, note in (
    ("conflicts", "Same image filed under different classes", "dropped from training"),
    ("duplicates", "Exact duplicates within a class", "kept once"),
    ("leaks", "Images in both Train and Test", "kept in Test only"),
    ("same_id", "One ISIC id with other pixels (another size or compression)", "kept once"),
    ("near_copies", "Near-copies: one picture under two ids (another size, compression or colour)", "kept once"),
):
    groups = getattr(report, key)
    if key == "near_copies":
        groups = [[a, b] for a, b, _ in groups]
    if not groups:
        continue
    with st.expander(f"{title}: {len(groups)} ({note})"):
        for group in groups[:12]:
            st.image(
                [str(r.path) for r in group],
                width=110,
                caption=[literal(report.shown(r.path)) for r in group],
            )
        if len(groups) > 12:
            st.caption(f"... and {len(groups) - 12} more; `python -m skin_model audit --json` lists all.")

st.subheader("Where the images come from")
records, _ = training_split(report, TrainConfig())
by_source = pd.crosstab(
    pd.Series([domain(r) for r in records], name="acquisition source (ISIC archive: by upload block of ids)"),
    pd.Series([r.label for r in records], name="class"),
)
st.dataframe(safe_frame(by_source), width="stretch")
st.caption(
    "When one source holds nearly all of a class (the oldest ISIC uploads hold nearly all nevi), the source itself "
    "predicts the label; training weights every class evenly within each source so the model cannot lean on it."
)

st.subheader("Examples per class")
tabs = st.tabs([f"{c} ({before[c]})" for c in CLASSES])
for tab, name in zip(tabs, CLASSES, strict=True):
    with tab:
        examples = [r for r in parts["train"] if r.label == name][:8]
        if examples:
            st.image([str(r.path) for r in examples], width=120)
        else:
            st.caption("No usable training images for this class.")
