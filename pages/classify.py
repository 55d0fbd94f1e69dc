"""Classify: upload dermoscopic images and read the probabilities.

Uploads stay in memory; nothing is written to disk unless the user presses
"Save this image for review", which stores a metadata-free PNG of the pixels.
"""

import json
import time
from functools import partial

import pandas as pd
import streamlit as st

from pages.common import (
    admin_gate,
    dataset_hashes,
    is_admin,
    literal,
    live_predictor,
    page_frame,
    pct,
    record_timing,
)
from skin_model import CLASSES, cases, explain, report, similar
from skin_model.config import MELANOMA, data_dirs
from skin_model.errors import SkinModelError
from skin_model.images import FORMAT_NAMES, UPLOAD_TYPES, decode, pixel_hash, save_for_review
from skin_model.predict import alert_options, batch_rows, operating_point
from skin_model.spreadsheet import safe_frame, to_csv

started = time.perf_counter()
page_frame()

RISK_COLOURS = {"malignant": "#c0392b", "pre-malignant": "#d68910", "benign": "#1e8449"}

st.title("Classify a lesion")
predictor = live_predictor()
if predictor is None:
    st.stop()

with st.sidebar:
    st.subheader("Options")
    if predictor.views == 8:
        use_tta = None  # the views this version was calibrated on
        st.caption("Each result averages 8 views of the image (flips and quarter turns), as this model was calibrated.")
    else:
        use_tta = st.toggle("Test-time augmentation (8 views)", help="Averages flips and rotations; slower, steadier.")
    use_cam = st.toggle("Grad-CAM overlay", help="Shows where the network looked for its top class.")
    show_similar = st.toggle(
        "Similar training images",
        value=True,
        help=f"The {similar.DEFAULT_K} training images nearest in the network's features, with their diagnoses.",
    )
    options = alert_options(predictor.metadata)
    threshold = st.select_slider(
        "Melanoma alert threshold",
        options=options,
        value=predictor.threshold,
        format_func=lambda t: f"{t:.3g}",
        help="Within the range validated for this model (sensitivity at least 70% on validation). "
        "Lower means more alerts and fewer missed melanomas.",
    )
    chosen = None if threshold == predictor.threshold else threshold  # the default: each image at its own threshold
    strict = predictor.info.strict_threshold
    if chosen is None:
        val = predictor.metadata.get("metrics", {}).get("val", {})
        sens, spec, where = (
            val.get("melanoma_sensitivity"),
            val.get("melanoma_specificity"),
            "each image at its own threshold",
        )
    else:
        point = operating_point(predictor.metadata, threshold) or {}
        sens, spec, where = point.get("sensitivity"), point.get("specificity"), f"every image at {threshold:.3g}"
    if sens is not None:
        st.caption(
            f"On validation, {where}: sensitivity {pct(sens)}, specificity {pct(spec)}. "
            f"Model default: {predictor.threshold:.3g}"
            + (f", down to {strict:.3g} for unusual imaging conditions." if strict < predictor.threshold else ".")
        )

source = st.radio("Image source", ["Upload files", "Camera"], horizontal=True, label_visibility="collapsed")
if source == "Camera":
    shot = st.camera_input("Take a picture through the dermatoscope")
    files = [shot] if shot else []
else:
    files = (
        st.file_uploader(f"Dermoscopic images ({FORMAT_NAMES})", type=UPLOAD_TYPES, accept_multiple_files=True) or []
    )

if not files:
    st.info("Upload one or more dermoscopic images to classify them.")
    st.stop()


def probability_bars(probabilities: dict[str, float]) -> str:
    """The nine probabilities as plain HTML bars, most likely first.

    Drawn with the text of the page instead of a Plotly chart: Plotly's figure is a lazily loaded
    component that the browser draws last, 0.6-1.2 s after the rest of the result (bench/RESULTS.md,
    "The app in a real browser"). Every string here is ours (class names and numbers), never user input.
    """
    rows = []
    for name, p in sorted(probabilities.items(), key=lambda kv: -kv[1]):
        colour = RISK_COLOURS["malignant"] if name == MELANOMA else "#0b6e8a"
        weight = 600 if name == MELANOMA else 400
        rows.append(
            f"<div class='skin-prob' role='listitem' style='display:flex;align-items:center;gap:0.6rem;margin:3px 0'>"
            f"<span class='name' style='flex:0 0 14rem;font-weight:{weight};color:{colour}'>{name}</span>"
            f"<span style='flex:1;background:#e9eef1;border-radius:3px;height:0.9rem'>"
            f"<span style='display:block;width:{100 * p:.1f}%;height:100%;background:{colour};border-radius:3px'>"
            f"</span></span>"
            f"<span class='pct' style='flex:0 0 4rem;text-align:right;font-variant-numeric:tabular-nums'>"
            f"{100 * p:.1f}%</span></div>"
        )
    label = "aria-label='Probability of each diagnosis'"
    return f"<div class='skin-probabilities' role='list' {label}>{''.join(rows)}</div>"


def similar_cases(neighbours: list[similar.Neighbour]) -> None:
    """Thumbnails from the dataset folder when it is here; otherwise each image's public ISIC page."""
    st.markdown(f"**Similar training images**: {similar.summary(neighbours)}")  # diagnoses: checked class names
    roots = data_dirs()
    for column, n in zip(st.columns(len(neighbours)), neighbours, strict=True):
        found = similar.local_file(n, roots)
        label = f"{n.diagnosis} · distance {n.distance:.2f}"
        if found is not None:
            column.image(str(found), caption=label, width="stretch")
        else:  # the name is the training file's: a link only for a checked ISIC id (``Neighbour.url``)
            link = f"[{n.image}]({n.url})" if n.url else literal(n.image)
            column.markdown(f"{link}  \n{label}")


def add_case_form(index: int, pixels, result, upload) -> None:
    """A signed-in admin records the confirmed diagnosis of the image shown: stored (pixels only) as a case.

    Only for an admin: other sessions get no form per image (one sign-in box at the end of the page).
    """
    if not is_admin():
        return
    with st.expander("Add as a confirmed case"), st.form(f"case-{index}", clear_on_submit=True):
        top = CLASSES.index(result.top_class) if result.top_class else 0
        diagnosis = st.selectbox("Confirmed diagnosis", CLASSES, index=top)
        how = st.selectbox("Confirmed by", cases.CONFIRMATIONS)
        note = st.text_input("Note (optional)", max_chars=cases.NOTE_LIMIT)
        st.caption("Do not type patient names, dates of birth or record numbers: the note is stored.")
        if st.form_submit_button("Add confirmed case"):
            prediction = {
                k: getattr(result, k)
                for k in ("lesion_like", "top_class", "top_probability", "melanoma_probability", "melanoma_alert")
            } | {"alert_threshold": result.alert_threshold}
            try:
                full_size = pixel_hash(decode(upload.getvalue(), name=upload.name, max_side=None))  # as the audit
                case = cases.add(
                    pixels, diagnosis, how, note, prediction, predictor.version.number, dataset_hashes(), full_size
                )
                st.success(f"Added as confirmed case {case.id} ({case.diagnosis}, {case.confirmed_by}).")
            except SkinModelError as error:
                st.error(literal(error))


results, pages = [], []
for index, upload in enumerate(files):
    name = upload.name
    with st.container(border=True):
        try:
            pixels = decode(upload.getvalue(), name=name)
            k = similar.DEFAULT_K if show_similar else 0
            result = predictor.predict(pixels, name=name, tta=use_tta, threshold=chosen, similar=k)
        except SkinModelError as error:
            st.error(literal(error))
            continue
        results.append(result)
        left, right = st.columns([1, 2])
        with left:
            shown, overlay = pixels, None
            if use_cam and result.lesion_like:
                cam = explain.gradcam(predictor.keras_model, pixels, predictor.class_index(result.top_class))
                shown = overlay = explain.overlay(pixels, cam)
            pages.append(report.Page(pixels, result, overlay))
            st.image(
                shown,
                caption=literal(name) + (" (Grad-CAM)" if use_cam and result.lesion_like else ""),
                width="stretch",
            )
            if st.button(
                "Save this image for review",
                key=f"save-{index}",
                help="Keeps a copy of the pixels only (no EXIF, GPS, colour profile or file name) in the app's "
                "saved/ folder. Nothing is stored unless you press this.",
            ):
                try:
                    st.success(f"Saved as {save_for_review(pixels).name}: pixels only, no metadata.")
                except SkinModelError as error:
                    st.error(literal(error))
        with right:
            if not result.lesion_like:
                st.error(
                    "**No diagnosis**: this is not a dermoscopic lesion image (a photo, a document, a chart, a "
                    "blank or noisy frame?). Upload a picture taken through a dermatoscope.",
                    icon=":material/block:",
                )
                continue
            if result.melanoma_alert:
                st.error(
                    f"**Melanoma alert**: P(melanoma) {result.alert_probability:.1%} reaches the alert "
                    f"threshold {result.alert_threshold:.3g}. Consider excision or biopsy.",
                    icon=":material/warning:",
                )
            colour = RISK_COLOURS[result.risk_group]
            why = "set by the melanoma alert" if result.melanoma_alert else "all classes summed"
            st.markdown(
                f"### {result.top_class.capitalize()}: {result.top_probability:.1%}\n"
                f"Risk group ({why}): "
                f"<span style='color:{colour};font-weight:600'>{result.risk_group}</span>",
                unsafe_allow_html=True,
            )
            for warning in result.warnings:
                st.warning(warning)
            st.html(probability_bars(result.probabilities))
        if result.similar:
            similar_cases(result.similar)
        add_case_form(index, pixels, result, upload)

if results:
    st.subheader("Summary")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows = batch_rows(results, when)
    table = pd.DataFrame(rows)[
        [
            "file",
            "lesion_like",
            "top_class",
            "top_probability",
            "risk_group",
            "melanoma_probability",
            "melanoma_alert",
            "warnings",
        ]
    ]
    st.dataframe(safe_frame(table), hide_index=True, width="stretch")  # its toolbar exports CSV too
    reference = st.text_input(
        "Case reference for the PDF (optional)",
        max_chars=120,
        help="Printed on the report only; never stored or logged. Do not type patient names or identifiers.",
    )
    cols = st.columns(3)
    cols[0].download_button(
        "Download PDF report",
        partial(report.render, pages, predictor.metadata, reference),  # built only when pressed
        file_name="skin-report.pdf",
        mime="application/pdf",
        icon=":material/picture_as_pdf:",
        on_click="ignore",
    )
    cols[1].download_button("Download CSV", to_csv(rows), file_name="skin-results.csv", mime="text/csv")
    cols[2].download_button(
        "Download JSON",
        json.dumps(
            {"model_version": predictor.version.number, "time": when, "results": [r.to_dict() for r in results]},
            indent=2,
        ),
        file_name="skin-results.json",
        mime="application/json",
    )

    with st.expander("Confirmed cases (admin)"):  # one sign-in box; once in, each image gets its form
        admin_gate("Adding confirmed cases")

record_timing(started, len(files))  # the last element above has been sent
