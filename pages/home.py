"""Home: what the tool does and does not do, and the live model in brief."""

import streamlit as st

from pages.common import literal, live_predictor, page_frame, pct
from skin_model.card import gate_summary

page_frame()

st.title("Skin lesion classifier")
st.markdown(
    "Upload a **dermoscopic** image of a skin lesion to see how likely each of nine ISIC diagnoses is, "
    "with a **melanoma alert** tuned to miss as few melanomas as possible.\n\n"
    "- **It is** decision support for dermatologists: a second look, calibrated probabilities, and warnings "
    "when an image is unlike what the model was trained on.\n"
    "- **It is not** a diagnosis, and not for photos taken without a dermatoscope. It stores an "
    "uploaded image only when a user asks (saved for review, or added as a confirmed case by an admin)."
)

predictor = live_predictor()
if predictor is not None:
    meta = predictor.metadata
    split = "test" if "test" in meta.get("metrics", {}) else "validation"
    test = meta.get("metrics", {}).get("test") or meta.get("metrics", {}).get("val", {})
    stress = meta.get("robustness", {}).get("stress", {})
    sources = {k: m for k, m in meta.get("robustness", {}).get("per_source", {}).items() if m["images"] >= 20}
    st.subheader(f"Live model: version {predictor.version.number}")
    st.caption(
        f"Registered {predictor.version.created}. Held-out {split} images that share no lesion with the training "
        "images, but come from the same five sources: expect less on another clinic's camera, whose colours alone "
        "can move the melanoma alert either way."
    )
    cols = st.columns(4)
    cols[0].metric("Balanced accuracy", pct(test.get("balanced_accuracy")))
    cols[1].metric("Melanoma sensitivity", pct(test.get("melanoma_sensitivity")))
    cols[2].metric("Melanoma specificity", pct(test.get("melanoma_specificity")))
    strict = predictor.info.strict_threshold
    cols[3].metric(
        "Melanoma alert at P(melanoma) ≥",
        f"{predictor.threshold:.3g}",
        help=f"down to {strict:.3g} for an image whose imaging conditions are unusual (the result says so)"
        if strict < predictor.threshold
        else None,
    )
    if strict < predictor.threshold:
        st.caption(
            f"The alert fires at P(melanoma) ≥ {predictor.threshold:.3g}, or lower, down to {strict:.3g}, when an "
            "image's imaging conditions are unusual (a colour cast, exposure, washed-out colours or dark corners "
            "beyond most training images; each has its own threshold, and melanomas read lower in cooler light). "
            "Sensitivity and specificity above are with each image held to its own threshold."
        )
    shifted = [m for name, m in stress.items() if name != "none"]
    if shifted:
        worst = min(shifted, key=lambda m: m["melanoma_sensitivity"])
        worst_name = next(name for name, m in stress.items() if m is worst)
        accuracies = [m["balanced_accuracy"] for m in shifted]
        st.caption(
            f"The same {split} images under {len(shifted)} simulated camera conditions: balanced accuracy "
            f"{pct(min(accuracies))} to {pct(max(accuracies))}; "
            f"melanoma sensitivity at least {pct(worst['melanoma_sensitivity'])} ({worst_name}). "
            "Per source and per condition: Models page."
        )
    if sources:
        low = min(sources, key=lambda k: sources[k]["balanced_accuracy"])
        high = max(sources, key=lambda k: sources[k]["balanced_accuracy"])
        st.caption(
            f"By acquisition source (the same {split} images, sources with 20 or more): balanced accuracy "
            f"{pct(sources[low]['balanced_accuracy'])} ({literal(low)}) to "
            f"{pct(sources[high]['balanced_accuracy'])} ({literal(high)})."
        )
    if gate_line := gate_summary(meta):
        st.caption(gate_line)

st.subheader("Pages")
st.page_link("pages/classify.py", label="Classify: upload images and read the probabilities", icon=":material/biotech:")
st.page_link("pages/dataset.py", label="Dataset: class balance, augmentation and audit", icon=":material/bar_chart:")
st.page_link("pages/retrain.py", label="Retrain: train a new model version", icon=":material/model_training:")
st.page_link("pages/models.py", label="Models: compare versions and choose the live one", icon=":material/inventory_2:")
