"""playground.browser_cookie: a cookie set by a v2 component, read back by the server.

Browser tests drive tests/apps/cookie_app.py in Chromium; the AppTest and unit
tests check that nothing raises without a browser and that bad input is refused.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.browser_cookie import read_cookie, set_cookie
from tests.servers import IDLE, ROOT, free_port, log_path, stop, wait_healthy

APP = Path(__file__).resolve().parent / "apps" / "cookie_app.py"
NAME = "nnpg_test"
MAX_AGE_S = 30 * 86400  # cookie_app.py sets max_age_days=30

#: Records every ``document.cookie = ...`` write of the page in ``window.__cookieWrites``.
RECORD_COOKIE_WRITES = """(() => {
  const d = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');
  window.__cookieWrites = [];
  Object.defineProperty(document, 'cookie', {
    get() { return d.get.call(document); },
    set(v) { window.__cookieWrites.push(v); d.set.call(document, v); },
  });
})()"""


# ---- headless: AppTest and plain calls ---------------------------------------
def test_app_runs_under_apptest():
    at = AppTest.from_file(str(APP), default_timeout=10).run()
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert "new" in texts  # AppTest sends no cookies
    at.run()  # a rerun mounts the component again
    assert not at.exception


def test_sidebar_and_probe_under_apptest():
    at = AppTest.from_file(str(APP), default_timeout=10)
    at.query_params["where"] = "sidebar"
    at.query_params["probe"] = "1"
    at.run()
    assert not at.exception
    assert "None" in [m.value for m in at.markdown]


def test_from_string_under_apptest():
    script = """
from playground.browser_cookie import read_cookie, set_cookie
import streamlit as st
st.write(repr(read_cookie("x")))
set_cookie("x", "abc-DEF_123", max_age_days=1, key="k")
with st.sidebar:
    set_cookie("y", "v", max_age_days=400, key="k2")
"""
    at = AppTest.from_string(script, default_timeout=10).run()
    assert not at.exception
    assert at.markdown[0].value == "None"


def test_outside_a_script_run_is_a_no_op():
    assert read_cookie("anything") is None
    set_cookie("anything", "value", max_age_days=1, key="k")


@pytest.mark.parametrize("name, value", [
    ("ok", "a;b"), ("ok", "a b"), ("ok", "x=y"), ("ok", ""), ("ok", "é"), ("ok", "a\n"),
    ("a;b", "ok"), ("", "ok"), ("ok", "'); alert(1); ('"), ("ok", "x" * 1025), ("ok", 5),
])
def test_set_cookie_refuses_unsafe_text(name, value):
    with pytest.raises(ValueError):
        set_cookie(name, value, max_age_days=1, key="k")


@pytest.mark.parametrize("days", [0, -1, 401, 1.5, True, "30"])
def test_set_cookie_refuses_bad_max_age(days):
    with pytest.raises(ValueError):
        set_cookie("ok", "ok", max_age_days=days, key="k")


def test_read_cookie_refuses_unsafe_name():
    with pytest.raises(ValueError):
        read_cookie("a;b")


# ---- browser ------------------------------------------------------------------
@pytest.fixture(scope="module")
def cookie_app_url():
    """``streamlit run tests/apps/cookie_app.py`` on a free port (tests.servers recipe)."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    log_file = log_path(port)
    log_file.parent.mkdir(exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc=proc)
        yield url
    finally:
        stop(proc)


def _open(page, url: str) -> tuple[str, str]:
    """Load (or reload) ``url``; return the shown (value, source)."""
    if page.url.startswith(url):
        page.reload()
    else:
        page.goto(url)
    page.locator(".st-key-cookie_source p").wait_for()
    page.locator(IDLE).wait_for()
    assert page.get_by_test_id("stException").count() == 0
    return (page.locator(".st-key-cookie_value").inner_text().strip(),
            page.locator(".st-key-cookie_source").inner_text().strip())


def _wait_cookie(context, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [c for c in context.cookies() if c["name"] == NAME]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"cookie {NAME} never set; cookies: {context.cookies()}")


@pytest.mark.browser
def test_cookie_survives_reload_and_is_per_browser(page, browser, cookie_app_url):
    page.add_init_script(RECORD_COOKIE_WRITES)
    value, source = _open(page, cookie_app_url)
    assert source == "new"
    assert len(value) >= 20

    cookie = _wait_cookie(page.context)
    assert cookie["value"] == value
    assert cookie["path"] == "/"
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain http
    assert cookie["httpOnly"] is False
    assert abs(cookie["expires"] - (time.time() + MAX_AGE_S)) < 120
    assert page.evaluate("window.__cookieWrites") == [
        f"{NAME}={value}; Max-Age={MAX_AGE_S}; Path=/; SameSite=Lax"]

    # A reload is a new session: the server now reads the cookie.
    assert _open(page, cookie_app_url) == (value, "cookie")
    # One write per page load slides the expiry forward ...
    page.wait_for_function("window.__cookieWrites.length === 1")
    # ... and reruns do not write again.
    page.goto(f"{cookie_app_url}/?probe=1")
    page.locator(".st-key-cookie_seen p").wait_for()
    page.get_by_role("button", name="Rerun").click()
    page.locator(IDLE).wait_for()
    page.wait_for_timeout(500)
    assert page.evaluate("window.__cookieWrites.length") == 1
    assert page.locator(".st-key-cookie_value").inner_text().strip() == value
    assert page.locator(".st-key-cookie_seen").inner_text().strip() == value

    # Another browser (a fresh context: no cookies) gets its own value.
    other = browser.new_context()
    try:
        other_page = other.new_page()
        other_value, other_source = _open(other_page, cookie_app_url)
        assert other_source == "new"
        assert other_value != value
        assert _wait_cookie(other)["value"] == other_value
    finally:
        other.close()
    assert [c["value"] for c in page.context.cookies() if c["name"] == NAME] == [value]


@pytest.mark.browser
def test_cookie_set_in_this_session_is_not_read_until_the_next(page, cookie_app_url):
    """st.context.cookies is the WebSocket upgrade request's: fixed for the session."""
    page.goto(f"{cookie_app_url}/?probe=1")
    page.locator(".st-key-cookie_seen p").wait_for()
    page.locator(IDLE).wait_for()
    value = page.locator(".st-key-cookie_value").inner_text().strip()
    assert _wait_cookie(page.context)["value"] == value
    for _ in range(2):
        page.get_by_role("button", name="Rerun").click()
        page.locator(IDLE).wait_for()
        page.wait_for_timeout(300)
        assert page.locator(".st-key-cookie_seen").inner_text().strip() == "None"
        assert page.locator(".st-key-cookie_source").inner_text().strip() == "new"
        assert page.locator(".st-key-cookie_value").inner_text().strip() == value
    page.reload()
    page.locator(IDLE).wait_for()
    page.locator(".st-key-cookie_seen p").wait_for()
    assert page.locator(".st-key-cookie_seen").inner_text().strip() == value


@pytest.mark.browser
@pytest.mark.parametrize("where", ["main", "sidebar"])
def test_component_is_invisible_and_works_anywhere(page, cookie_app_url, where):
    page.goto(f"{cookie_app_url}/?where={where}")
    page.locator(".st-key-cookie_source p").wait_for()
    page.locator(IDLE).wait_for()
    value = page.locator(".st-key-cookie_value").inner_text().strip()
    assert _wait_cookie(page.context)["value"] == value

    setter = page.locator(".st-key-cookie_setter")
    parent = "stSidebar" if where == "sidebar" else "stMain"
    assert page.get_by_test_id(parent).locator(".st-key-cookie_setter").count() == 1
    setter.wait_for(state="hidden")
    assert setter.evaluate("e => getComputedStyle(e).display") == "none"
    # No gap where the component is: "before" -> "after" is spaced like any two
    # neighbouring elements ("after" -> the value's container).
    boxes = [page.locator(".stElementContainer").filter(has_text=t).first.bounding_box()
             for t in ("before", "after")]
    value_box = page.locator(".st-key-cookie_value").bounding_box()
    step = boxes[1]["y"] - boxes[0]["y"]
    assert abs(step - (value_box["y"] - boxes[1]["y"])) < 1
    assert page.get_by_test_id("stException").count() == 0
