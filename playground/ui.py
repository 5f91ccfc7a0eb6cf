"""Thin Streamlit helpers shared by ``app.py`` and the pages.

State, in one place:

* the job runner is one per server (``st.cache_resource``), the job handle one
  per session (``st.cache_resource(scope="session")``, released when the
  session ends, which cancels its job);
* the sidebar widgets hold the configuration; they are bound to URL query
  parameters, so the address bar is always a shareable link to the set-up;
* ``st.session_state["current"]`` is the run on screen and
  ``st.session_state["runs"]`` every finished run of the session (Compare page).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st

from nn_core.network import Network
from nn_core.training import EpochRecord, TrainConfig

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
from .datasets import Dataset, DatasetError, Prepared, csv_columns, load_builtin, parse_csv, prepare
from .export import estimator_params, train_kwargs
from .jobs import ACTIVE, JobRefusedError, JobRunner, JobSpec, SessionJobs, Snapshot
from .settings import Settings, load_settings

log = logging.getLogger("playground")

#: Seconds between refreshes of the progress and curves while a job trains.
POLL_SECONDS = 0.25
#: Seconds between refreshes of a page whose run waits in the queue.
QUEUED_POLL_SECONDS = 1.5
#: Seconds between refreshes of the evaluation charts while a job trains (they
#: cost the browser far more to redraw than the curves do).
EVAL_POLL_SECONDS = 3.0
#: After Train, wait this long at most for the first epoch so the very first
#: redraw already shows a point on the loss curve.
FIRST_RECORD_WAIT = 0.3
#: Finished runs kept per session for the Compare page.
MAX_RUNS = 50
_BIND: dict[str, Any] = {"bind": "query-params", "persist_state": "session"}
_DEFAULT = RunConfig()


# ---- shared resources -------------------------------------------------------
@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False, on_release=JobRunner.shutdown)
def get_runner() -> JobRunner:
    """The server's job runner (one per process, shared by every session).

    Clearing the cache (or shutting the server down) stops its workers.
    """
    return JobRunner(get_settings())


@st.cache_resource(scope="session", on_release=SessionJobs.release, show_spinner=False)
def session_jobs() -> SessionJobs:
    """This session's job handle; released (job cancelled) when the session ends."""
    return SessionJobs(get_runner())


@st.cache_data(show_spinner=False, max_entries=32)
def builtin_dataset(name: str, n_samples: int, noise: float, n_classes: int, seed: int
                    ) -> Dataset:
    return load_builtin(name, n_samples, noise, n_classes, seed)


def guarded(render: Callable) -> Callable:
    """Show a friendly error instead of a traceback if ``render`` fails."""
    @functools.wraps(render)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return render(*args, **kwargs)
        except Exception:
            log.exception("rendering %s failed", render.__name__)
            st.error("Something went wrong while drawing this part of the page. Your runs "
                     "are safe: change a setting or press Reset to continue.")
            return None
    return wrapper


# ---- runs -------------------------------------------------------------------
@dataclass
class RunView:
    """The run shown on the Playground page."""

    job_id: str
    number: int
    config: RunConfig
    dataset: Dataset
    prepared: Prepared
    batch_size: int
    n_params: int
    layer_names: list[str]
    archived: bool = False
    started: float = field(default_factory=time.time)


@dataclass(frozen=True)
class RunRecord:
    """A finished (or stopped) run, kept for the Compare page."""

    number: int
    config: RunConfig
    status: str
    message: str
    records: tuple[EpochRecord, ...]
    summary: dict | None  # final test-set evaluation (nn_core.metrics summary)
    classes: tuple
    model: bytes | None
    batch_size: int
    n_params: int
    finished_at: float

    @property
    def name(self) -> str:
        return f"Run {self.number}"


def runs() -> list[RunRecord]:
    return st.session_state.setdefault("runs", [])


def archive(view: RunView, snap: Snapshot | None) -> None:
    """Keep ``view``'s run in the session history (once)."""
    if view.archived or snap is None:
        return
    view.archived = True
    if not snap.records and snap.status != "diverged":
        return  # cancelled before it trained: nothing to compare
    history = runs()
    history.append(RunRecord(
        number=view.number, config=view.config,
        status=snap.status if snap.finished else "stopped", message=snap.message,
        records=snap.records, summary=snap.evaluation["summary"] if snap.evaluation else None,
        classes=view.prepared.classes, model=snap.model, batch_size=view.batch_size,
        n_params=view.n_params, finished_at=time.time()))
    del history[:-MAX_RUNS]


# ---- configuration ------------------------------------------------------------
def _n_train(n: int, cfg: RunConfig) -> int:
    """Training-set size after the test and validation splits (as scikit-learn rounds)."""
    n_train = n - math.ceil(n * cfg.test_size / 100)
    if cfg.val_size:
        n_train -= math.ceil(n_train * cfg.val_size / 100)
    return max(1, n_train)


def current_dataset(cfg: RunConfig) -> Dataset:
    """The data set the sidebar selects (raises DatasetError for a bad upload)."""
    if cfg.dataset != "Upload CSV":
        return builtin_dataset(cfg.dataset, cfg.n_samples, cfg.noise, cfg.n_classes, cfg.seed)
    upload = st.session_state.get("csv_file")
    if upload is None:
        raise DatasetError("Choose a CSV file to upload: numeric feature columns and one "
                           "label column (the last one unless you pick another).")
    s = get_settings()
    return uploaded_dataset(upload.getvalue(), upload.name, cfg.label_column,
                            s.max_upload_mb * 2**20, s.max_samples)


@st.cache_data(show_spinner=False, max_entries=8)
def uploaded_dataset(data: bytes, file_name: str, label_column: str | None, max_bytes: int,
                     max_rows: int) -> Dataset:
    """Parse an upload once per content and label choice (errors are not cached)."""
    return parse_csv(data, label_column, max_bytes=max_bytes, max_rows=max_rows,
                     name=f"Upload: {file_name}")


@st.cache_data(show_spinner=False, max_entries=8)
def upload_columns(data: bytes, max_bytes: int) -> list[str]:
    """Header of an upload, read once per content (the sidebar asks on every rerun)."""
    return csv_columns(data, max_bytes)


def dataset_or_error(cfg: RunConfig) -> Dataset | None:
    """The selected data set, or ``None`` after showing what is wrong with it."""
    try:
        return current_dataset(cfg)
    except DatasetError as exc:
        st.error(str(exc), icon=":material/error:")
        return None


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


def build_spec(cfg: RunConfig, ds: Dataset) -> tuple[JobSpec, Prepared, int]:
    """Split and scale the data and describe the job; returns (spec, prepared, batch)."""
    if cfg.early_stopping and cfg.val_size == 0:
        raise DatasetError("Early stopping watches the validation loss: set the validation "
                           "split above 0 % or turn early stopping off.")
    prepared = prepare(ds, cfg.test_size, cfg.val_size, cfg.standardize, cfg.seed)
    batch = min(cfg.batch_size, len(prepared.y_train))
    train = TrainConfig(**train_kwargs(cfg, batch))
    network = {"n_features": ds.X.shape[1], "hidden_layer_sizes": cfg.hidden_layer_sizes,
               "n_classes": len(prepared.classes), "activation": cfg.activation,
               "init": "auto", "dtype": "float32"}
    meta = {"estimator": "NeuralNetworkClassifier", "params": estimator_params(cfg, batch),
            "preprocessing": {"mean": prepared.mean.tolist(), "scale": prepared.scale.tolist(),
                              "note": "apply (X - mean) / scale before predicting"},
            "playground": cfg.to_dict()}
    spec = JobSpec(network=network, train=train, seed=cfg.seed, X_train=prepared.X_train,
                   y_train=prepared.y_train, X_val=prepared.X_val, y_val=prepared.y_val,
                   X_test=prepared.X_test, y_test=prepared.y_test, classes=prepared.classes,
                   grid=prepared.grid, meta=meta)
    return spec, prepared, batch


def layer_names(cfg: RunConfig, n_classes: int) -> list[str]:
    hidden = [f"Layer {i + 1} ({u})" for i, u in enumerate(cfg.hidden_layer_sizes)]
    return [*hidden, f"Output ({n_classes})"]


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


def _on_train() -> None:
    if _replayed_train():
        return
    st.session_state.pop("train_error", None)
    st.session_state["pause_requested"] = False
    try:
        cfg = config_from_state()
        ds = current_dataset(cfg)
        spec, prepared, batch = build_spec(cfg, ds)
        jobs = session_jobs()
        view = st.session_state.get("current")
        if view is not None:
            archive(view, jobs.snapshot())  # keep the run being replaced
        job_id = jobs.start(spec)
        deadline = time.monotonic() + FIRST_RECORD_WAIT
        while time.monotonic() < deadline:
            snap = jobs.snapshot()
            if snap is None or snap.records or snap.status not in ("queued", "running"):
                break
            if snap.status == "queued" and snap.queue_position:
                break  # waiting for a worker: nothing to show soon
            time.sleep(0.01)
    except (DatasetError, JobRefusedError) as exc:
        st.session_state["train_error"] = str(exc)
        return
    except ValueError as exc:  # a setting the engine refuses
        st.session_state["train_error"] = f"These settings cannot be trained: {exc}"
        return
    number = st.session_state.get("run_counter", 0) + 1
    st.session_state["run_counter"] = number
    st.session_state["current"] = RunView(
        job_id=job_id, number=number, config=cfg, dataset=ds, prepared=prepared,
        batch_size=batch, n_params=spec.n_params,
        layer_names=layer_names(cfg, len(prepared.classes)))


def _on_pause(action: str) -> None:
    jobs = session_jobs()
    if action == "resume":
        jobs.resume()
        st.session_state["pause_requested"] = False
    else:
        jobs.pause()
        st.session_state["pause_requested"] = True


def _on_stop() -> None:
    session_jobs().stop()
    st.session_state["pause_requested"] = False


def _on_reset() -> None:
    """Back to the tutorial set-up: stop the run, clear the view, default controls."""
    jobs = session_jobs()
    view = st.session_state.get("current")
    if view is not None:
        archive(view, jobs.snapshot())
    jobs.release()
    st.session_state.pop("current", None)
    st.session_state.pop("train_error", None)
    st.session_state["pause_requested"] = False
    defaults = {name: getattr(_DEFAULT, name) for name in WIDGET_FIELDS}
    max_units = get_settings().max_units
    for i, u in enumerate(_DEFAULT.units, start=1):
        defaults[f"units_{i}"] = min(u, max_units)
    st.session_state.update(defaults)


# ---- sidebar ------------------------------------------------------------------
def _nearest(value: Any, options: list) -> Any:
    if value in options:
        return value
    return min(options, key=lambda o: abs(math.log(max(o, 1e-12)) - math.log(max(value, 1e-12))))


def sidebar() -> RunConfig:
    """Draw the controls; return the configuration they describe."""
    s = get_settings()
    jobs = session_jobs()
    snap = jobs.snapshot()
    active = snap is not None and snap.status in ACTIVE
    ss = st.session_state
    with st.sidebar:
        c1, c2 = st.columns([3, 2], gap="small")
        c1.button("Train", key="train", type="primary", on_click=_on_train,
                  icon=":material/play_arrow:", width="stretch",
                  help="Build the network and train it with these settings")
        c2.button("Reset", key="reset", on_click=_on_reset, icon=":material/restart_alt:",
                  width="stretch",
                  help="Stop, clear the view and restore the default (tutorial) settings")
        c1, c2 = st.columns([3, 2], gap="small")
        paused = ss.get("pause_requested", False)
        c1.button("Resume" if paused else "Pause", key="pause", on_click=_on_pause,
                  args=("resume" if paused else "pause",),
                  icon=":material/play_circle:" if paused else ":material/pause:",
                  disabled=not active, width="stretch")
        c2.button("Stop", key="stop", on_click=_on_stop, icon=":material/stop:",
                  disabled=not active, width="stretch")

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
