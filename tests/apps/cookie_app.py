"""Minimal app for tests/test_browser_cookie.py: a value that lives in a cookie.

Query parameters (optional, for the tests): ``?where=sidebar`` mounts the cookie
component in the sidebar; ``?probe=1`` also shows what ``st.context.cookies``
says after the value was set (key ``cookie_seen``).
"""

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `streamlit run tests/apps/cookie_app.py` from anywhere
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from playground.browser_cookie import read_cookie, set_cookie  # noqa: E402

NAME = "nnpg_test"

value = read_cookie(NAME)
source = "cookie" if value is not None else "new"
if value is None:
    value = st.session_state.setdefault("cookie_app_value", secrets.token_urlsafe(16))

st.markdown("before")
if st.query_params.get("where") == "sidebar":
    with st.sidebar:
        set_cookie(NAME, value, max_age_days=30, key="cookie_setter")
else:
    set_cookie(NAME, value, max_age_days=30, key="cookie_setter")
st.markdown("after")

with st.container(key="cookie_value"):
    st.write(value)
with st.container(key="cookie_source"):
    st.write(source)
if st.query_params.get("probe"):
    with st.container(key="cookie_seen"):
        st.write(str(read_cookie(NAME)))
    st.button("Rerun", key="rerun")
