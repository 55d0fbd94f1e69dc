"""Classify: upload dermoscopic images and read the result.

Uploads stay in memory; nothing is written to disk unless the user presses
"Save this image for review", which stores a metadata-free PNG of the pixels.
A batch shows a triage table first (alerts and refusals on top), then each
image's detail; pictures marked as one lesion give one combined result.
"""

import json
import time
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import (
    admin_gate,
    dataset_hashes,
    is_admin,
    literal,
    live_predictor,
    page_frame,
    record_timing,
    wait_until_warm,
)
from skin_model import CLASSES, cases, explain, report, similar
from skin_model.config import MELANOMA, data_dirs
from skin_model.errors import SkinModelError
from skin_model.headline import alert_cost, headline, risk_line, triage_rows
from skin_model.images import FORMAT_NAMES, UPLOAD_TYPES, decode, pixel_hash, save_for_review, thumbnail_url
from skin_model.predict import Prediction, batch_rows, percent
from skin_model.spreadsheet import safe_frame, to_csv

started = time.perf_counter()
page_frame()

THRESHOLD_KEY = "alert_threshold_admin"  # session_state: the threshold an admin chose for this session only
RED, BLUE, GREY = "#c0392b", "#0b6e8a", "#6e6e6e"

st.title("Classify a lesion")
predictor = live_predictor()
if predictor is None:
    st.stop()
wait_until_warm(predictor)  # before the uploader: never a first upload that waits on the model's tracing

with st.sidebar:
    st.subheader("Options")
    if predictor.views == 8:
        use_tta = None  # the views this version was calibrated on
        st.caption("Each result averages 8 views of the image (flips and quarter turns), as this model was calibrated.")
    else:
        use_tta = st.toggle("Test-time augmentation (8 views)", help="Averages flips and rotations; slower, steadier.")
    use_cam = st.toggle(
        "Grad-CAM beside each image",
        value=explain.cheap(predictor.record.config),  # on by default where it costs under 0.3 s an image
        help="Where the network looked for its top diagnosis, beside the image, with a colour legend.",
    )
    show_similar = st.toggle(
        "Similar training images",
        value=True,
        help=f"The {similar.DEFAULT_K} training images nearest in the network's features, with their diagnoses.",
    )
    strict = predictor.info.strict_threshold
    st.caption(
        f"Melanoma alert at P(melanoma) {percent(predictor.threshold)}"
        + (f", {percent(strict)} for unusual imaging conditions" if strict < predictor.threshold else "")
        + ": the version's own thresholds. Only a signed-in admin may change them, for one session."
    )
    chosen = None
    if is_admin():
        options = predictor.record.policy.options()
        threshold = st.select_slider(
            "Melanoma alert threshold (admin, this session only)",
            options=options,
            value=predictor.threshold,
            key=THRESHOLD_KEY,  # kept for this browser session; dropped when the admin signs out
            format_func=percent,
            help="Within the range validated for this model (sensitivity at least 70% on validation). "
            "Lower means more alerts and fewer missed melanomas.",
        )
        chosen = None if threshold == predictor.threshold else threshold  # default: each image at its own
    else:
        st.session_state.pop(THRESHOLD_KEY, None)

if chosen is not None:
    point = predictor.record.policy.point(chosen)
    st.warning(
        f"**Alert threshold changed for this session only** by a signed-in admin: every image is held to "
        f"{percent(chosen)} instead of the version's own {percent(predictor.threshold)}"
        + (
            f" (on validation: sensitivity {percent(point.sensitivity)}, specificity {percent(point.specificity)})."
            if point
            else "."
        ),
        icon=":material/tune:",
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
one_lesion = len(files) > 1 and st.toggle(
    "These pictures show one lesion: combine them into one result",
    help="Two or three pictures of the same lesion: the result averages their calibrated logits, as the 8 views "
    "of one picture are averaged. Each picture's own result is shown below the combined one.",
)


@dataclass
class Entry:
    """One result to show: an image, or a lesion's combined pictures (``own``: each picture and its result)."""

    index: int
    name: str
    pixels: np.ndarray
    result: Prediction
    upload: object | None = None
    cam: np.ndarray | None = None
    own: list[tuple[str, np.ndarray, Prediction]] | None = None


def with_cam(entry: Entry) -> Entry:
    """The Grad-CAM map of the entry's (first) picture, and the warning when it fell mostly outside the lesion."""
    if not (use_cam and entry.result.lesion_like):
        return entry
    cam = explain.gradcam(predictor.keras_model, entry.pixels, predictor.class_index(entry.result.top_class))
    result = entry.result
    if explain.looked_outside(cam):
        result = replace(result, warnings=[*result.warnings, explain.OUTSIDE_WARNING])
    return replace(entry, cam=cam, result=result)


def classify(files) -> list[Entry]:
    """Decode and classify every upload (one line per unreadable file); combined when marked as one lesion."""
    decoded = []
    for upload in files:
        try:
            decoded.append((upload, decode(upload.getvalue(), name=upload.name)))
        except SkinModelError as error:
            st.error(literal(error))
    k = similar.DEFAULT_K if show_similar else 0
    if one_lesion and len(decoded) > 1:
        pictures = [(upload.name, pixels) for upload, pixels in decoded]
        name = f"one lesion, {len(pictures)} pictures"
        combined, own = predictor.predict_lesion(pictures, name=name, tta=use_tta, threshold=chosen)
        views = [(n, px, r) for (n, px), r in zip(pictures, own, strict=True)]
        return [with_cam(Entry(0, name, pictures[0][1], combined, decoded[0][0], own=views))]
    entries = []
    for index, (upload, pixels) in enumerate(decoded):
        try:
            result = predictor.predict(pixels, name=upload.name, tta=use_tta, threshold=chosen, similar=k)
        except SkinModelError as error:
            st.error(literal(error))
            continue
        entries.append(with_cam(Entry(index, upload.name, pixels, result, upload)))
    return entries


def probability_bars(result: Prediction) -> str:
    """The diagnoses as plain HTML bars, most likely first; a class the version cannot predict says so.

    Drawn with the text of the page instead of a Plotly chart: Plotly's figure is a lazily loaded
    component that the browser draws last, 0.6-1.2 s after the rest of the result (bench/RESULTS.md,
    "The app in a real browser"). Every string here is ours (class names and numbers), never user input.
    """
    rows = []
    shown = sorted(
        (kv for kv in result.probabilities.items() if kv[0] not in result.unpredictable), key=lambda kv: -kv[1]
    )
    for name, p in shown:
        colour = RED if name == MELANOMA else BLUE
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
    for name in result.unpredictable:
        rows.append(
            f"<div class='skin-unpredictable' role='listitem' style='display:flex;gap:0.6rem;margin:3px 0;"
            f"color:{GREY}'><span style='flex:0 0 14rem'>{name}</span>"
            "<span>not predicted: this version had (almost) no training images of it</span></div>"
        )
    label = "aria-label='Most likely diagnoses'"
    return f"<div class='skin-probabilities' role='list' {label}>{''.join(rows)}</div>"


def cam_legend() -> str:
    """The overlay's colour scale, from no attention to the most (our own colours and words only)."""
    stops = ", ".join(f"rgb{rgb} {100 * at:.0f}%" for at, rgb in explain.legend())
    return (
        "<div class='skin-cam-legend' style='font-size:0.8rem;color:#555'>"
        f"<div style='height:0.6rem;border-radius:3px;background:linear-gradient(to right, {stops})'></div>"
        "<div style='display:flex;justify-content:space-between'><span>image unchanged: not looked at</span>"
        "<span>red</span><span>yellow: looked at most</span></div></div>"
    )


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


def result_box(result: Prediction) -> None:
    """The headline, then what it rests on; the alert with its cost and why a nevus-first result can alert."""
    shown = headline(result)
    if shown.kind == "refused":
        st.error(
            f"**{shown.title}** (a photo, a document, a chart, a blank or noisy frame?). {shown.detail}",
            icon=":material/block:",
        )
        return
    if shown.kind == "alert":
        cost = alert_cost(predictor.record)
        st.error(
            f"### {shown.title}\n{shown.detail}"
            + (f"\n\n**How often it is wrong:** {cost.sentence()}" if cost else ""),
            icon=":material/warning:",
        )
    else:
        st.markdown(f"### {shown.title}\n{shown.detail}")
    st.markdown(risk_line(result))
    for warning in result.warnings:
        st.warning(warning)
    st.markdown(
        "**Most likely diagnoses**" + (f" (combined from {result.pictures} pictures)" if result.pictures > 1 else "")
    )
    st.html(probability_bars(result))


def detail(entry: Entry) -> None:
    """One result in full: the image and Grad-CAM beside it, the headline and diagnoses, similar cases, actions."""
    pictures, words = st.columns([1, 1])
    with pictures:
        left, right = st.columns(2) if entry.cam is not None else (st.container(), None)
        left.image(entry.pixels, caption=literal(entry.own[0][0] if entry.own else entry.name), width="stretch")
        if right is not None:
            right.image(explain.overlay(entry.pixels, entry.cam), caption="Grad-CAM: where the network looked")
            right.html(cam_legend())
        if (
            entry.upload is not None
            and not entry.own
            and st.button(
                "Save this image for review",
                key=f"save-{entry.index}",
                help="Keeps a copy of the pixels only (no EXIF, GPS, colour profile or file name) in the app's "
                "saved/ folder. Nothing is stored unless you press this.",
            )
        ):
            try:
                st.success(f"Saved as {save_for_review(entry.pixels).name}: pixels only, no metadata.")
            except SkinModelError as error:
                st.error(literal(error))
    with words:
        result_box(entry.result)
    if entry.own:
        st.markdown("**Each picture's own result**")
        for column, (name, pixels, own) in zip(st.columns(len(entry.own)), entry.own, strict=True):
            column.image(pixels, caption=literal(name), width="stretch")
            column.markdown(f"**{headline(own).title}**  \n{headline(own).detail if own.lesion_like else ''}")
    if entry.result.similar:
        similar_cases(entry.result.similar)
    if entry.upload is not None and not entry.own:
        add_case_form(entry.index, entry.pixels, entry.result, entry.upload)


entries = classify(files)
if len(entries) > 1:
    st.subheader(f"{len(entries)} images, most urgent first")
    order = triage_rows([e.result for e in entries])
    table = pd.DataFrame([{"": thumbnail_url(entries[i].pixels)} | row for i, row in order])
    picked = st.dataframe(
        safe_frame(table),
        hide_index=True,
        width="stretch",
        column_config={"": st.column_config.ImageColumn("", width="small")},
        on_select="rerun",
        selection_mode="single-row",
        key="triage",
    )
    chosen_row = picked.selection.rows[0] if picked and picked.selection.rows else None
    st.caption("Open an image below for its full result (or pick its row).")
    for rank, (i, row) in enumerate(order):
        entry = entries[i]
        label = f"{rank + 1}. {literal(entry.name)}: {row['result']}"
        with st.expander(
            label, expanded=rank == chosen_row, icon=":material/warning:" if entry.result.melanoma_alert else None
        ):
            detail(entry)
elif entries:
    with st.container(border=True):
        detail(entries[0])

if entries:
    results = [e.result for e in entries]
    pages = [
        report.Page(e.pixels, e.result, explain.overlay(e.pixels, e.cam) if e.cam is not None else None)
        for e in entries
    ]
    st.subheader("Downloads")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows = batch_rows(results, when)
    reference = st.text_input(
        "Case reference for the PDF (optional)",
        max_chars=120,
        help="Printed on the report and in its file name only; never stored or logged. Do not type patient names "
        "or identifiers.",
    )
    cols = st.columns(3)
    cols[0].download_button(
        "Download PDF report",
        partial(report.render, pages, predictor.record, reference),  # built only when pressed
        file_name=report.file_name(reference),
        mime="application/pdf",
        icon=":material/picture_as_pdf:",
        on_click="ignore",
    )
    cols[1].download_button("Download CSV", to_csv(rows), file_name="skin-results.csv", mime="text/csv")
    pictures = {"pictures": [r.to_dict() for _, _, r in entries[0].own]} if entries[0].own else {}
    cols[2].download_button(
        "Download JSON",
        json.dumps(
            {"model_version": predictor.version.number, "time": when, "results": [r.to_dict() for r in results]}
            | pictures,
            indent=2,
        ),
        file_name="skin-results.json",
        mime="application/json",
    )

with st.expander("Admin: confirmed cases and the alert threshold"):  # one sign-in box; once in, more appears
    admin_gate("Adding confirmed cases or changing the alert threshold")

record_timing(started, len(files))  # the last element above has been sent
