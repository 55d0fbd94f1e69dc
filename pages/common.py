"""Shared pieces of the pages: the cached model, admin sign-in, small formatters.

Not a page itself (``streamlit_app.py`` lists the pages explicitly). All
computation stays in ``skin_model``; this file only adapts it to Streamlit.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import streamlit as st

from skin_model import auth, cases
from skin_model.audit import AuditReport, audit
from skin_model.card import pct  # noqa: F401 - re-exported for the pages
from skin_model.config import data_dirs
from skin_model.errors import SkinModelError
from skin_model.predict import Predictor
from skin_model.registry import Registry
from skin_model.text import literal

ENTRY_KEY = "_ran_through_streamlit_app"


def _close_figures_only() -> None:
    """What Streamlit cleans after each script run, less Keras's session (see ``keep_models_warm``)."""
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def keep_models_warm() -> None:
    """Stop Streamlit from clearing Keras's session after every script run.

    Streamlit calls ``keras.backend.clear_session()`` when a run ends, for scripts that build a model each
    run. That empties TensorFlow's kernel cache, so the next upload's prediction took about 330 ms instead
    of 20 (2 cores, measured with the live default), and one session's run ending cleared it under
    another's prediction. This app builds its models once per process (``st.cache_resource``), so there is
    nothing to clear. Streamlit is pinned; `test_pages` checks that a finished run leaves Keras alone.
    """
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = _close_figures_only


keep_models_warm()
PAGES = (  # path, title, icon; the first is the home page
    ("pages/home.py", "Home", ":material/home:"),
    ("pages/classify.py", "Classify", ":material/biotech:"),
    ("pages/dataset.py", "Dataset", ":material/bar_chart:"),
    ("pages/retrain.py", "Retrain", ":material/model_training:"),
    ("pages/models.py", "Models", ":material/inventory_2:"),
)


def frame() -> None:
    """The page settings and the sidebar every page shows: navigation, live model, disclaimer.

    Links are drawn by hand: Streamlit's own menu falls back to listing
    ``pages/`` after a fragment rerun.
    """
    st.set_page_config(page_title="Skin lesion classifier", page_icon="assets/icon.png", layout="wide")
    with st.sidebar:
        for path, title, icon in PAGES:
            st.page_link(path, label=title, icon=icon)
        st.divider()
        predictor = live_predictor()
        if predictor is not None:
            st.caption(f"Live model: version {predictor.version.number} ({predictor.version.created[:10]})")
        st.caption(
            "Decision support only, not a diagnosis. Every result must be interpreted by a dermatologist "
            "together with the clinical context; biopsy when in doubt."
        )


def page_frame() -> None:
    """Draw the frame unless ``streamlit_app.py`` already did in this run.

    Until ``st.navigation`` has run once in the process, Streamlit treats a
    ``pages/`` folder the old way and runs a sub-page URL on its own, without
    the entry script; the page then draws the same frame itself, so the first
    visitors of a fresh server see the whole app.
    """
    if not st.session_state.pop(ENTRY_KEY, False):
        frame()


@st.cache_resource(max_entries=1, show_spinner="Loading the model...")
def _predictor(number: int, where: str, sha: str, record_sha: str) -> Predictor:
    """One model per process, keyed on the live version (its folder, model and record hashes) so a switch
    reloads it, and so does another state folder or record with the same model file; warmed up off the page."""
    predictor = Predictor.load(number)
    _WARM[predictor] = threading.Event()
    # not a daemon: a process that exits mid-warm-up waits for it (TensorFlow aborts when its thread is killed)
    threading.Thread(target=warm_up, args=(predictor,), name="warm-up").start()
    return predictor


_WARM: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # predictor -> set once its warm-up has run


def warm_up(predictor: Predictor) -> None:
    """Pay the first-time costs of a process before the first upload does: about 1.3 s on 2 cores.

    The first prediction traces the model (TensorFlow); later ones take milliseconds.
    Runs on a thread, so the page that loaded the model is not held up.
    """
    try:
        predictor.predict(np.full((256, 256, 3), 128, np.uint8), name="warm-up")
    except Exception as error:  # only the first upload is slower; it reports any real problem itself
        logging.getLogger(__name__).warning("warm-up failed: %s", error)
    finally:
        _WARM.setdefault(predictor, threading.Event()).set()


def wait_until_warm(predictor: Predictor, timeout: float = 30.0) -> None:
    """Hold the Classify page until the model's warm-up has run: an upload made meanwhile waited for it
    (about 1.1 s from upload to result just after a restart, 0.25 s once warm), with no sign why."""
    warm = _WARM.get(predictor)
    if warm is not None and not warm.is_set():
        with st.spinner("Preparing the model (the first visit after a restart takes a second)..."):
            warm.wait(timeout)


def live_predictor() -> Predictor | None:
    """The live model, or the last previously-live one when the live file is refused."""
    registry = Registry()
    try:
        version = registry.live()
        registry.verify(version)
        return _predictor(version.number, str(version.path), version.record.sha256, version.metadata_sha256)
    except SkinModelError as error:
        st.error(f"The live model cannot be used: {literal(error)}")
    try:
        fallback = registry.last_good_live()
    except SkinModelError:
        fallback = None
    if fallback is None:
        st.error("No previously approved model passes its checksum; ask an administrator to make one live.")
        return None
    st.warning(f"Using model version {fallback.number}, the last approved live version that passes its checksum.")
    try:
        return _predictor(fallback.number, str(fallback.path), fallback.record.sha256, fallback.metadata_sha256)
    except SkinModelError as error:
        st.error(f"Model version {fallback.number} cannot be used either: {literal(error)}")
        return None


def admin_password() -> str | None:
    try:
        secret = st.secrets.get("admin_password")
    except Exception:
        secret = None
    return auth.password_from_env() or secret or None


@st.cache_data(max_entries=4, show_spinner="Auditing every image...")
def cached_audit(roots: tuple[str, ...], stamp: float) -> AuditReport:
    return audit([Path(root) for root in roots])


def audit_of(roots: list[Path]) -> AuditReport:
    """The audit of these dataset roots together, redone only when a class folder gains or loses files."""
    return cached_audit(tuple(str(root) for root in roots), folder_stamp(roots))


def folder_stamp(roots: list[Path]) -> float:
    """Changes when a class folder of any root gains or loses files, so the audit is redone."""
    folders = [p for root in roots for p in (root, *root.glob("*/"), *root.glob("*/*/"))]  # at most two levels
    return sum(p.stat().st_mtime for p in folders if p.is_dir())


def dataset_hashes() -> cases.Known | None:
    """Pixel hashes of the datasets of ``SKIN_DATA_DIR`` (audited once, cached): what a new case may not repeat."""
    roots = data_dirs()
    if not roots:
        return None
    try:
        return cases.dataset_hashes(audit_of(roots))
    except SkinModelError:
        return None


def record_timing(started: float, images: int) -> None:
    """Append the server's share of one classification to ``$SKIN_TIMINGS`` (JSON lines), when set.

    ``started`` is when this script run began: the rerun an upload triggers. Streamlit sends each element
    as the script draws it, so the end of the run is when the last result left the server. No file name,
    no pixels: only the time, the count and the seconds.
    """
    path = os.environ.get("SKIN_TIMINGS")
    if not path:
        return
    line = json.dumps({"time": time.time(), "images": images, "server_s": round(time.perf_counter() - started, 4)})
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as error:
        logging.getLogger(__name__).warning("could not record a timing: %s", error)


CLIENT_KEY = "sign_in_client"  # session_state: a random id of this browser session, for the sign-in throttle


def client_id() -> str:
    """Who is signing in, for the per-client throttle: this browser session and its address.

    Behind a reverse proxy every browser arrives from the proxy's address (on one machine, from
    127.0.0.1); keyed on the address alone, one user's typos would lock out everyone, the admin too.
    """
    address = st.context.ip_address
    address = address if isinstance(address, str) and address else "localhost"  # Streamlit may give none
    session = st.session_state.setdefault(CLIENT_KEY, secrets.token_hex(8))
    return f"{address} {session}"


ADMIN_KEY = "admin_active"  # session_state: when the signed-in admin last ran a page (epoch seconds)


def is_admin() -> bool:
    """Signed in on this session, not idle past the limit, and admin actions enabled at all."""
    if admin_password() is None:
        return False
    try:
        return auth.session_active(st.session_state.get(ADMIN_KEY))
    except SkinModelError:
        return False  # a bad SKIN_ADMIN_SESSION_MINUTES fails closed; admin_gate says why


def sign_out() -> None:
    st.session_state.pop(ADMIN_KEY, None)


def admin_gate(action: str) -> bool:
    """Show a sign-in box unless signed in; True when admin actions may run."""
    if admin_password() is None:
        st.info(
            f"{action} is an admin action and is disabled: set the environment variable `SKIN_ADMIN_PASSWORD` "
            "(or `admin_password` in `.streamlit/secrets.toml`) and restart the app to enable it."
        )
        return False
    try:
        minutes = auth.session_minutes()
    except SkinModelError as error:
        st.error(literal(error))
        return False
    if is_admin():
        st.session_state[ADMIN_KEY] = time.time()  # a page the admin opens or uses is activity
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.caption(f"Signed in as admin; signed out after {minutes:g} minutes without activity.")
        if right.button("Sign out", key=f"sign-out-{action}", icon=":material/logout:"):
            sign_out()
            st.rerun()
        return True
    if st.session_state.pop(ADMIN_KEY, None) is not None:
        st.info(f"Your admin sign-in expired after {minutes:g} minutes without activity; sign in again.")
    with st.form(f"signin-{action}"):
        given = st.text_input("Admin password", type="password")
        if st.form_submit_button("Sign in"):
            try:
                auth.check(given, admin_password(), client=client_id())
                st.session_state[ADMIN_KEY] = time.time()
                st.rerun()
            except SkinModelError as error:
                st.error(literal(error))
    return False
