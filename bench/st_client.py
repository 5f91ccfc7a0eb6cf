"""A small Streamlit browser-session emulator speaking the app's WebSocket protocol.

Used by ``bench/jobs_bench.py`` to put a classroom's worth of real Streamlit
sessions on the app server without starting a browser per student (30
Chromium pages on a 2-core machine would take the CPU the server is being
measured on). Each :class:`BrowserSession` does what the Streamlit 1.67
frontend does on the wire, and nothing it does not:

* opens ``ws://HOST:PORT/_stcore/stream`` (subprotocol ``streamlit``, no
  Origin header, so no XSRF cookie is needed) and sends a ``BackMsg``
  ``rerun_script`` with the URL's query string for the first page run;
* after that, reruns carry the ``page_script_hash`` of the last ``NewSession``
  and the query string the server last set (``page_info_changed``: widgets
  bound to query parameters rewrite the address bar);
* presses a button by sending a rerun whose ``WidgetStates`` hold
  ``{id: <button id>, trigger_value: true}``; a widget's id is found in the
  deltas (Streamlit ids of keyed elements end in ``-<key>``);
* answers ``auto_rerun`` messages (``st.fragment(run_every=...)``) like the
  frontend's ``setInterval``: every ``interval`` seconds a ``rerun_script``
  with the fragment id and ``is_auto_rerun``, whether or not the previous run
  has finished; a full-app run (``NewSession`` without fragment ids) and
  ``stop_auto_rerun`` cancel the timers, and a repeated ``auto_rerun`` with
  the same interval keeps the running timer;
* keeps the frontend's ForwardMsg cache (messages marked ``cacheable``, aged
  by finished script runs, ``global.maxCachedMessageAge``), reports its hashes
  in ``cached_message_hashes`` and resolves ``ref_hash`` messages from it, so
  the server sends what it would send to a browser.

Simplification: a browser sends the values of all mounted widgets with every
rerun; these sessions send only the widget that changed (a button trigger).
The server keeps the other widgets' values from the previous run, so the
script does the same work.

Each session records what it is shown: alert texts (``st.info``,
``st.success``, ``st.error``, ...) with their arrival time, exceptions
(tracebacks), progress-bar texts, and counters of runs, messages and bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ContextInfo
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = ["BrowserSession", "SessionError", "Shown"]

#: Prefix of the ids Streamlit generates for elements (``$$ID-<hash>-<key>``).
ID_PREFIX = "$$ID-"
_FINISHED = ForwardMsg.ScriptFinishedStatus
_ALERT_FORMATS = {Alert.ERROR: "error", Alert.WARNING: "warning", Alert.INFO: "info",
                  Alert.SUCCESS: "success"}


class SessionError(RuntimeError):
    """The session could not do what was asked (closed, timed out, no such widget)."""


@dataclass(frozen=True)
class Shown:
    """Something the session displayed: ``kind`` is an alert format
    (``error``, ``warning``, ``info``, ``success``), ``exception`` or ``progress``."""

    t: float  # time.monotonic() when the delta arrived
    kind: str
    text: str


@dataclass
class _Cached:
    encoded: bytes
    run_count: int
    fragment_id: str


@dataclass
class _Stats:
    messages: int = 0
    bytes: int = 0
    back_msgs: int = 0
    auto_reruns_sent: int = 0
    full_runs_finished: int = 0
    fragment_runs_finished: int = 0
    runs_finished_early: int = 0
    ref_hash_hits: int = 0
    cache_misses: int = 0


@dataclass
class _Waiter:
    predicate: Callable[[], bool]
    future: asyncio.Future = field(repr=False)


class BrowserSession:
    """One emulated browser tab on a Streamlit app.

    Parameters
    ----------
    base_url : str
        ``http://127.0.0.1:PORT`` of the app.
    query_string : str
        The URL's query string without ``?`` (e.g. ``"epochs=500"``).
    name : str
        For messages.
    page_name : str
        The page's URL path (``"classroom"`` for ``/classroom``); empty: the default page.
    cookies : dict, optional
        Cookies the browser sends with the WebSocket's upgrade request (a
        workspace cookie, say).
    """

    def __init__(self, base_url: str, query_string: str = "", name: str = "session",
                 page_name: str = "", cookies: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = "ws" + self.base_url.removeprefix("http") + "/_stcore/stream"
        self.query_string = query_string
        self.name = name
        self.page_name = page_name
        self.cookies = dict(cookies or {})
        #: seconds from each auto-rerun sent to its fragment run finished
        self.fragment_latencies: list[float] = []
        self._fragment_sent: dict[str, float] = {}
        self.page_script_hash = ""
        self.widget_ids: dict[str, str] = {}  # user key -> element id
        self.shown: list[Shown] = []
        self.stats = _Stats()
        self.closed_reason: str | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> timer
        self._cache: dict[str, _Cached] = {}
        self._run_count = 0
        self._max_cached_age = 2
        self._has_new_session = False
        self._waiters: list[_Waiter] = []
        self._last_alert: str | None = None
        self._last_progress: str | None = None

    # ---- connection ----------------------------------------------------------
    async def open(self, timeout: float = 30.0) -> None:
        """Connect the WebSocket and start reading ForwardMsgs."""
        headers = ({"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
                   if self.cookies else None)
        self._ws = await asyncio.wait_for(
            connect(self.ws_url, subprotocols=["streamlit"], max_size=None,
                    open_timeout=timeout, ping_interval=None, additional_headers=headers),
            timeout)
        self._reader = asyncio.create_task(self._read_loop(), name=f"{self.name}-reader")

    async def close(self) -> None:
        """Cancel the auto-rerun timers and close the WebSocket (the tab is closed)."""
        self._cancel_timers(list(self._timers))
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self.closed_reason = self.closed_reason or "closed by the client"
        self._fail_waiters()

    @property
    def is_open(self) -> bool:
        return self._ws is not None and self.closed_reason is None

    # ---- what a user does -----------------------------------------------------
    async def load(self, timeout: float = 60.0) -> None:
        """The first page run, as when the tab opens; returns when it has finished."""
        done = self.stats.full_runs_finished
        await self.rerun()
        await self.wait_until(lambda: self.stats.full_runs_finished > done, timeout,
                              "the first page run to finish")

    async def click(self, key: str) -> None:
        """Press the button with ``key`` (its id must have been seen in a delta)."""
        widget_id = self.widget_ids.get(key)
        if widget_id is None:
            raise SessionError(f"{self.name}: no widget with key {key!r} on the page "
                               f"(seen: {sorted(self.widget_ids)})")
        await self.rerun([WidgetState(id=widget_id, trigger_value=True)])

    async def rerun(self, widget_states: Iterable[WidgetState] = (), fragment_id: str = "",
                    is_auto_rerun: bool = False) -> None:
        """Send ``BackMsg.rerun_script`` as the frontend's ``sendRerunBackMsg`` does."""
        if not self.is_open:
            raise SessionError(f"{self.name}: the connection is closed ({self.closed_reason})")
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.widget_states.widgets.extend(widget_states)
        state.page_script_hash = self.page_script_hash
        if not self.page_script_hash and self.page_name:
            state.page_name = self.page_name  # the first run of a page opened by its URL
        state.fragment_id = fragment_id
        state.is_auto_rerun = is_auto_rerun
        state.cached_message_hashes.extend(self._cache)
        state.context_info.CopyFrom(ContextInfo(
            timezone="UTC", timezone_offset=0, locale="en-US", is_embedded=False,
            url=f"{self.base_url}/{self.page_name}?{self.query_string}", color_scheme="light"))
        self._has_new_session = False
        self.stats.back_msgs += 1
        assert self._ws is not None
        try:
            await self._ws.send(msg.SerializeToString())
        except ConnectionClosed as exc:
            self._closed(f"send failed: {exc}")
            raise SessionError(f"{self.name}: {self.closed_reason}") from exc

    async def wait_until(self, predicate: Callable[[], bool], timeout: float,
                         what: str = "a condition") -> None:
        """Wait until ``predicate()`` is true (checked after every ForwardMsg)."""
        if predicate():
            return
        if not self.is_open:
            raise SessionError(f"{self.name}: closed ({self.closed_reason}) while waiting "
                               f"for {what}")
        waiter = _Waiter(predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            raise SessionError(f"{self.name}: timed out after {timeout:.0f} s waiting for "
                               f"{what}") from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    # ---- protocol ---------------------------------------------------------------
    async def _read_loop(self) -> None:
        assert self._ws is not None
        try:
            async for data in self._ws:
                if isinstance(data, str):
                    continue  # Streamlit only sends binary frames
                self.stats.messages += 1
                self.stats.bytes += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg, data)
                self._check_waiters()
            self._closed(f"closed by the server (code {self._ws.close_code})")
        except ConnectionClosed as exc:
            self._closed(f"connection lost: {exc}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not go unnoticed
            self._closed(f"client error: {type(exc).__name__}: {exc}")

    def _closed(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._cancel_timers(list(self._timers))
        self._fail_waiters()

    def _fail_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(SessionError(
                    f"{self.name}: connection closed ({self.closed_reason})"))

    def _check_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.future.done() and waiter.predicate():
                waiter.future.set_result(None)

    def _handle(self, msg: ForwardMsg, data: bytes) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.stats.cache_misses += 1
                return
            self.stats.ref_hash_hits += 1
            cached.run_count = self._run_count
            metadata = msg.metadata
            msg = ForwardMsg()
            msg.ParseFromString(cached.encoded)
            msg.metadata.CopyFrom(metadata)
            kind = msg.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            if msg.hash in self._cache:
                self._cache[msg.hash].run_count = self._run_count
            else:
                self._cache[msg.hash] = _Cached(data, self._run_count, msg.delta.fragment_id)

        if kind == "delta":
            if msg.delta.WhichOneof("type") == "new_element":
                self._element(msg.delta.new_element)
        elif kind == "new_session":
            self._has_new_session = True
            session = msg.new_session
            self.page_script_hash = session.page_script_hash
            if session.config.max_cached_message_age > 0:
                self._max_cached_age = session.config.max_cached_message_age
            if not msg.metadata.run.fragment_ids:  # a full-app run
                self._cancel_timers(list(self._timers))
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._auto_rerun(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._cancel_timers(msg.stop_auto_rerun.fragment_ids)
        elif kind == "script_finished":
            self._script_finished(msg.script_finished, list(msg.metadata.run.fragment_ids))

    def _element(self, element: Element) -> None:
        """Note widget ids (by user key) and what is displayed."""
        etype = element.WhichOneof("type")
        if etype is None:
            return
        body = getattr(element, etype)
        fields = body.DESCRIPTOR.fields_by_name
        if "id" in fields and body.id.startswith(ID_PREFIX):
            parts = body.id.split("-", 2)
            if len(parts) == 3 and parts[2]:
                self.widget_ids[parts[2]] = body.id
        now = time.monotonic()
        if etype == "alert":
            text = body.body
            if text != self._last_alert:  # fragment reruns redraw the same alert
                self._last_alert = text
                self.shown.append(Shown(now, _ALERT_FORMATS.get(body.format, "alert"), text))
        elif etype == "exception":
            self.shown.append(Shown(now, "exception", f"{body.type}: {body.message}"))
        elif etype == "progress" and body.text != self._last_progress:
            self._last_progress = body.text
            self.shown.append(Shown(now, "progress", body.text))

    def _script_finished(self, status: int, fragment_ids: list[str]) -> None:
        """Count the run; age the message cache as the frontend does after a run."""
        if status == _FINISHED.FINISHED_EARLY_FOR_RERUN:
            self.stats.runs_finished_early += 1
            return
        if status == _FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
            self.stats.fragment_runs_finished += 1
            now = time.monotonic()
            for fid in fragment_ids:
                sent = self._fragment_sent.pop(fid, None)
                if sent is not None:
                    self.fragment_latencies.append(now - sent)
        else:
            self.stats.full_runs_finished += 1
        if self._has_new_session:
            # The frontend's ForwardMsgCache.incrementRunCount
            self._run_count += 1
            for h, entry in list(self._cache.items()):
                if fragment_ids and entry.fragment_id not in fragment_ids:
                    continue
                if self._run_count - entry.run_count > self._max_cached_age:
                    del self._cache[h]

    def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        if not fragment_id:
            return
        current = self._timers.get(fragment_id)
        if current is not None and current[0] == interval:
            return
        self._cancel_timers([fragment_id])
        task = asyncio.create_task(self._timer(fragment_id, interval),
                                   name=f"{self.name}-auto-rerun")
        self._timers[fragment_id] = (interval, task)

    async def _timer(self, fragment_id: str, interval: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while self.is_open:
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not self.is_open:
                return
            self.stats.auto_reruns_sent += 1
            self._fragment_sent.setdefault(fragment_id, time.monotonic())
            with contextlib.suppress(SessionError):
                await self.rerun(fragment_id=fragment_id, is_auto_rerun=True)

    def _cancel_timers(self, fragment_ids: Iterable[str]) -> None:
        for fragment_id in fragment_ids:
            entry = self._timers.pop(fragment_id, None)
            if entry is not None:
                entry[1].cancel()
