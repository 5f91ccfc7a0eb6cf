"""Neural Network Playground: entry point.

``streamlit run app.py`` (or ``make run``). Sets up the page, finds this
browser's workspace (its stored runs), draws the sidebar controls shared by
every page, and runs the selected page.
"""

import logging

import streamlit as st

from playground.callbacks import run_completed
from playground.plotly_live import preload_library
from playground.resources import get_settings
from playground.sidebar import sidebar
from playground.workspace import current_workspace

st.set_page_config(page_title="Neural Network Playground", page_icon="🧠",
                   layout="wide",
                   menu_items={"About": "Neural Network Playground: a from-scratch NumPy "
                                        "neural network you can train and watch learn."})
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

# The pages live in views/, not pages/: with a pages/ folder Streamlit 1.67 serves
# a direct link such as /compare (or the first visit of a fresh server) as an
# old-style page without app.py (no sidebar, no workspace) or with a "Page not
# found" dialog; links to pages (results, classes) must just work.
pages = [
    st.Page("views/playground.py", title="Playground", icon=":material/science:", default=True),
    st.Page("views/compare.py", title="Compare runs", icon=":material/stacked_line_chart:"),
    st.Page("views/classroom.py", title="Classroom", icon=":material/groups:"),
    st.Page("views/data.py", title="Data", icon=":material/dataset:"),
    st.Page("views/how_it_works.py", title="How it works", icon=":material/functions:"),
]
page = st.navigation(pages)
try:
    get_settings()
except ValueError as exc:  # a bad NNPG_* setting: say which, do nothing else
    logging.getLogger("playground").error("invalid operator setting: %s", exc)
    st.error(f"This server is misconfigured: {exc}. The operator must fix the setting and "
             "restart the server.", icon=":material/settings_alert:")
    st.stop()
try:
    preload_library()
    current_workspace()
    sidebar()
    page.run()
except Exception:  # Streamlit's own control flow (rerun, stop) is not an Exception
    logging.getLogger("playground").exception("page failed")
    st.error("Something went wrong while drawing this page. Your earlier runs are safe in "
             "Compare runs; change a setting or press Reset to continue.")
run_completed()
