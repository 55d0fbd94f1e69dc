"""Home: what the tool is for and not for, and the live model's figures, one line each."""

import streamlit as st

from pages.common import live_predictor, page_frame
from skin_model.card import gate_summary, live_summary

page_frame()

st.title("Skin lesion classifier")
st.markdown(
    "Upload a **dermoscopic** image of a skin lesion to see how likely each of nine ISIC diagnoses is, "
    "with a **melanoma alert** tuned to miss as few melanomas as possible.\n\n"
    "- **It is** decision support for dermatologists: a second look, calibrated probabilities, and warnings "
    "when an image is unlike what the model was trained on.\n"
    "- **It is not** a diagnosis, and not for photos taken without a dermatoscope. It stores an "
    "uploaded image only when a user asks."
)

predictor = live_predictor()
if predictor is not None:
    st.subheader(f"Live model: version {predictor.version.number}")
    for line in live_summary(predictor.record):
        st.markdown(f"- {line}")
    if gate_line := gate_summary(predictor.record):
        st.caption(gate_line)
    st.caption("The model card on the Models page has every figure: per class, per source, under camera conditions.")

st.subheader("Pages")
st.page_link("pages/classify.py", label="Classify: upload images and read the probabilities", icon=":material/biotech:")
st.page_link("pages/dataset.py", label="Dataset: class balance, augmentation and audit", icon=":material/bar_chart:")
st.page_link("pages/retrain.py", label="Retrain: train a new model version", icon=":material/model_training:")
st.page_link("pages/models.py", label="Models: compare versions and choose the live one", icon=":material/inventory_2:")
