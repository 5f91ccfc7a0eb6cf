"""Server-wide resources, one per process (``st.cache_resource``), shared by every session.

Only things that are the same for every user live here: the settings, the
run store's connection pool and the job runner. Nothing per user (DESIGN.md).
"""

from __future__ import annotations

import logging

import streamlit as st

from .jobs import JobRunner
from .parser_process import ParserProcess
from .session import Key
from .settings import Settings, load_settings
from .store import RunStore, StoreUnavailableError

__all__ = ["get_parser", "get_runner", "get_settings", "get_store", "store_problem"]

log = logging.getLogger("playground")


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False, on_release=RunStore.close)
def _open_store() -> RunStore:
    """The run store, its schema migrated (raises while the database is unavailable;
    exceptions are not cached, so the next rerun tries again)."""
    store = RunStore(get_settings().store_url)
    log.info("run store ready: %r", store)
    settings = get_settings()
    try:
        dropped = store.purge_stale_workspaces(settings.retention_days)
        if dropped:
            log.info("deleted %d workspaces nobody opened for %d days", dropped,
                     settings.retention_days)
    except StoreUnavailableError as exc:
        log.warning("retention sweep skipped: %s", exc)
    return store


def get_store() -> RunStore | None:
    """The run store, or None (after logging why) while it cannot be opened."""
    try:
        store = _open_store()
    except StoreUnavailableError as exc:
        st.session_state[Key.STORE_PROBLEM] = str(exc)
        log.warning("%s", exc)
        return None
    return store


def store_problem() -> str | None:
    """Why runs are not being saved right now, in plain words (None: all is well)."""
    problem = st.session_state.pop(Key.STORE_PROBLEM, None)
    if problem is None:
        runner = get_runner()
        problem = runner.store_error
    return problem


@st.cache_resource(show_spinner=False, on_release=JobRunner.shutdown)
def get_runner() -> JobRunner:
    """The server's job runner (one per process, shared by every session).

    Clearing the cache (or shutting the server down) stops its workers.
    """
    get_store()  # migrate first, so workers write to an up-to-date schema
    get_parser()  # warm: the first upload should not wait for it to start
    settings = get_settings()
    return JobRunner(settings, store_url=settings.store_url)


@st.cache_resource(show_spinner=False, on_release=ParserProcess.close)
def get_parser() -> ParserProcess:
    """The helper process that parses CSV uploads (off the server's GIL)."""
    parser = ParserProcess()
    parser.start()
    return parser
