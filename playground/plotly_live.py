"""Live Plotly charts: a graph that stays mounted and is updated with ``Plotly.react``.

``st.plotly_chart`` draws a new graph whenever its figure changes, so a chart
redrawn four times a second blinks (Streamlit issue #8782; measured here: the
lines were missing on 4-5 % of animation frames). :func:`live_chart` instead
mounts a small ``st.components.v2`` component (inline JavaScript in the page,
no iframe, no shadow root: the graph is ``.st-key-<key> .js-plotly-plot``,
with Plotly's ``data`` and ``layout`` on it) that keeps one Plotly graph and
hands every new figure to ``Plotly.react``: zoom and hover survive
(``uirevision``), nothing is torn down.

Only what changed travels. The server keeps, per chart and session, a mirror of
what the browser's graph holds (:class:`FigureStream`) and sends a difference:
an unchanged layout or trace is left out, and a curve whose first points are
final (``frozen``) gets only the points after them. A whole figure is sent on
the first draw, on every full script run (the element may have been mounted
anew: a page switch, a status change) and when the browser says a difference
does not fit what it holds (the ``resync`` trigger: it was remounted, or
missed a message). Differences are computed against the figure of two
messages back, so one message the browser never rendered costs nothing.
When Streamlit mounts a chart's element anew (it does when a page changes
structure), the browser moves the existing graph into the new element before
painting it, so the chart neither blinks nor needs a whole figure.

The Plotly library is plotly.js's "cartesian" bundle, kept in
``playground/vendor/`` (no CDN: the app works offline; 1.5 MB where the full
bundle of the ``plotly`` package is 4.8 MB and takes a browser about twice as
long to start), served once by Streamlit's static file serving
(``server.enableStaticServing``, ``static/plotly.min.js`` next to ``app.py``)
and cached by the browser; :func:`install_library` copies it there at
start-up. Sending it through the component instead would put 1.5 MB into
every message.

A click on a point can come back to Python: pass ``on_click`` and read the
returned dict (trace, point index, name, x, y, customdata) in that rerun.

In ``AppTest`` (no browser) every run is a full script run, so each mounted
component's data is the whole figure: ``{"layout": ..., "traces": [...]}``.
"""

from __future__ import annotations

import contextlib
import filecmp
import functools
import json
import logging
import math
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

__all__ = ["LIBRARY_FILE", "LIBRARY_VERSION", "FigureStream", "install_library", "library_url",
           "live_chart", "preload_library"]

log = logging.getLogger("playground")

Figure = dict[str, Any]

#: plotly.js, its "cartesian" bundle (npm ``plotly.js-cartesian-dist-min``, MIT licence:
#: ``vendor/plotly.js-LICENSE``): every trace type the live charts draw (scatter, bar,
#: heatmap; layout images) in 1.5 MB instead of the 4.8 MB full bundle the ``plotly``
#: package ships, which a browser takes about twice as long to start (see
#: docs/benchmarks.md, reload). ``st.plotly_chart`` uses Streamlit's own copy.
LIBRARY_SOURCE = Path(__file__).with_name("vendor") / "plotly-cartesian.min.js"
#: Its version (from its header), in the URL: an upgrade is fetched anew.
LIBRARY_VERSION = re.search(rb"\bv(\d+\.\d+\.\d+)\b",
                            LIBRARY_SOURCE.read_bytes()[:300]).group(1).decode()
#: Where Streamlit's static file serving finds it (``static/`` next to app.py).
LIBRARY_FILE = Path(__file__).resolve().parents[1] / "static" / "plotly.min.js"
#: Modification time given to the copy (2020-01-01): see :func:`install_library`.
LIBRARY_MTIME = 1577836800
#: Messages a difference may be behind: one missed message is harmless.
MARGIN = 2

#: loadPlotly(url), shared by the live charts and the preload script.
_LOADER_JS = Path(__file__).with_name("plotly_loader.js").read_text(encoding="utf-8")
_JS = _LOADER_JS + Path(__file__).with_name("plotly_live.js").read_text(encoding="utf-8")
_CSS = ".nnpg-plot { width: 100%; height: 100%; }"
_STATE = "_plotly_live"


def install_library(target: Path = LIBRARY_FILE, source: Path = LIBRARY_SOURCE) -> bool:
    """Put a copy of plotly.min.js where the static file server finds it.

    Copies only when ``target`` is missing or differs from ``source``. The copy
    gets an old modification time (:data:`LIBRARY_MTIME`): the static file
    server sends no ``Cache-Control``, so browsers cache the file for a tenth
    of its age (the URL names the plotly.js version, so an upgrade is fetched
    anew). Returns whether ``target`` holds the library; a read-only app
    directory that already holds it is fine.
    """
    if not (target.exists() and filecmp.cmp(source, target, shallow=False)):
        try:
            target.parent.mkdir(exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)  # atomic: a browser never reads half a file
        except OSError as exc:
            log.error("Live charts cannot load plotly.js: copying %s to %s failed (%s). Copy "
                      "it there when building the image.", source, target, exc)
            return False
    if int(target.stat().st_mtime) != LIBRARY_MTIME:
        with contextlib.suppress(OSError):
            os.utime(target, (LIBRARY_MTIME, LIBRARY_MTIME))
    return True


def library_url() -> str:
    """The URL of plotly.min.js on this server (versioned, so an upgrade is fetched anew)."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return (f"{'/' + base if base else ''}/app/static/{LIBRARY_FILE.name}"
            f"?v=cartesian-{LIBRARY_VERSION}")


def _check_serving() -> None:
    install_library()
    if not st.get_option("server.enableStaticServing"):
        log.error("Live charts need server.enableStaticServing = true (.streamlit/config.toml) "
                  "to load plotly.js.")


_check_serving()

# Registered once at import time (see playground/browser_cookie.py). Not isolated:
# the graph must be in the page's DOM for Plotly's global styles and for tests.
_component = st.components.v2.component(
    "nnpg_plotly_live", js=_JS, css=_CSS, isolate_styles=False,
)


# Fetching plotly.js starts with the page's first element instead of the
# first chart: a hidden ``st.html`` script shares loadPlotly's promise, so the
# library is loaded once, in parallel with the rest of the page. A script, not a
# component: Streamlit runs a component's JavaScript only after importing it as a
# module, which on a reload of a training page comes after the whole page has
# rendered (about as late as the charts themselves); the script runs as soon as
# its element is mounted.
_PRELOAD_HTML = """<script>
(() => {
  const box = document.currentScript && document.currentScript.closest(
    '[data-testid="stElementContainer"]');
  if (box) box.style.display = 'none';
%s
  loadPlotly(%s).catch(() => {}); // a chart that mounts later reports a failure
})();
</script>"""


def preload_library() -> None:
    """Start loading plotly.js in the browser now (call early in every script run)."""
    st.html(_PRELOAD_HTML % (_LOADER_JS, json.dumps(library_url())),
            unsafe_allow_javascript=True)


# ---- figures to messages ------------------------------------------------------------------
def _plain_array(a: np.ndarray) -> list:
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if finite.all():
            return a.tolist()
        out = a.astype(object)
        out[~finite] = None  # JSON has no NaN or infinity: a gap in the line
        return out.tolist()
    if a.dtype.kind in "iub":
        return a.tolist()
    return [_plain(v) for v in a.tolist()]


def _plain(obj: Any) -> Any:
    """``obj`` as JSON-ready Python values (arrays as lists, NaN and infinities as None)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain_array(obj)
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


class FigureStream:
    """The server's mirror of one browser graph: turns figures into messages.

    Message ``seq`` holds, besides what :func:`live_chart` adds, ``rev`` (this
    stream), ``seq``, ``need`` (None for a whole figure, else the oldest
    message whose state this difference applies to), ``layout`` (left out when
    unchanged), ``traces`` (None for an unchanged trace, ``{"_tail": [start,
    x, y]}`` for new points of a curve) and ``frozen``. ``playground/plotly_live.js``
    (``applyMessage``) is the other half.
    """

    def __init__(self, revision: str = "") -> None:
        self.revision = revision
        self.rev = f"{revision}~{secrets.token_hex(4)}"
        self.seq = 0
        self.last: dict[str, Any] | None = None
        self.full_seq = 0
        self.resync_requested = False
        self._meta = ""
        self._layout = ""
        self._skeletons: list[str] = []
        self._changed: list[int] = []  # per part (layout, then traces): seq of the last change
        self._frozen: dict[int, tuple[int, ...]] = {}  # seq -> frozen counts after it
        self._tips: list[tuple] = []  # per curve: its last frozen point
        self._open: list[tuple[list, list]] = []  # per curve: its points after the frozen ones

    def __repr__(self) -> str:
        return f"FigureStream(rev={self.rev!r}, seq={self.seq}, full_seq={self.full_seq})"

    def message(self, figure: Figure, frozen: Sequence[int] | None = None, *,
                full: bool = False, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """The message that brings the browser's graph to ``figure``.

        ``frozen[i]``, if given, is how many leading points of trace ``i``'s
        ``x`` and ``y`` will not change any more (they only grow). The same
        dict as last time is returned when nothing changed (the browser then
        does nothing). ``full`` forces a whole figure.
        """
        meta = meta or {}
        layout = _plain(figure["layout"])
        traces = [_plain(t) for t in figure["data"]]
        curves = frozen is not None
        frozen_t = tuple(int(f) for f in frozen) if curves else (0,) * len(traces)
        skeletons = [_dump({k: v for k, v in t.items() if not (curves and k in ("x", "y"))})
                     for t in traces]
        layout_dump, meta_dump = _dump(layout), _dump(meta)
        tips = [(t["x"][f - 1], t["y"][f - 1]) if curves and f else None
                for t, f in zip(traces, frozen_t)]
        full = (full or self.last is None or self.resync_requested
                or len(traces) != len(self._skeletons)
                or (curves and not self._curves_continue(traces, frozen_t, tips)))
        if not full:
            changed = [layout_dump != self._layout,
                       *(s != old for s, old in zip(skeletons, self._skeletons))]
            grew = curves and any(
                (t["x"][f:], t["y"][f:]) != self._open[i]
                for i, (t, f) in enumerate(zip(traces, self._frozen[self.seq])))
            if not any(changed) and not grew and meta_dump == self._meta:
                return self.last  # type: ignore[return-value]
        self.seq += 1
        seq = self.seq
        if full:
            self.full_seq = seq
            self._changed = [seq] * (len(traces) + 1)
            self._frozen = {}
            msg: dict[str, Any] = {"rev": self.rev, "seq": seq, "need": None,
                                   "layout": layout, "traces": traces}
        else:
            need = max(self.full_seq, seq - MARGIN)
            self._changed = [seq if c else at for c, at in zip(changed, self._changed)]
            msg = {"rev": self.rev, "seq": seq, "need": need}
            if self._changed[0] > need:
                msg["layout"] = layout
            start = self._frozen[need] if curves else None
            parts = []
            for i, t in enumerate(traces):
                if self._changed[i + 1] > need:
                    parts.append(t)
                elif curves:
                    s = start[i]
                    parts.append({"_tail": [s, t["x"][s:], t["y"][s:]]})
                else:
                    parts.append(None)
            msg["traces"] = parts
            self._frozen = {k: v for k, v in self._frozen.items() if k >= need}
        msg["frozen"] = list(frozen_t)
        self._frozen[seq] = frozen_t
        self._layout, self._skeletons, self._meta = layout_dump, skeletons, meta_dump
        self._tips = tips
        self._open = [(t["x"][f:], t["y"][f:]) if curves else None
                      for t, f in zip(traces, frozen_t)]
        self.resync_requested = False
        msg.update(meta)
        self.last = msg
        return msg

    def _curves_continue(self, traces: list[dict], frozen: tuple[int, ...],
                         tips: list) -> bool:
        """Do the curves extend the last ones (frozen points kept, none taken back)?"""
        last = self._frozen.get(self.seq)
        if last is None or len(last) != len(frozen):
            return False
        for t, f, old_f, old_tip in zip(traces, frozen, last, self._tips):
            if f < old_f or len(t["x"]) < old_f or len(t["x"]) != len(t["y"]):
                return False
            if old_f and (t["x"][old_f - 1], t["y"][old_f - 1]) != old_tip:
                return False
        return True


# ---- the Streamlit element ------------------------------------------------------------------
def _streams() -> dict[str, FigureStream]:
    return st.session_state.setdefault(_STATE, {})


def _request_full(key: str) -> None:
    stream = _streams().get(key)
    if stream is not None:
        stream.resync_requested = True


def _full_script_run() -> bool:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx is None or not ctx.fragment_ids_this_run


def live_chart(figure: Figure, key: str, *, revision: str = "",
               frozen: Sequence[int] | None = None,
               on_click: Callable[[], None] | None = None) -> dict[str, Any] | None:
    """Draw ``figure`` (``{"data": [...], "layout": {...}}``) in a graph that stays mounted.

    Parameters
    ----------
    figure : dict
        A Plotly figure as plain data (NumPy arrays allowed); ``layout.height``
        is the element's height.
    key : str
        The chart's key: the graph is ``.st-key-<key> .js-plotly-plot`` in the page.
    revision : str
        What the chart shows (e.g. the run's id). Zoom is kept while it stays
        the same; a new revision starts a new figure.
    frozen : sequence of int, optional
        For curves that only grow: per trace, how many leading points will not
        change any more. Only the points after them are sent.
    on_click : callable, optional
        Called when the user clicks a point; the call returns the point then.

    Returns
    -------
    dict or None
        The clicked point (``trace``, ``point``, ``name``, ``x``, ``y``,
        ``customdata``) in the rerun that a click caused, else None.
    """
    streams = _streams()
    stream = streams.get(key)
    if stream is None or stream.revision != revision:
        stream = streams[key] = FigureStream(revision)
    layout = {**figure["layout"], "uirevision": f"{key}:{revision}"}
    msg = stream.message({"data": figure["data"], "layout": layout}, frozen,
                         full=_full_script_run(),
                         meta={"lib": library_url(), "name": key,
                               "clickable": on_click is not None})
    callbacks: dict[str, Callable[[], None]] = {
        "on_resync_change": functools.partial(_request_full, key)}
    if on_click is not None:
        callbacks["on_click_change"] = on_click
    with st.container(key=key):
        result = _component(key=f"{key}_plotly", data=msg, width="stretch",
                            height=int(layout.get("height", 320)), **callbacks)
    return result.click if on_click is not None else None
