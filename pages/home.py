"""Home: what the tool does and does not do, and the live model in brief."""

import streamlit as st

from pages.common import live_predictor, page_frame, pct

page_frame()

st.title("Skin lesion classifier")
st.markdown(
    "Upload a **dermoscopic** image of a skin lesion to see how likely each of nine ISIC diagnoses is, "
    "with a **melanoma alert** tuned to miss as few melanomas as possible.\n\n"
    "- **It is** decision support for dermatologists: a second look, calibrated probabilities, and warnings "
    "when an image is unlike what the model was trained on.\n"
    "- **It is not** a diagnosis, and not for photos taken without a dermatoscope. It never stores an "
    "uploaded image."
)

predictor = live_predictor()
if predictor is not None:
    meta = predictor.metadata
    split = "test" if "test" in meta.get("metrics", {}) else "validation"
    test = meta.get("metrics", {}).get("test") or meta.get("metrics", {}).get("val", {})
    st.subheader(f"Live model: version {predictor.version.number}")
    st.caption(
        f"Registered {predictor.version.created}. Figures on held-out {split} images the model never trained on."
    )
    cols = st.columns(4)
    cols[0].metric("Balanced accuracy", pct(test.get("balanced_accuracy")))
    cols[1].metric("Melanoma sensitivity", pct(test.get("melanoma_sensitivity")))
    cols[2].metric("Melanoma specificity", pct(test.get("melanoma_specificity")))
    cols[3].metric("Melanoma alert at P(melanoma) ≥", f"{meta.get('alert_threshold', 0):.3g}")

st.subheader("Pages")
st.page_link("pages/classify.py", label="Classify: upload images and read the probabilities", icon=":material/biotech:")
st.page_link("pages/dataset.py", label="Dataset: class balance, augmentation and audit", icon=":material/bar_chart:")
st.page_link("pages/retrain.py", label="Retrain: train a new model version", icon=":material/model_training:")
st.page_link("pages/models.py", label="Models: compare versions and choose the live one", icon=":material/inventory_2:")
