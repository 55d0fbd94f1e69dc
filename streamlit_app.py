"""Entry point: the pages and the frame around them (see ``pages.common.frame``)."""

import streamlit as st

from pages.common import ENTRY_KEY, PAGES, frame

page = st.navigation(
    [st.Page(path, title=title, icon=icon, default=i == 0) for i, (path, title, icon) in enumerate(PAGES)],
    position="hidden",
)
frame()
st.session_state[ENTRY_KEY] = True  # this run drew the frame: the page must not draw it again
page.run()
