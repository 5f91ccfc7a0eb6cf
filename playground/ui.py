"""The sidebar and its callbacks: the controls every page shares.

* The sidebar widgets hold the configuration; they are bound to URL query
  parameters, so the address bar is always a shareable link to the set-up.
* The run on screen is ``st.session_state[VIEW]`` (a :class:`RunView`) and
  ``run=<id>`` in the address bar; everything else about runs lives in the
  run store and the job runner (:mod:`playground.runs`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from nn_core.network import Network

from .config import (
    ACTIVATIONS,
    ALPHAS,
    CLIP_NORMS,
    DATASETS,
    EPOCH_CHOICES,
    GENERATED,
    INITIALIZERS,
    LEARNING_RATES,
    MAX_HIDDEN_LAYERS,
    MULTICLASS_GENERATED,
    OPTIMIZERS,
    SCHEDULES,
    WIDGET_FIELDS,
    RunConfig,
    batch_choices,
    fmt_clip,
    fmt_number,
)
from .dataset_cache import current_dataset, dataset_or_error, upload_columns
from .datasets import DatasetError
from .jobs import JobRefusedError, Snapshot
from .lesson_state import LessonContext, apply_step, check_goal, lesson_context
from .resources import get_settings, get_store
from .runs import (
    RunView,
    _n_train,
    open_run,
    pause_run,
    resume_run,
    run_snapshot,
    start_run,
    stop_run,
)
from .status import ACTIVE, RESUMABLE, Status
from .store import StoreUnavailableError
from .text import md
from .workspace import known_workspace

log = logging.getLogger("playground")

#: Seconds between refreshes of the progress and curves while a job trains.
POLL_SECONDS = 0.25
#: Seconds between refreshes of a page whose run waits in the queue (or trains
#: on another replica and is read from the store).
QUEUED_POLL_SECONDS = 1.5
#: Seconds between refreshes of the evaluation charts while a job trains (they
#: cost the browser far more to redraw than the curves do).
EVAL_POLL_SECONDS = 3.0
#: After Train, wait this long at most for the first epoch so the very first
#: redraw already shows a point on the loss curve.
FIRST_RECORD_WAIT = 0.3
#: Session-state key of the run on screen.
VIEW = "view"
_BIND: dict[str, Any] = {"bind": "query-params", "persist_state": "session"}
_INIT_NAMES = {"glorot_normal": "Glorot normal", "glorot_uniform": "Glorot uniform",
               "he_normal": "He normal", "he_uniform": "He uniform"}
_DEFAULT = RunConfig()


def guarded(render: Callable) -> Callable:
    """Show a friendly error instead of a traceback if ``render`` fails."""
    @functools.wraps(render)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return render(*args, **kwargs)
        except StoreUnavailableError as exc:
            st.warning(f"{exc} Training still works; stored runs reappear when it is back.",
                       icon=":material/cloud_off:")
            return None
        except Exception:
            log.exception("rendering %s failed", render.__name__)
            st.error("Something went wrong while drawing this part of the page. Your runs "
                     "are safe: change a setting or press Reset to continue.")
            return None
    return wrapper


def callback(action: Callable) -> Callable:
    """A widget callback that can never put a traceback on the page.

    Streamlit runs callbacks before the script; an exception there would be
    shown raw. Store problems and anything unexpected become a message instead.
    """
    @functools.wraps(action)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except StoreUnavailableError as exc:
            st.session_state["train_error"] = str(exc)
        except Exception:
            log.exception("%s failed", action.__name__)
            st.session_state["train_error"] = (
                "Something went wrong with that action. Your runs are safe: try again, or "
                "press Reset.")
        return None
    return wrapper


# ---- the run on screen ----------------------------------------------------------
def current_view() -> RunView | None:
    """The run on screen: this session's, or the one the address bar names (``run=``)."""
    ss = st.session_state
    view: RunView | None = ss.get(VIEW)
    wanted = st.query_params.get("run")
    if view is not None and (wanted is None or wanted == view.id):
        if wanted is None:
            st.query_params["run"] = view.id
        return view
    if wanted is None:
        return None
    try:
        view = open_run(wanted, known_workspace())
    except DatasetError as exc:
        st.warning(f"This run's data cannot be loaded: {md(exc)}")
        view = None
    if view is None:
        del st.query_params["run"]
        ss.pop(VIEW, None)
        ss["train_error"] = ("That run does not exist (any more). Its owner may have "
                             "deleted it.")
        return None
    ss[VIEW] = view
    return view


def show_run(view: RunView) -> None:
    st.session_state[VIEW] = view
    st.query_params["run"] = view.id


def clear_run() -> None:
    st.session_state.pop(VIEW, None)
    if "run" in st.query_params:
        del st.query_params["run"]


def current_snapshot() -> Snapshot | None:
    view = st.session_state.get(VIEW)
    return None if view is None else run_snapshot(view)


def config_from_state() -> RunConfig:
    """Read the configuration from the sidebar widgets' state."""
    ss = st.session_state
    d = _DEFAULT
    # each value cast to the type of its default, so the config holds plain
    # Python ints, floats, bools and strings whatever the widget returned
    # controls a lesson step hides are not drawn: their values come from the step
    hidden = ss.get("_hidden_values", {})
    values = {name: type(getattr(d, name))(hidden.get(name, ss.get(name, getattr(d, name))))
              for name in WIDGET_FIELDS}
    units = tuple(int(hidden.get(f"units_{i + 1}", ss.get(f"units_{i + 1}", d.units[i])))
                  for i in range(MAX_HIDDEN_LAYERS))
    return RunConfig(**values, units=units, label_column=ss.get("label_column"))


def apply_config(cfg: RunConfig) -> None:
    """Set the sidebar widgets to ``cfg`` (Train again, Reset). Call from a callback."""
    values = {name: getattr(cfg, name) for name in WIDGET_FIELDS}
    max_units = get_settings().max_units
    for i, u in enumerate(cfg.units, start=1):
        values[f"units_{i}"] = min(u, max_units)
    st.session_state.update(values)


# ---- callbacks (run before the script, so the widgets' state is current) -------
# Streamlit can run a button's callback twice for one click: when a fragment's
# automatic rerun interrupts the full rerun that handles the click, the click is
# replayed into the next run. So every callback is idempotent: Pause/Resume say
# which of the two they mean, Stop and Reset are harmless twice, and Train
# ignores a click that arrives before the run of the previous Train completed
# (app.py counts completed full runs in ``_runs_completed``).


def _replayed_train() -> bool:
    ss = st.session_state
    completed = ss.get("_runs_completed", 0)
    if ss.get("_train_at_run") == completed:
        return True
    ss["_train_at_run"] = completed
    return False


def run_completed() -> None:
    """Call at the very end of a full script run (see the note above)."""
    st.session_state["_runs_completed"] = st.session_state.get("_runs_completed", 0) + 1


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
def _on_train() -> None:
    if _replayed_train():
        return
    ss = st.session_state
    ss.pop("train_error", None)
    ss.pop("run_notice", None)
    ss["pause_requested"] = False
    view: RunView | None = ss.get(VIEW)
    replacing = view.id if view is not None and view.owned else None
    try:
        new, dropped = start_run(config_from_state(), known_workspace(), replacing,
                                 lesson_context(known_workspace()))
    except (DatasetError, JobRefusedError) as exc:
        ss["train_error"] = str(exc)
        return
    except StoreUnavailableError as exc:
        ss["train_error"] = str(exc)
        return
    except ValueError as exc:  # a setting the engine refuses
        ss["train_error"] = f"These settings cannot be trained: {exc}"
        return
    if dropped:
        limit = get_settings().max_runs_per_workspace
        ss["run_notice"] = (f"Deleted {len(dropped)} of your oldest runs to stay within "
                            f"{limit} runs per workspace: {', '.join(dropped)}. Pin a run "
                            "on the Compare page to keep it.")
    show_run(new)
    _wait_for_first_record(new.id)


@callback
def _on_pause(action: str) -> None:
    ss = st.session_state
    view: RunView | None = ss.get(VIEW)
    if view is None or not view.owned:
        return
    ss.pop("train_error", None)
    if action == "resume":
        ss["pause_requested"] = False
        try:
            resume_run(view)
        except (JobRefusedError, DatasetError, StoreUnavailableError) as exc:
            ss["train_error"] = str(exc)
    else:
        ss["pause_requested"] = pause_run(view.id)


@callback
def _on_stop() -> None:
    view: RunView | None = st.session_state.get(VIEW)
    if view is not None and view.owned:
        stop_run(view.id)
    st.session_state["pause_requested"] = False


@callback
def _on_train_again(cfg: RunConfig) -> None:
    """Copy a (shared) run's settings into this browser's controls."""
    apply_config(cfg)
    clear_run()
    st.session_state["run_notice"] = ("The settings of that run are in the sidebar now: "
                                      "press Train to train it in your own workspace.")


@callback
def _on_reset() -> None:
    """Back to the tutorial set-up: stop the run, clear the view, default controls."""
    view: RunView | None = st.session_state.get(VIEW)
    if view is not None and view.owned:
        stop_run(view.id)
    clear_run()
    st.session_state.pop("train_error", None)
    st.session_state.pop("run_notice", None)
    st.session_state["pause_requested"] = False
    apply_config(_DEFAULT)
    ctx = lesson_context(known_workspace())
    if ctx is not None and ctx.step is not None:
        st.session_state.update(ctx.step.preset)  # Reset in a lesson: the step's set-up


# ---- sidebar ------------------------------------------------------------------
def _nearest(value: Any, options: list) -> Any:
    if value in options:
        return value
    return min(options, key=lambda o: abs(math.log(max(o, 1e-12)) - math.log(max(value, 1e-12))))


def _controls(ctx: LessonContext | None) -> Callable[..., Any]:
    """A widget factory that applies the lesson step's locks and hides."""
    step = ctx.step if ctx is not None else None
    locked = set(step.lock) if step is not None else set()
    hidden = set(step.hide) if step is not None else set()

    def control(widget: Callable[..., Any], label: str, key: str, *args: Any,
                **kwargs: Any) -> Any:
        if key in hidden:
            return step.preset.get(key, st.session_state.get(key))
        if key in locked:
            label = f":material/lock: {label}"
            kwargs["disabled"] = True
            kwargs["help"] = (f"Locked by the lesson for step {ctx.step_index + 1} "
                              f"({step.title}): this step is about the other controls.")
        return widget(label, *args, key=key, **kwargs)
    return control


def lesson_panel(ctx: LessonContext | None) -> None:
    """The lesson's current step at the top of the sidebar."""
    if ctx is None:
        return
    with st.container(key="lesson_panel", border=True):
        head = f"**{md(ctx.lesson.title)}**"
        if ctx.class_title:
            head += f" · class {md(ctx.class_title)} · {md(ctx.student)}"
        st.markdown(head)
        if not ctx.lesson.steps:
            st.caption("Your teacher has not picked a lesson yet: explore freely.")
            return
        if ctx.finished:
            st.success("Every step of this lesson is done.", icon=":material/emoji_events:")
            return
        n = len(ctx.lesson.steps)
        st.progress(ctx.step_index / n, text=f"Step {ctx.step_index + 1} of {n}: "
                                             f"{md(ctx.step.title)}")
        st.markdown(ctx.step.prompt)  # the teacher's Markdown, rendered as written
        if ctx.step.goal is not None:
            st.caption(f"Goal: {md(ctx.step.goal.text)}")
        else:
            st.caption("Goal: train once with these settings.")


def page_lesson() -> LessonContext | None:
    """The lesson of this page, with its step's presets applied and goals checked."""
    ss = st.session_state
    ctx = lesson_context(known_workspace())
    view: RunView | None = ss.get(VIEW)
    if ctx is not None and view is not None and view.owned \
            and ss.get("_goal_checked") != view.id:
        snap = run_snapshot(view)
        store = get_store()
        if snap is not None and snap.finished and store is not None:
            ss["_goal_checked"] = view.id
            message = check_goal(ctx, store.get_run(view.id))
            if message:
                ss["run_notice"] = message
                ctx = lesson_context(known_workspace())
    apply_step(ctx)
    step = ctx.step if ctx is not None else None
    ss["_hidden_values"] = {k: step.preset[k] for k in step.hide} if step else {}
    return ctx


def sidebar() -> RunConfig:
    """Draw the controls; return the configuration they describe."""
    s = get_settings()
    view = current_view()
    snap = current_snapshot() if view is not None else None
    owned = view is not None and view.owned and snap is not None
    active = owned and snap.status in ACTIVE
    resumable = owned and (snap.status in RESUMABLE or snap.status == Status.PAUSED)
    ss = st.session_state
    ss["_sidebar_status"] = None if snap is None else snap.status
    with st.sidebar:
        c1, c2 = st.columns([3, 2], gap="small")
        c1.button("Train", key="train", type="primary", on_click=_on_train,
                  icon=":material/play_arrow:", width="stretch",
                  help="Build the network and train it with these settings")
        c2.button("Reset", key="reset", on_click=_on_reset, icon=":material/restart_alt:",
                  width="stretch",
                  help="Stop, clear the view and restore the default (tutorial) settings")
        c1, c2 = st.columns([3, 2], gap="small")
        show_resume = resumable and snap.status != Status.RUNNING
        pausing = ss.get("pause_requested", False) and active and snap.status == Status.RUNNING
        c1.button("Resume" if show_resume else ("Pausing…" if pausing else "Pause"),
                  key="pause", on_click=_on_pause,
                  args=("resume" if show_resume else "pause",),
                  icon=":material/play_circle:" if show_resume else ":material/pause:",
                  disabled=not (show_resume or (active and snap.status != Status.PAUSED
                                                and not pausing)),
                  width="stretch",
                  help="Resume continues from the last checkpoint" if show_resume else
                       "Pause at the end of this epoch; the run keeps its place")
        c2.button("Stop", key="stop", on_click=_on_stop, icon=":material/stop:",
                  disabled=not active, width="stretch")
        if snap is not None and snap.status == Status.PAUSED:
            ss["pause_requested"] = False
        ctx = page_lesson()
        lesson_panel(ctx)
        control = _controls(ctx)

        st.subheader("Data", divider="gray")
        dataset = control(st.selectbox, "Dataset", "dataset", DATASETS, index=0, **_BIND)
        if dataset in GENERATED:
            control(st.slider, "Samples", "n_samples", 100, 2000, _DEFAULT.n_samples, step=50,
                    **_BIND)
            control(st.slider, "Noise", "noise", 0.0, 0.5, _DEFAULT.noise, step=0.05, **_BIND)
            if dataset in MULTICLASS_GENERATED:
                control(st.slider, "Classes", "n_classes", 2, 8, _DEFAULT.n_classes, **_BIND)
        if dataset == "Upload CSV":
            upload = st.file_uploader(
                f"CSV file (up to {s.max_upload_mb} MB)", type=["csv", "txt"], key="csv_file",
                help="A header row, numeric feature columns and one label column.")
            if upload is not None:
                try:
                    columns = upload_columns(upload.getvalue(), s.max_upload_mb * 2**20)
                except DatasetError:
                    columns = []  # the page explains what is wrong with the file
                if len(columns) >= 2:
                    if ss.get("label_column") not in columns:
                        ss["label_column"] = columns[-1]
                    st.selectbox("Label column", columns, key="label_column")
                # say at once what is wrong with the file, not only on Train
                dataset_or_error(config_from_state())
        control(st.slider, "Test split %", "test_size", 10, 50, _DEFAULT.test_size, step=5,
                help="Share of the samples kept aside to test the trained network", **_BIND)
        control(st.slider, "Validation split %", "val_size", 0, 30, _DEFAULT.val_size, step=5,
                help="Share of the training samples used for the validation curves and "
                     "early stopping", **_BIND)
        control(st.checkbox, "Standardise features", "standardize", value=True,
                help="Scale each feature to mean 0 and variance 1 (fitted on the "
                     "training split)", **_BIND)

        st.subheader("Network", divider="gray")
        max_layers = min(MAX_HIDDEN_LAYERS, s.max_layers)
        n_layers = control(st.slider, "Hidden layers", "n_layers", 0, max_layers,
                           min(_DEFAULT.n_layers, max_layers), **_BIND)
        for i in range(1, int(n_layers) + 1):
            default = min(_DEFAULT.units[i - 1], s.max_units)
            control(st.slider, f"Neurons in layer {i}", f"units_{i}", 1, s.max_units, default,
                    **_BIND)
        control(st.selectbox, "Activation", "activation", ACTIVATIONS, index=0, **_BIND)
        control(st.selectbox, "Initialisation", "init", INITIALIZERS,
                index=INITIALIZERS.index(_DEFAULT.init),
                format_func=lambda k: _INIT_NAMES.get(k, k),
                help="How the first weights are drawn. Glorot (Xavier) keeps the signal's "
                     "variance through tanh and sigmoid layers, the tutorial's choice; He "
                     "doubles it for ReLU, which zeroes half of it.", **_BIND)

        st.subheader("Training", divider="gray")
        control(st.selectbox, "Optimizer", "optimizer", OPTIMIZERS, index=0, **_BIND)
        control(st.select_slider, "Learning rate", "learning_rate", LEARNING_RATES,
                value=_DEFAULT.learning_rate, format_func=fmt_number, **_BIND)
        control(st.selectbox, "Learning-rate schedule", "lr_schedule", SCHEDULES, index=0,
                **_BIND)
        cfg = config_from_state()
        try:
            ds = current_dataset(cfg)
        except DatasetError:
            ds = None  # the page says what is wrong with the upload
        options = batch_choices(_n_train(1000 if ds is None else len(ds.y), cfg))
        default_batch = _nearest(_DEFAULT.batch_size, options)
        if "batch_size" in ss and ss["batch_size"] not in options:
            ss["batch_size"] = _nearest(ss["batch_size"], options)
        control(st.select_slider, "Batch size", "batch_size", options, value=default_batch,
                help=f"Samples per gradient step; {options[-1]} is the whole "
                     "training set (full-batch gradient descent)", **_BIND)
        epochs = [e for e in EPOCH_CHOICES if e <= s.max_epochs]
        if "epochs" in ss and ss["epochs"] not in epochs:
            ss["epochs"] = _nearest(ss["epochs"], epochs)
        control(st.select_slider, "Epochs", "epochs", epochs,
                value=_nearest(_DEFAULT.epochs, epochs), **_BIND)
        control(st.select_slider, "L2", "alpha", ALPHAS, value=0.0, format_func=fmt_number,
                help="Weight decay: penalty alpha/2 times the sum of squared weights", **_BIND)
        control(st.slider, "Dropout", "dropout", 0.0, 0.9, 0.0, step=0.05,
                help="Share of hidden units switched off at random in each training step",
                **_BIND)
        control(st.select_slider, "Gradient clipping", "clip_norm", CLIP_NORMS, value=0.0,
                format_func=fmt_clip, help="Rescale each step's gradient when its norm "
                "exceeds this value: a guard against exploding gradients", **_BIND)
        control(st.checkbox, "Early stopping", "early_stopping", value=False,
                help="Stop when the validation loss has not improved for 10 epochs and "
                     "keep the best weights", **_BIND)
        control(st.number_input, "Random seed", "seed", 0, 2**31 - 1, 0, step=1,
                help="Same seed and settings: the same run, to the last digit", **_BIND)
        cfg = config_from_state()
        if ds is not None:
            # ds was read above the training controls; none of them changes its shape
            sizes = (ds.X.shape[1], *cfg.hidden_layer_sizes, ds.n_classes)
            st.caption(f"Network {' → '.join(map(str, sizes))} · "
                       f"{Network.count_parameters(sizes):,} weights and biases")
    return cfg


def upscale(image: np.ndarray, factor: int = 8) -> np.ndarray:
    """Nearest-neighbour enlargement (keeps the pixels of an 8x8 digit crisp), in [0, 1]."""
    img = image / max(float(image.max()), 1e-9)
    return np.kron(img, np.ones((factor, factor)))
