"""Retrain: start a training job, watch it live, compare it with the live model, make it live.

The job runs in its own process; this page only reads its files, so it
survives refreshes and every session sees the same job.
"""

import os
from dataclasses import replace

import plotly.graph_objects as go
import streamlit as st

from pages.common import admin_gate, is_admin, literal, page_frame, pct
from skin_model import cases, jobs
from skin_model.comparison import confusion_figure, metrics_table
from skin_model.config import BACKBONES, DEFAULT_RECIPE, BalanceConfig, TrainConfig, roots_of
from skin_model.dataset import find_layouts, user_folder
from skin_model.errors import SkinModelError
from skin_model.registry import Registry
from skin_model.spreadsheet import safe_frame

page_frame()

st.title("Retrain the model")
admin = admin_gate("Retraining")


def curves(history: tuple[jobs.Epoch, ...]) -> go.Figure:
    fig = go.Figure()
    epochs = [h.epoch for h in history]
    for key, name, dash in (
        ("loss", "training loss", None),
        ("val_loss", "validation loss", "dot"),
        ("accuracy", "training accuracy", None),
        ("val_balanced_accuracy", "validation balanced accuracy", "dot"),
    ):
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[getattr(h, key) for h in history],
                name=name,
                line={"dash": dash},
                yaxis="y2" if "accuracy" in key else "y",
            )
        )
    fig.update_layout(
        height=320,
        margin={"t": 10, "b": 10},
        xaxis_title="epoch",
        yaxis={"title": "loss"},
        yaxis2={"title": "accuracy", "overlaying": "y", "side": "right", "range": [0, 1]},
        legend={"orientation": "h", "y": 1.15},
    )
    return fig


@st.fragment(run_every="2s")
def job_panel() -> None:
    job = jobs.latest()
    if job is None:
        st.caption("No training job has run yet.")
        return
    status = job.summary()
    st.markdown(f"**Job {job.id}**: `{status.state}`")
    if status.epoch is not None:
        st.progress(status.done, text=status.progress_line())
    elif status.active:
        st.progress(0.0, text="preparing data (audit, split, balancing)...")
    if status.history:
        st.plotly_chart(curves(status.history), width="stretch", key="curves")
    if status.active and is_admin() and st.button("Cancel job", type="secondary"):  # re-checked on every tick
        try:
            jobs.cancel(job)
        except SkinModelError as error:
            st.error(literal(error))
        st.rerun(scope="fragment")
    if status.state == "KILLED":
        st.info(f"{jobs.ENDINGS['KILLED']}. The live model is unchanged.", icon=":material/cancel:")
    elif status.state in jobs.ENDINGS:
        st.error(
            f"{jobs.ENDINGS[status.state]}: {literal(status.error or 'no reason recorded')}. "
            "The live model is unchanged."
        )
    with st.expander("Log"):
        st.code(jobs.readable_log(job.log_tail(80))[-6000:] or "(empty)")
    if status.state == "FINISHED":
        finished_view(status.version)


def finished_view(number: int) -> None:
    registry = Registry()
    try:
        new = registry.get(number)
        live = registry.live()
    except SkinModelError as error:
        st.error(literal(error))
        return
    st.success(f"Training finished: registered model version {new.number}.")
    left, right = st.columns(2)
    for column, version, title, side in (
        (left, new, f"New: version {new.number}", "new"),
        (right, live, f"Live: version {live.number}", "live"),
    ):
        with column:
            st.markdown(f"**{title}**")
            held = version.record.metrics.headline
            metrics = held.scores
            st.caption(
                f"{held.key} split: melanoma sensitivity {pct(metrics.melanoma_sensitivity)}, "
                f"balanced accuracy {pct(metrics.balanced_accuracy)}"
            )
            st.plotly_chart(confusion_figure(metrics.confusion), width="stretch", key=f"cm-{side}")
    st.dataframe(safe_frame(metrics_table([new, live])), width="stretch")
    if new.number == live.number:
        st.info(f"Version {new.number} is live.")
    elif is_admin() and st.button(f"Make version {new.number} live", type="primary"):
        try:
            registry.activate(new.number)
        except SkinModelError as error:
            st.error(literal(error))
            return
        st.rerun()


def count_cases() -> int:
    try:
        return len(cases.all_cases())
    except SkinModelError:
        return 0


NETWORKS = {
    "efficientnet-lite0": "EfficientNet-Lite0, fine-tuned from ImageNet (the default model's recipe)",
    "custom-cnn": "Custom CNN, trained from scratch (the original recipe)",
}
network = st.radio("Network", BACKBONES[::-1], format_func=NETWORKS.get, horizontal=False)
defaults = DEFAULT_RECIPE if network == DEFAULT_RECIPE.backbone else TrainConfig(backbone=network)
try:
    live = Registry().live()
    live_config = live.record.config
except SkinModelError:
    live, live_config = None, None
same_network = live_config is not None and live_config.backbone == network
starts = ["fresh"] + (["live"] if same_network else [])
start = st.radio(
    "Start from",
    starts,
    format_func={
        "fresh": "ImageNet weights" if network == "efficientnet-lite0" else "random weights",
        "live": f"the live version's weights (version {live.number if live else '?'}: quicker, fewer epochs do)",
    }.get,
    horizontal=True,
    help="Continuing needs the live version to be the same network at the same image size.",
)

with st.form("train"):
    st.markdown("**Training settings**")
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input("Epochs", 1, 200, defaults.epochs)
    image_size = c2.select_slider("Image size (px)", [64, 96, 128, 160, 180], value=defaults.image_size)
    batch_size = c3.select_slider("Batch size", [8, 16, 32, 64], value=defaults.batch_size)
    c4, c5, c6 = st.columns(3)
    learning_rate = c4.select_slider("Learning rate", [2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3], value=defaults.learning_rate)
    strategy = c5.selectbox("Balancing", ["target", "add", "none"])
    n = c6.number_input("Balancing N", 0, 5000, BalanceConfig.n, step=50)
    max_per_class = st.number_input("Images per class (0 = all; small values give a quick trial run)", 0, 1000, 0)
    data_roots = st.text_area(
        "Dataset folders, one per line (learnt from as one)",
        "\n".join(str(root) for root in roots_of(os.environ.get("SKIN_DATA_DIR", ""))),
        height=80,
    )
    confirmed = count_cases()
    use_cases = st.toggle(
        f"Include the {confirmed} confirmed case(s)",
        value=True,
        help="The clinic's confirmed cases join the data as the source `clinic`, split like every other image. "
        "The job takes the cases as they are when it starts.",
    )
    submitted = st.form_submit_button("Start training", type="primary", disabled=not admin)
PENDING = "retrain_pending"  # session_state: the settings of a job waiting for its confirmation
if submitted and admin:
    try:
        config = replace(
            defaults,
            epochs=int(epochs),
            image_size=int(image_size),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            max_per_class=int(max_per_class) or None,
            cases=use_cases,
            balance=BalanceConfig(strategy=strategy, n=int(n)),
            continue_from=live.number if start == "live" and live is not None else None,
        )
        roots = [user_folder(line) for line in data_roots.splitlines() if line.strip()]
        find_layouts(roots)  # a wrong folder is named now, before the confirmation
        st.session_state[PENDING] = (roots, config)
    except SkinModelError as error:
        st.error(literal(error))
if admin and PENDING in st.session_state:
    roots, config = st.session_state[PENDING]
    seconds = jobs.expected_seconds(config.epochs, live.record.training.seconds_per_epoch if live else None)
    took = (
        f"about {max(round(seconds / 60), 1)} min ({config.epochs} epochs at the live version's "
        f"{seconds / config.epochs:.0f} s an epoch; fewer images per class go faster)"
        if seconds
        else "an unknown time (the live version recorded none)"
    )
    st.warning(
        f"**Start training?** This job takes {took}. The live model stays live until you make the new version live."
    )
    yes, no = st.columns(2)
    if yes.button("Yes, start training", type="primary"):
        del st.session_state[PENDING]
        try:
            job = jobs.start(roots, config)
            st.toast(f"Started job {job.id}")
        except SkinModelError as error:
            st.error(literal(error))
    if no.button("Not now"):
        del st.session_state[PENDING]
        st.rerun()

job_panel()
