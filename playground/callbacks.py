"""What the sidebar's buttons do (widget callbacks: run before the script, so the
widgets' state is current; each guarded, so an error becomes a message)."""

from __future__ import annotations

import time

import streamlit as st

from .config import RunConfig
from .datasets import DatasetError
from .guards import callback
from .jobs import JobRefusedError
from .lesson_state import lesson_context
from .refresh import FIRST_RECORD_WAIT
from .resources import get_settings
from .run_view import apply_config, clear_run, config_from_state, show_run
from .runs import RunView, pause_run, resume_run, start_run, stop_run
from .session import Key
from .status import Status
from .store import StoreUnavailableError
from .workspace import known_workspace

__all__ = ["on_pause", "on_reset", "on_stop", "on_train", "on_train_again", "run_completed"]

_DEFAULT = RunConfig()

# Streamlit can run a button's callback twice for one click: when a fragment's
# automatic rerun interrupts the full rerun that handles the click, the click is
# replayed into the next run. So every callback is idempotent: Pause/Resume say
# which of the two they mean, Stop and Reset are harmless twice, and Train
# ignores a click that arrives before the run of the previous Train completed
# (app.py counts completed full runs in ``_runs_completed``).


def _replayed_train() -> bool:
    ss = st.session_state
    completed = ss.get(Key.RUNS_COMPLETED, 0)
    if ss.get(Key.TRAIN_AT_RUN) == completed:
        return True
    ss[Key.TRAIN_AT_RUN] = completed
    return False


def run_completed() -> None:
    """Call at the very end of a full script run (see the note above)."""
    st.session_state[Key.RUNS_COMPLETED] = st.session_state.get(Key.RUNS_COMPLETED, 0) + 1


def _wait_for_first_record(run_id: str) -> None:
    """Give a fast start a moment, so the first redraw already has a loss point."""
    from .resources import get_runner

    runner = get_runner()
    deadline = time.monotonic() + FIRST_RECORD_WAIT
    while time.monotonic() < deadline:
        snap = runner.snapshot(run_id)
        if snap is None or snap.records or snap.status not in (Status.QUEUED, Status.RUNNING):
            return
        if snap.status == Status.QUEUED and snap.queue_position:
            return  # waiting for a worker: nothing to show soon
        time.sleep(0.01)


@callback
def on_train() -> None:
    if _replayed_train():
        return
    ss = st.session_state
    ss.pop(Key.TRAIN_ERROR, None)
    ss.pop(Key.RUN_NOTICE, None)
    ss[Key.PAUSE_REQUESTED] = False
    view: RunView | None = ss.get(Key.VIEW)
    replacing = view.id if view is not None and view.owned else None
    try:
        new, dropped = start_run(config_from_state(), known_workspace(), replacing,
                                 lesson_context(known_workspace()))
    except (DatasetError, JobRefusedError) as exc:
        ss[Key.TRAIN_ERROR] = str(exc)
        return
    except StoreUnavailableError as exc:
        ss[Key.TRAIN_ERROR] = str(exc)
        return
    except ValueError as exc:  # a setting the engine refuses
        ss[Key.TRAIN_ERROR] = f"These settings cannot be trained: {exc}"
        return
    if dropped:
        limit = get_settings().max_runs_per_workspace
        ss[Key.RUN_NOTICE] = (f"Deleted {len(dropped)} of your oldest runs to stay within "
                            f"{limit} runs per workspace: {', '.join(dropped)}. Pin a run "
                            "on the Compare page to keep it.")
    show_run(new)
    _wait_for_first_record(new.id)


@callback
def on_pause(action: str) -> None:
    ss = st.session_state
    view: RunView | None = ss.get(Key.VIEW)
    if view is None or not view.owned:
        return
    ss.pop(Key.TRAIN_ERROR, None)
    if action == "resume":
        ss[Key.PAUSE_REQUESTED] = False
        try:
            resume_run(view)
        except (JobRefusedError, DatasetError, StoreUnavailableError) as exc:
            ss[Key.TRAIN_ERROR] = str(exc)
    else:
        ss[Key.PAUSE_REQUESTED] = pause_run(view.id)


@callback
def on_stop() -> None:
    view: RunView | None = st.session_state.get(Key.VIEW)
    if view is not None and view.owned:
        stop_run(view.id)
    st.session_state[Key.PAUSE_REQUESTED] = False


@callback
def on_train_again(cfg: RunConfig) -> None:
    """Copy a (shared) run's settings into this browser's controls."""
    apply_config(cfg)
    clear_run()
    st.session_state[Key.RUN_NOTICE] = ("The settings of that run are in the sidebar now: "
                                      "press Train to train it in your own workspace.")


@callback
def on_reset() -> None:
    """Back to the tutorial set-up: stop the run, clear the view, default controls."""
    view: RunView | None = st.session_state.get(Key.VIEW)
    if view is not None and view.owned:
        stop_run(view.id)
    clear_run()
    st.session_state.pop(Key.TRAIN_ERROR, None)
    st.session_state.pop(Key.RUN_NOTICE, None)
    st.session_state[Key.PAUSE_REQUESTED] = False
    apply_config(_DEFAULT)
    ctx = lesson_context(known_workspace())
    if ctx is not None and ctx.step is not None:
        st.session_state.update(ctx.step.preset)  # Reset in a lesson: the step's set-up
