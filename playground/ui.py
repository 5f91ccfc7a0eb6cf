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
from .resources import get_settings
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
        st.warning(f"This run's data cannot be loaded: {exc}")
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
    values = {name: type(getattr(d, name))(ss.get(name, getattr(d, name)))
              for name in WIDGET_FIELDS}
    units = tuple(int(ss.get(f"units_{i + 1}", d.units[i])) for i in range(MAX_HIDDEN_LAYERS))
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
        new, dropped = start_run(config_from_state(), known_workspace(), replacing)
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


def _on_stop() -> None:
    view: RunView | None = st.session_state.get(VIEW)
    if view is not None and view.owned:
        stop_run(view.id)
    st.session_state["pause_requested"] = False


def _on_train_again(cfg: RunConfig) -> None:
    """Copy a (shared) run's settings into this browser's controls."""
    apply_config(cfg)
    clear_run()
    st.session_state["run_notice"] = ("The settings of that run are in the sidebar now: "
                                      "press Train to train it in your own workspace.")


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


# ---- sidebar ------------------------------------------------------------------
def _nearest(value: Any, options: list) -> Any:
    if value in options:
        return value
    return min(options, key=lambda o: abs(math.log(max(o, 1e-12)) - math.log(max(value, 1e-12))))


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
                  disabled=not (show_resume or (active and snap.status == Status.RUNNING
                                                and not pausing)),
                  width="stretch",
                  help="Resume continues from the last checkpoint" if show_resume else
                       "Pause at the end of this epoch; the run keeps its place")
        c2.button("Stop", key="stop", on_click=_on_stop, icon=":material/stop:",
                  disabled=not active, width="stretch")
        if snap is not None and snap.status == Status.PAUSED:
            ss["pause_requested"] = False

        st.subheader("Data", divider="gray")
        dataset = st.selectbox("Dataset", DATASETS, index=0, key="dataset", **_BIND)
        if dataset in GENERATED:
            st.slider("Samples", 100, 2000, _DEFAULT.n_samples, step=50, key="n_samples",
                      **_BIND)
            st.slider("Noise", 0.0, 0.5, _DEFAULT.noise, step=0.05, key="noise", **_BIND)
            if dataset in MULTICLASS_GENERATED:
                st.slider("Classes", 2, 8, _DEFAULT.n_classes, key="n_classes", **_BIND)
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
        st.slider("Test split %", 10, 50, _DEFAULT.test_size, step=5, key="test_size",
                  help="Share of the samples kept aside to test the trained network",
                  **_BIND)
        st.slider("Validation split %", 0, 30, _DEFAULT.val_size, step=5, key="val_size",
                  help="Share of the training samples used for the validation curves and "
                       "early stopping", **_BIND)
        st.checkbox("Standardise features", value=True, key="standardize",
                    help="Scale each feature to mean 0 and variance 1 (fitted on the "
                         "training split)", **_BIND)

        st.subheader("Network", divider="gray")
        max_layers = min(MAX_HIDDEN_LAYERS, s.max_layers)
        n_layers = st.slider("Hidden layers", 0, max_layers, min(_DEFAULT.n_layers, max_layers),
                             key="n_layers", **_BIND)
        for i in range(1, n_layers + 1):
            default = min(_DEFAULT.units[i - 1], s.max_units)
            st.slider(f"Neurons in layer {i}", 1, s.max_units, default, key=f"units_{i}",
                      **_BIND)
        st.selectbox("Activation", ACTIVATIONS, index=0, key="activation", **_BIND)

        st.subheader("Training", divider="gray")
        st.selectbox("Optimizer", OPTIMIZERS, index=0, key="optimizer", **_BIND)
        st.select_slider("Learning rate", LEARNING_RATES, value=_DEFAULT.learning_rate,
                         format_func=fmt_number, key="learning_rate", **_BIND)
        st.selectbox("Learning-rate schedule", SCHEDULES, index=0, key="lr_schedule", **_BIND)
        cfg = config_from_state()
        try:
            ds = current_dataset(cfg)
        except DatasetError:
            ds = None  # the page says what is wrong with the upload
        options = batch_choices(_n_train(1000 if ds is None else len(ds.y), cfg))
        default_batch = _nearest(_DEFAULT.batch_size, options)
        if "batch_size" in ss and ss["batch_size"] not in options:
            ss["batch_size"] = _nearest(ss["batch_size"], options)
        st.select_slider("Batch size", options, value=default_batch, key="batch_size",
                         help=f"Samples per gradient step; {options[-1]} is the whole "
                              "training set (full-batch gradient descent)", **_BIND)
        epochs = [e for e in EPOCH_CHOICES if e <= s.max_epochs]
        if "epochs" in ss and ss["epochs"] not in epochs:
            ss["epochs"] = _nearest(ss["epochs"], epochs)
        st.select_slider("Epochs", epochs, value=_nearest(_DEFAULT.epochs, epochs),
                         key="epochs", **_BIND)
        st.select_slider("L2", ALPHAS, value=0.0, format_func=fmt_number, key="alpha",
                         help="Weight decay: penalty alpha/2 times the sum of squared weights",
                         **_BIND)
        st.slider("Dropout", 0.0, 0.9, 0.0, step=0.05, key="dropout",
                  help="Share of hidden units switched off at random in each training step",
                  **_BIND)
        st.select_slider("Gradient clipping", CLIP_NORMS, value=0.0, format_func=fmt_clip,
                         key="clip_norm", help="Rescale each step's gradient when its norm "
                         "exceeds this value: a guard against exploding gradients", **_BIND)
        st.checkbox("Early stopping", value=False, key="early_stopping",
                    help="Stop when the validation loss has not improved for 10 epochs and "
                         "keep the best weights", **_BIND)
        st.number_input("Random seed", 0, 2**31 - 1, 0, step=1, key="seed",
                        help="Same seed and settings: the same run, to the last digit",
                        **_BIND)
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
