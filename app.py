"""Neural Network Playground: entry point.

``streamlit run app.py`` (or ``make run``). Sets up the page, finds this
browser's workspace (its stored runs), draws the sidebar controls shared by
every page, and runs the selected page.
"""

import logging

import streamlit as st

from playground.ui import run_completed, sidebar
from playground.workspace import current_workspace

st.set_page_config(page_title="Neural Network Playground", page_icon=":material/neurology:",
                   layout="wide",
                   menu_items={"About": "Neural Network Playground: a from-scratch NumPy "
                                        "neural network you can train and watch learn."})
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

pages = [
    st.Page("pages/playground.py", title="Playground", icon=":material/science:", default=True),
    st.Page("pages/compare.py", title="Compare runs", icon=":material/stacked_line_chart:"),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/how_it_works.py", title="How it works", icon=":material/functions:"),
]
page = st.navigation(pages)
try:
    current_workspace()
    sidebar()
    page.run()
except Exception:  # Streamlit's own control flow (rerun, stop) is not an Exception
    logging.getLogger("playground").exception("page failed")
    st.error("Something went wrong while drawing this page. Your earlier runs are safe in "
             "Compare runs; change a setting or press Reset to continue.")
run_completed()
