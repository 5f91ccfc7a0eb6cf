"""The sidebar: the run's buttons, the lesson's step, and every control of a run.

The controls are bound to URL query parameters (the address bar is always a
shareable link to the set-up) and go through a factory that applies the
lesson step's locks and hides.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import streamlit as st

from nn_core.network import Network

from .callbacks import on_pause, on_reset, on_stop, on_train
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
    RunConfig,
    batch_choices,
    fmt_clip,
    fmt_number,
)
from .dataset_cache import current_dataset, dataset_or_error, upload_columns
from .datasets import Dataset, DatasetError
from .jobs import Snapshot
from .lesson_state import LessonContext, apply_step, check_goal, lesson_context
from .resources import get_settings, get_store
from .run_view import config_from_state, current_snapshot, current_view
from .runs import RunView, n_train, run_snapshot
from .session import Key
from .status import ACTIVE, RESUMABLE, Status
from .text import md
from .workspace import known_workspace

__all__ = ["lesson_panel", "page_lesson", "sidebar"]

_BIND: dict[str, Any] = {"bind": "query-params", "persist_state": "session"}
_INIT_NAMES = {"glorot_normal": "Glorot normal", "glorot_uniform": "Glorot uniform",
               "he_normal": "He normal", "he_uniform": "He uniform"}
_DEFAULT = RunConfig()


def _nearest(value: Any, options: list) -> Any:
    if value in options:
        return value
    return min(options, key=lambda o: abs(math.log(max(o, 1e-12)) - math.log(max(value, 1e-12))))


#: A widget drawn through the lesson's locks and hides (see :func:`_controls`).
Control = Callable[..., Any]


def _controls(ctx: LessonContext | None) -> Control:
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
    view: RunView | None = ss.get(Key.VIEW)
    if ctx is not None and view is not None and view.owned \
            and ss.get(Key.GOAL_CHECKED) != view.id:
        snap = run_snapshot(view)
        store = get_store()
        if snap is not None and snap.finished and store is not None:
            ss[Key.GOAL_CHECKED] = view.id
            message = check_goal(ctx, store.get_run(view.id))
            if message:
                ss[Key.RUN_NOTICE] = message
                ctx = lesson_context(known_workspace())
    apply_step(ctx)
    step = ctx.step if ctx is not None else None
    ss[Key.HIDDEN_VALUES] = {k: step.preset[k] for k in step.hide} if step else {}
    return ctx


def sidebar() -> RunConfig:
    """Draw the controls; return the configuration they describe."""
    view = current_view()
    snap = current_snapshot() if view is not None else None
    st.session_state[Key.SIDEBAR_STATUS] = None if snap is None else snap.status
    with st.sidebar:
        _run_buttons(snap if view is not None and view.owned else None)
        ctx = page_lesson()
        lesson_panel(ctx)
        control = _controls(ctx)
        _data_controls(control)
        _network_controls(control)
        ds = _training_controls(control)
        cfg = config_from_state()
        if ds is not None:
            _network_size(ds, cfg)
    return cfg


def _run_buttons(snap: Snapshot | None) -> None:
    """Train, Reset, Pause/Resume and Stop; ``snap`` is the run on screen if it is ours."""
    ss = st.session_state
    active = snap is not None and snap.status in ACTIVE
    resumable = snap is not None and (snap.status in RESUMABLE or snap.status == Status.PAUSED)
    c1, c2 = st.columns([3, 2], gap="small")
    c1.button("Train", key="train", type="primary", on_click=on_train,
              icon=":material/play_arrow:", width="stretch",
              help="Build the network and train it with these settings")
    c2.button("Reset", key="reset", on_click=on_reset, icon=":material/restart_alt:",
              width="stretch",
              help="Stop, clear the view and restore the default (tutorial) settings")
    c1, c2 = st.columns([3, 2], gap="small")
    show_resume = resumable and snap.status != Status.RUNNING
    pausing = ss.get(Key.PAUSE_REQUESTED, False) and active and snap.status == Status.RUNNING
    c1.button("Resume" if show_resume else ("Pausing…" if pausing else "Pause"),
              key="pause", on_click=on_pause,
              args=("resume" if show_resume else "pause",),
              icon=":material/play_circle:" if show_resume else ":material/pause:",
              disabled=not (show_resume or (active and snap.status != Status.PAUSED
                                            and not pausing)),
              width="stretch",
              help="Resume continues from the last checkpoint" if show_resume else
                   "Pause at the end of this epoch; the run keeps its place")
    c2.button("Stop", key="stop", on_click=on_stop, icon=":material/stop:",
              disabled=not active, width="stretch")
    if snap is not None and snap.status == Status.PAUSED:
        ss[Key.PAUSE_REQUESTED] = False


def _data_controls(control: Control) -> None:
    """The data set, its generator's parameters or the upload, the splits and scaling."""
    st.subheader("Data", divider="gray")
    dataset = control(st.selectbox, "Dataset", "dataset", DATASETS, index=0, **_BIND)
    if dataset in GENERATED:
        control(st.slider, "Samples", "n_samples", 100, 2000, _DEFAULT.n_samples, step=50,
                **_BIND)
        control(st.slider, "Noise", "noise", 0.0, 0.5, _DEFAULT.noise, step=0.05, **_BIND)
        if dataset in MULTICLASS_GENERATED:
            control(st.slider, "Classes", "n_classes", 2, 8, _DEFAULT.n_classes, **_BIND)
    if dataset == "Upload CSV":
        _upload_controls()
    control(st.slider, "Test split %", "test_size", 10, 50, _DEFAULT.test_size, step=5,
            help="Share of the samples kept aside to test the trained network", **_BIND)
    control(st.slider, "Validation split %", "val_size", 0, 30, _DEFAULT.val_size, step=5,
            help="Share of the training samples used for the validation curves and "
                 "early stopping", **_BIND)
    control(st.checkbox, "Standardise features", "standardize", value=True,
            help="Scale each feature to mean 0 and variance 1 (fitted on the "
                 "training split)", **_BIND)


def _upload_controls() -> None:
    """The CSV uploader and, once a file parses, its label column."""
    ss = st.session_state
    limit_mb = get_settings().max_upload_mb
    upload = st.file_uploader(
        f"CSV file (up to {limit_mb} MB)", type=["csv", "txt"], key="csv_file",
        help="A header row, numeric feature columns and one label column.")
    if upload is None:
        return
    try:
        columns = upload_columns(upload.getvalue(), limit_mb * 2**20)
    except DatasetError:
        columns = []  # the page explains what is wrong with the file
    if len(columns) >= 2:
        if ss.get("label_column") not in columns:
            ss["label_column"] = columns[-1]
        st.selectbox("Label column", columns, key="label_column")
    # say at once what is wrong with the file, not only on Train
    dataset_or_error(config_from_state())


def _network_controls(control: Control) -> None:
    """Hidden layers, their widths, the activation and the initialisation."""
    s = get_settings()
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


def _training_controls(control: Control) -> Dataset | None:
    """Optimiser, learning rate and schedule, batch size, epochs, regularisation, seed.

    Returns the data set the controls describe (None while an upload does not
    parse): the batch sizes offered depend on its size.
    """
    ss = st.session_state
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
    options = batch_choices(n_train(1000 if ds is None else len(ds.y), cfg))
    default_batch = _nearest(_DEFAULT.batch_size, options)
    if "batch_size" in ss and ss["batch_size"] not in options:
        ss["batch_size"] = _nearest(ss["batch_size"], options)
    control(st.select_slider, "Batch size", "batch_size", options, value=default_batch,
            help=f"Samples per gradient step; {options[-1]} is the whole "
                 "training set (full-batch gradient descent)", **_BIND)
    epochs = [e for e in EPOCH_CHOICES if e <= get_settings().max_epochs]
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
    return ds


def _network_size(ds: Dataset, cfg: RunConfig) -> None:
    """The layer widths and the parameter count of the network the controls describe."""
    sizes = (ds.X.shape[1], *cfg.hidden_layer_sizes, ds.n_classes)
    st.caption(f"Network {' → '.join(map(str, sizes))} · "
               f"{Network.count_parameters(sizes):,} weights and biases")
