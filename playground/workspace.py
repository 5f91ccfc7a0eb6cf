"""Workspaces without accounts: which stored runs belong to this browser.

The first time a browser opens the app it gets a secret workspace token in a
long-lived cookie (``nnpg_workspace``, 400 days, renewed on every visit); the
store keeps only the token's SHA-256. The token is never put in the address
bar, so copying a link never hands a workspace over. To move a workspace to
another browser on purpose, the Compare page shows a *recover link*
(``?recover=<token>``): opening it adopts the workspace in that browser, and
the token is removed from the address bar at once.
"""

from __future__ import annotations

import logging
import re
import secrets
import urllib.parse

import streamlit as st

from .browser_cookie import COOKIE_MAX_AGE_DAYS_LIMIT, read_cookie, set_cookie
from .resources import get_store
from .session import Key
from .store import StoreUnavailableError

__all__ = ["COOKIE", "absolute_link", "current_workspace", "known_workspace", "recover_link",
           "workspace_token"]

log = logging.getLogger("playground")

COOKIE = "nnpg_workspace"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")


def _new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def workspace_token() -> str:
    """This browser's secret token: from a recover link, this session, the cookie, or new.

    Draws the (invisible) component that keeps the cookie: call it once per script run.
    """
    ss = st.session_state
    recover = st.query_params.get("recover")
    if recover is not None:
        del st.query_params["recover"]  # never leave a secret in the address bar
        if _TOKEN.fullmatch(recover):
            ss[Key.WORKSPACE_TOKEN] = recover
            ss.pop(Key.WORKSPACE_ID, None)
            ss[Key.RECOVERED] = True
        else:
            ss[Key.RECOVER_ERROR] = True
    token = ss.get(Key.WORKSPACE_TOKEN)
    if token is None:
        cookie = read_cookie(COOKIE)
        token = cookie if cookie and _TOKEN.fullmatch(cookie) else _new_token()
        ss[Key.WORKSPACE_TOKEN] = token
    set_cookie(COOKIE, token, COOKIE_MAX_AGE_DAYS_LIMIT, key="workspace_cookie")
    return token


def current_workspace() -> str | None:
    """The workspace id of this browser, or None while the run store is unavailable."""
    ss = st.session_state
    token = workspace_token()
    if ss.get(Key.WORKSPACE_ID) is None:
        store = get_store()
        if store is None:
            return None
        try:
            ss[Key.WORKSPACE_ID] = store.workspace_for_token(token)
        except StoreUnavailableError as exc:
            log.warning("workspace lookup failed: %s", exc)
            return None
    return ss[Key.WORKSPACE_ID]


def absolute_link(path: str) -> str:
    """``path`` (``/...``) as a full link on the address the browser used (relative
    when the address is unknown, e.g. under AppTest)."""
    parts = urllib.parse.urlsplit(st.context.url or "")
    return f"{parts.scheme}://{parts.netloc}{path}" if parts.netloc else path


def recover_link() -> str:
    """A link that opens this workspace in another browser (relative to the app)."""
    return f"/?recover={st.session_state[Key.WORKSPACE_TOKEN]}"


def known_workspace() -> str | None:
    """The workspace id found by :func:`current_workspace` earlier in this session
    (for callbacks, which must not draw the cookie component)."""
    return st.session_state.get(Key.WORKSPACE_ID)
