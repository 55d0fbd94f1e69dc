"""Entry point: navigation and the shared sidebar (live model, disclaimer)."""

import streamlit as st

st.set_page_config(page_title="Skin lesion classifier", page_icon="assets/icon.png", layout="wide")

from pages.common import ENTRY_KEY, live_predictor  # noqa: E402 - set_page_config must come first

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/classify.py", title="Classify", icon=":material/biotech:"),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/bar_chart:"),
    st.Page("pages/retrain.py", title="Retrain", icon=":material/model_training:"),
    st.Page("pages/models.py", title="Models", icon=":material/inventory_2:"),
]
# Drawn by hand: Streamlit's own menu falls back to listing pages/ after a fragment rerun.
page = st.navigation(pages, position="hidden")

with st.sidebar:
    for item in pages:
        st.page_link(item)
    st.divider()
    predictor = live_predictor()
    if predictor is not None:
        st.caption(f"Live model: version {predictor.version.number} ({predictor.version.created[:10]})")
    st.caption(
        "Decision support only, not a diagnosis. Every result must be interpreted by a dermatologist "
        "together with the clinical context; biopsy when in doubt."
    )

st.session_state[ENTRY_KEY] = True  # checked by each page: see pages.common.through_entry_script
page.run()
