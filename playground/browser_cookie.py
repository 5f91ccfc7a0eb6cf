"""Read a browser cookie on the server and set one from the browser.

Streamlit can read the cookies a browser sent but has no API to set one, so
:func:`set_cookie` mounts a tiny, invisible ``st.components.v2`` component whose
inline JavaScript writes ``document.cookie`` (nothing is loaded from the network).

Timing (verified in Chromium with Streamlit 1.67, see tests/test_browser_cookie.py):

* ``st.context.cookies`` holds the cookies of the WebSocket's HTTP upgrade
  request, i.e. what the browser had when the session connected. A cookie that
  the component writes is **not** visible through :func:`read_cookie` in the same
  session, not even after later reruns; the next session (reload, new tab, a
  new day) sends it. So an app that creates a value must keep it in
  ``st.session_state`` for the rest of the session and prefer the cookie only
  when one came with the connection::

      value = read_cookie("ws") or st.session_state.setdefault("ws", new_id())
      set_cookie("ws", value, max_age_days=400, key="ws_cookie")

* The component is mounted on every rerun, which is cheap: the browser runs its
  JavaScript only when the element is first mounted or its ``data`` changes, not
  on reruns with the same data. When it runs, it writes the cookie if the
  browser's value differs, and otherwise once per page load (to slide the
  expiry forward: a browser that keeps visiting keeps its cookie).
* The component works in the main area, the sidebar and in containers, and is
  hidden together with its element container (``display: none``), so it takes no
  space and leaves no gap in the layout.
* Under ``streamlit.testing.v1.AppTest`` there is no browser: :func:`read_cookie`
  returns ``None`` (``st.context.cookies`` is empty there) and :func:`set_cookie`
  mounts the component without running any JavaScript; neither raises. Outside a
  Streamlit script run (plain ``python``) both are no-ops too.

The name and value are restricted to ``[A-Za-z0-9_-]`` (so the cookie needs no
quoting or encoding) and reach the JavaScript as the component's ``data``,
never by formatting them into JavaScript source.
"""

from __future__ import annotations

import re

import streamlit as st

__all__ = ["COOKIE_MAX_AGE_DAYS_LIMIT", "read_cookie", "set_cookie"]

#: Browsers cap a cookie's lifetime at 400 days (Chrome; RFC 6265bis).
COOKIE_MAX_AGE_DAYS_LIMIT = 400

_SAFE = re.compile(r"[A-Za-z0-9_-]+")
#: Longest accepted cookie value (browsers allow about 4 kB for name and value).
_MAX_VALUE_LEN = 1024

# The component's element container is hidden from JavaScript (CSS in the
# component's shadow root cannot reach the container around it).
# ``window.__nnpgCookieRefreshed`` remembers, per page load, which cookies have
# been rewritten once to slide their expiry.
_JS = """
export default function ({ data, parentElement }) {
  const host = parentElement && (parentElement.host || parentElement);
  const box = host && host.closest && host.closest('[data-testid="stElementContainer"]');
  if (box) box.style.display = 'none';
  if (!data || typeof data.name !== 'string' || typeof data.value !== 'string') return;
  const { name, value, maxAge } = data;
  const prefix = name + '=';
  const entry = document.cookie.split('; ').find((c) => c.startsWith(prefix));
  const current = entry === undefined ? null : entry.slice(prefix.length);
  const refreshed = (window.__nnpgCookieRefreshed = window.__nnpgCookieRefreshed || {});
  if (current === value && refreshed[name] === value) return;
  let cookie = prefix + value + '; Max-Age=' + Number(maxAge) + '; Path=/; SameSite=Lax';
  if (location.protocol === 'https:') cookie += '; Secure';
  document.cookie = cookie;
  refreshed[name] = value;
}
"""

# Registered once at import time, as the v2 docs recommend (the mount callable
# re-registers it on a fresh runtime, e.g. a new AppTest, when needed).
_cookie_component = st.components.v2.component(
    "nnpg_browser_cookie", html="", js=_JS, isolate_styles=True,
)


def _check(what: str, text: object, max_len: int) -> str:
    if not isinstance(text, str) or not _SAFE.fullmatch(text) or len(text) > max_len:
        raise ValueError(
            f"cookie {what} must be 1 to {max_len} characters of [A-Za-z0-9_-], got {text!r}"
        )
    return text


def read_cookie(name: str) -> str | None:
    """The cookie ``name`` the browser sent when this session connected, or None.

    None also when there is no browser connection (AppTest, bare mode, no
    script run). A cookie set by :func:`set_cookie` in this same session is not
    seen here until the next session (see the module docstring).
    """
    _check("name", name, 128)
    try:
        value = st.context.cookies.get(name)
    except Exception:  # no runtime at all: nothing was sent
        return None
    return value if isinstance(value, str) and value else None


def set_cookie(name: str, value: str, max_age_days: int, key: str) -> None:
    """Make the browser store cookie ``name=value`` for ``max_age_days`` days.

    Mounts an invisible component (``key`` must be unique in the app) whose
    JavaScript writes ``name=value; Max-Age=...; Path=/; SameSite=Lax`` (plus
    ``Secure`` over HTTPS) when the browser's cookie differs, and once per page
    load to slide the expiry. Call it on every rerun; it is cheap and
    idempotent. ``name`` and ``value`` must match ``[A-Za-z0-9_-]+``;
    ``max_age_days`` must be 1 to 400. Raises ValueError otherwise.
    """
    _check("name", name, 128)
    _check("value", value, _MAX_VALUE_LEN)
    if (isinstance(max_age_days, bool) or not isinstance(max_age_days, int)
            or not 1 <= max_age_days <= COOKIE_MAX_AGE_DAYS_LIMIT):
        raise ValueError(
            f"max_age_days must be an int from 1 to {COOKIE_MAX_AGE_DAYS_LIMIT}, "
            f"got {max_age_days!r}"
        )
    _cookie_component(
        key=key,
        data={"name": name, "value": value, "maxAge": max_age_days * 86400},
        width="stretch",
        height="content",
    )
