"""Models: every registered version, comparisons, the live alias, the model card."""

import pandas as pd
import streamlit as st

from pages.common import admin_gate, literal, page_frame, pct
from skin_model import card, cases
from skin_model.comparison import compare_pair, confusion_figure, metrics_table, roc_figure, shift_table
from skin_model.errors import SkinModelError
from skin_model.record import Scores
from skin_model.registry import Registry
from skin_model.spreadsheet import safe_frame

page_frame()

st.title("Model versions")
registry = Registry()
versions = registry.versions()
live = registry.live_number()
for problem in registry.problems():
    st.warning(literal(problem))
if not versions:
    st.warning("No model is registered yet. Train one on the Retrain page or run `make train-default`.")
    st.stop()

rows = []
for v in versions:
    held, cfg = v.record.metrics.headline, v.record.config
    m = held.scores if held else Scores()
    rows.append(
        {
            "version": v.number,
            "live": "live" if v.number == live else "",
            "created": v.created[:10],
            "epochs": cfg.epochs,
            "image size": cfg.image_size,
            "views": cfg.views,  # test-time views it is calibrated and served on
            "balancing": f"{cfg.balance.strategy} {cfg.balance.n}",
            "data": (v.record.data.fingerprint or "")[:8],
            "balanced accuracy": pct(m.balanced_accuracy),
            "melanoma sensitivity": pct(m.melanoma_sensitivity),
            "clinic cases": v.record.data.cases.count,
        }
    )
st.dataframe(safe_frame(pd.DataFrame(rows)), hide_index=True, width="stretch")


@st.cache_data(max_entries=32, show_spinner="Scoring the confirmed cases...")
def case_score(number: int, sha: str, fingerprint: str) -> dict:
    """One version on today's cases (cached per version and case set; a new case recomputes)."""
    from skin_model.predict import Predictor

    return cases.score(Predictor.load(number, registry), cases.all_cases())


st.subheader("On this clinic's confirmed cases")
try:
    confirmed = cases.all_cases()
except SkinModelError as error:
    st.error(literal(error))
    confirmed = []
if not confirmed:
    st.caption("No confirmed cases yet: add them on the Classify page once a diagnosis is confirmed.")
else:
    scored = []
    for v in versions:
        try:
            r = case_score(v.number, v.record.sha256, cases.fingerprint(confirmed))
        except SkinModelError as error:
            st.caption(f"Version {v.number}: {literal(error)}")
            continue
        scored.append(
            {
                "version": v.number,
                "live": "live" if v.number == live else "",
                "cases it never saw": r["cases"],
                "agrees with the confirmed diagnosis": pct(r["agreement"]),
                "melanomas caught / all": f"{r['melanomas_caught']} / {r['melanomas']}",
                "melanomas missed": r["melanomas_missed"],
                "refused as not a lesion": r["refused"],
                "unreadable case files": len(r["unreadable"]),
            }
        )
        for why in r["unreadable"] if v.number == live else []:
            st.caption(literal(f"Left out: {why}"))
    st.dataframe(safe_frame(pd.DataFrame(scored)), hide_index=True, width="stretch")
    st.caption(
        f"{len(confirmed)} confirmed case(s). Each version is scored only on the cases it did not train or validate "
        "on; the melanoma alert is at its own thresholds, as the app applies them."
    )

st.subheader("Compare two versions")
numbers = [v.number for v in versions]
c1, c2 = st.columns(2)
first, second = compare_pair(numbers, live)
a = c1.selectbox("Version A", numbers, index=numbers.index(first))
b = c2.selectbox("Version B", numbers, index=numbers.index(second))
chosen = [registry.get(a)] if a == b else [registry.get(a), registry.get(b)]
st.dataframe(safe_frame(metrics_table(chosen)), width="stretch")
st.plotly_chart(roc_figure(chosen), width="stretch", key="roc")
cols = st.columns(2)
for col, version in zip(cols, chosen, strict=False):
    held = version.record.metrics.headline
    if held is None:
        col.caption(f"Version {version.number} has no recorded metrics.")
        continue
    col.markdown(f"**Version {version.number}: confusion matrix ({held.key})**")
    col.plotly_chart(confusion_figure(held.scores.confusion), width="stretch", key=f"cm-{version.number}")

st.subheader("Away from the training conditions")
st.caption(
    "The held-out test split by acquisition source, and the same images under named device conditions: a cool or "
    "warm colour cast, dim or bright exposure, washed-out colours, strong JPEG compression, a dark dermatoscope "
    "vignette, defocus, a cool cast inside a vignette together, as the oldest dermatoscopes give, and a narrow "
    "round field of view (versions from before 6 December lack the last two rows). The melanoma alert is at each "
    "version's thresholds (a stricter one where an image's imaging conditions are unusual, as the app applies "
    "them); 'refused' is the share the "
    "not-a-lesion gate turned away (it should stay near 0 for real lesions)."
)
for version in chosen:
    sources, stress = shift_table(version, "per_source"), shift_table(version, "stress")
    if sources is None:
        st.caption(f"Version {version.number} predates these tables (trained before the out-of-source report).")
        continue
    st.markdown(f"**Version {version.number}: per source**")  # one table a row: six columns fit the page
    st.dataframe(safe_frame(sources), width="stretch")
    st.markdown(f"**Version {version.number}: stress test**")
    st.dataframe(safe_frame(stress), width="stretch")

st.subheader("Live model")
if admin_gate("Changing the live model"):
    target = st.selectbox("Make this version live", numbers, index=numbers.index(live) if live in numbers else 0)
    if st.button("Make live", type="primary", disabled=target == live):
        try:
            registry.activate(target)
            st.success(f"Version {target} is now live.")
            st.rerun()
        except SkinModelError as error:
            st.error(literal(error))
if live in numbers:  # an unreadable live record is named at the top instead
    with st.expander(f"Model card: version {live}", expanded=False):
        st.markdown(card.render(registry.get(live).record))
