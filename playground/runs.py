"""What the pages ask of runs: start, resume, pause, stop, open a stored run, read its state.

A run lives in the run store (:mod:`playground.store`) under an unguessable
id; while it trains, the job runner of the server that trains it holds its
live state. Pages keep only the id of the run on screen (and put it in the
address bar as ``run=<id>``); everything else is read back from the runner or
the store, so a reload, a new tab or a result link shows the same run.
"""

from __future__ import annotations

import io
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from nn_core.training import TrainConfig

from .bundle import Bundle
from .config import RunConfig
from .dataset_cache import (
    builtin_identity,
    current_dataset,
    current_identity,
    dataset_from_identity,
)
from .datasets import Dataset, DatasetError, Prepared, prepare
from .export import estimator_params, train_kwargs
from .jobs import JobRefusedError, JobSpec, Snapshot
from .lesson_state import LessonContext, enforce
from .messages import NetworkSpec
from .resources import get_runner, get_settings, get_store
from .session import Key
from .status import RESUMABLE, Status
from .store import DatasetIdentity, RunRow, StoreUnavailableError

__all__ = ["RunView", "build_spec", "import_bundle", "layer_names", "open_run", "pause_run",
           "resume_run", "run_snapshot", "start_run", "stop_run", "upload_bytes"]

log = logging.getLogger("playground")


@dataclass(frozen=True)
class RunView:
    """A run as the Playground page shows it: its stored row plus the data it trained on."""

    run: RunRow
    config: RunConfig
    dataset: Dataset
    prepared: Prepared
    owned: bool  # False: opened by a result link from another workspace (read-only)

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def layer_names(self) -> list[str]:
        return layer_names(self.config, len(self.prepared.classes))


def n_train(n: int, cfg: RunConfig) -> int:
    """Training-set size after the test and validation splits (as scikit-learn rounds)."""
    n_train = n - math.ceil(n * cfg.test_size / 100)
    if cfg.val_size:
        n_train -= math.ceil(n_train * cfg.val_size / 100)
    return max(1, n_train)


def layer_names(cfg: RunConfig, n_classes: int) -> list[str]:
    hidden = [f"Layer {i + 1} ({u})" for i, u in enumerate(cfg.hidden_layer_sizes)]
    return [*hidden, f"Output ({n_classes})"]


def build_spec(cfg: RunConfig, ds: Dataset) -> tuple[JobSpec, Prepared, int]:
    """Split and scale the data and describe the job; returns (spec, prepared, batch)."""
    if cfg.early_stopping and cfg.val_size == 0:
        raise DatasetError("Early stopping watches the validation loss: set the validation "
                           "split above 0 % or turn early stopping off.")
    prepared = prepare(ds, cfg.test_size, cfg.val_size, cfg.standardize, cfg.seed)
    batch = min(cfg.batch_size, len(prepared.y_train))
    train = TrainConfig(**train_kwargs(cfg, batch))
    network = NetworkSpec(n_features=ds.X.shape[1],
                          hidden_layer_sizes=tuple(cfg.hidden_layer_sizes),
                          n_classes=len(prepared.classes), activation=cfg.activation,
                          init=cfg.init)
    meta = {"estimator": "NeuralNetworkClassifier", "params": estimator_params(cfg, batch),
            "preprocessing": {"mean": prepared.mean.tolist(), "scale": prepared.scale.tolist(),
                              "note": "apply (X - mean) / scale before predicting"},
            "playground": cfg.to_dict()}
    spec = JobSpec(network=network, train=train, seed=cfg.seed, X_train=prepared.X_train,
                   y_train=prepared.y_train, X_val=prepared.X_val, y_val=prepared.y_val,
                   X_test=prepared.X_test, y_test=prepared.y_test, classes=prepared.classes,
                   grid=prepared.grid, meta=meta)
    return spec, prepared, batch


def _in_memory_row(job_id: str, workspace_id: str, cfg: RunConfig, spec: JobSpec,
                   batch: int, number: int) -> RunRow:
    """A run row for a run the store could not take (it lives in this server only)."""
    now = time.time()
    return RunRow(id=job_id, workspace_id=workspace_id, group_id=None, number=number,
                  name=f"Run {number} (not saved)", notes="", pinned=False,
                  config=cfg.to_dict(), dataset_hash="", classes=tuple(spec.classes),
                  n_params=spec.n_params, batch_size=batch,
                  epochs_planned=spec.train.epochs, epochs_done=0, status=Status.QUEUED,
                  message="", server_id=None, created_at=now, started_at=None,
                  finished_at=None, updated_at=now, watched_at=now, train_seconds=None,
                  train_loss=None, val_loss=None, test_accuracy=None, macro_f1=None,
                  has_model=False)


def owners(workspace_id: str | None) -> tuple[str, ...]:
    """Who is asking for a run: this browser's workspace and its network address."""
    keys = [f"ws:{workspace_id}"] if workspace_id else []
    header = get_settings().client_ip_header
    address = (st.context.headers.get(header) if header else None) or st.context.ip_address
    if address:
        keys.append(f"ip:{address.split(',')[0].strip()}")
    return tuple(keys)


def start_run(cfg: RunConfig, workspace_id: str | None, replacing: str | None = None,
              lesson: LessonContext | None = None) -> tuple[RunView, list[str]]:
    """Store and queue a new run; return its view and the names of runs dropped to make room.

    ``replacing``: the run on screen, stopped once the new one is accepted;
    ``lesson``: the lesson step it is trained for (its locks are enforced here,
    on the server, whatever the page showed).

    Raises
    ------
    DatasetError, JobRefusedError, ValueError
        The data, the server's limits or the engine refuse these settings
        (checked before anything is stopped or stored).
    """
    runner = get_runner()
    settings = get_settings()
    enforce(cfg, lesson)
    ds = current_dataset(cfg)
    spec, prepared, batch = build_spec(cfg, ds)
    runner.check(spec)
    TrainConfig(**train_kwargs(cfg, batch)).validate()
    who = owners(workspace_id)
    runner.check_owner(who, exclude=replacing)  # before anything is stopped or stored
    store = get_store()
    dropped: list[str] = []
    run: RunRow | None = None
    if store is not None and workspace_id is not None:
        try:
            run = store.create_run(workspace_id, config=cfg.to_dict(),
                                   dataset=current_identity(cfg), classes=prepared.classes,
                                   n_params=spec.n_params, batch_size=batch,
                                   epochs_planned=spec.train.epochs,
                                   server_id=runner.server_id,
                                   class_id=lesson.class_id if lesson else None,
                                   lesson_step=lesson.step_index if lesson else None)
            dropped = store.enforce_run_limit(workspace_id, settings.max_runs_per_workspace)
        except StoreUnavailableError as exc:
            st.session_state[Key.STORE_PROBLEM] = str(exc)
            run = None
    if replacing is not None:
        stop_run(replacing)
    try:
        job_id = runner.submit(spec, run.id if run else None, owners=who)
    except JobRefusedError as exc:
        if run is not None and store is not None:
            store.set_status(run.id, Status.FAILED, str(exc), finished_at=time.time())
        raise
    if run is None:
        number = st.session_state.get(Key.UNSAVED_RUNS, 0) + 1
        st.session_state[Key.UNSAVED_RUNS] = number
        run = _in_memory_row(job_id, workspace_id or "", cfg, spec, batch, number)
    return RunView(run, cfg, ds, prepared, owned=True), dropped


def open_run(run_id: str, workspace_id: str | None) -> RunView | None:
    """A stored run as a view (None if there is no such run)."""
    store = get_store()
    if store is None:
        return None
    run = store.get_run(run_id)
    if run is None:
        return None
    cfg = RunConfig.from_dict(run.config)
    identity = store.dataset(run.dataset_hash) if cfg.dataset == "Upload CSV" else None
    ds = dataset_from_identity(identity, cfg)
    prepared = prepare(ds, cfg.test_size, cfg.val_size, cfg.standardize, cfg.seed)
    return RunView(run, cfg, ds, prepared, owned=run.workspace_id == workspace_id)


@st.cache_data(show_spinner=False, max_entries=128)
def _stored_state(run_id: str, updated_at: float) -> tuple[tuple, dict[str, Any] | None]:
    """A stored run's records and evaluation, read once per change of the run."""
    store = get_store()
    if store is None:
        return (), None
    return tuple(store.records(run_id)), store.evaluation(run_id)


def run_snapshot(view: RunView) -> Snapshot | None:
    """What is known about the run now: live from this server's runner, else from the store."""
    snap = get_runner().snapshot(view.id)
    if snap is not None:
        return snap
    store = get_store()
    if store is None:
        return snap
    run = store.get_run(view.id)
    if run is None:
        return snap
    if run.active and view.owned and time.time() - (run.watched_at or 0) > 10:
        # Shown live by this page, trained elsewhere: tell its server someone watches.
        store.update_run(run.id, watched_at=time.time())
    records, evaluation = _stored_state(run.id, run.updated_at)
    return Snapshot(job_id=run.id, status=Status(run.status), message=run.message,
                    queue_position=None, epochs_planned=run.epochs_planned, records=records,
                    evaluation=evaluation, model=None, created=run.created_at,
                    started=run.started_at, finished_at=run.finished_at)


def pause_run(run_id: str) -> bool:
    return get_runner().pause(run_id)


def stop_run(run_id: str) -> bool:
    """Stop a run wherever it is: this server's runner, or (another replica's) in the store."""
    if get_runner().stop(run_id):
        return True
    store = get_store()
    if store is None:
        return False
    run = store.get_run(run_id)
    if run is None or run.status not in (Status.PAUSED,):
        return False
    return store.set_status(run_id, Status.STOPPED,
                            f"Stopped while paused after epoch {run.epochs_done}.",
                            only_if=(Status.PAUSED,), finished_at=time.time())


def resume_run(view: RunView) -> None:
    """Continue a paused, stopped or interrupted run from its last checkpoint.

    Raises
    ------
    JobRefusedError
        The run cannot be resumed (not resumable, or the server refuses it).
    """
    runner = get_runner()
    if runner.resume(view.id):
        return
    store = get_store()
    if store is None:
        raise JobRefusedError("The run store is unavailable, so this run cannot be resumed.")
    run = store.get_run(view.id)
    if run is None or run.status not in RESUMABLE:
        raise JobRefusedError("Only a paused, stopped or interrupted run can be resumed.")
    spec, _, _ = build_spec(view.config, view.dataset)
    checkpoint = store.checkpoint(run.id)
    epoch, data = checkpoint if checkpoint is not None else (0, None)
    store.truncate_records(run.id, epoch)
    prior = tuple(store.records(run.id))
    runner.check(spec)
    runner.check_owner(owners(run.workspace_id))
    store.set_status(run.id, Status.QUEUED, "Waiting for a free worker.",
                     server_id=runner.server_id, finished_at=None)
    try:
        runner.submit(spec, run.id, checkpoint=data, prior_records=prior,
                      owners=owners(run.workspace_id))
    except JobRefusedError:
        store.set_status(run.id, run.status, run.message, finished_at=run.finished_at)
        raise


BUNDLE_MESSAGE = "Opened from a run bundle."


def upload_bytes(view: RunView) -> bytes | None:
    """The uploaded file a stored run trained on (None for built-in data sets)."""
    store = get_store()
    if view.config.dataset != "Upload CSV" or store is None or not view.run.dataset_hash:
        return None
    identity = store.dataset(view.run.dataset_hash)
    return None if identity is None else identity.content


def import_bundle(bundle: Bundle, workspace_id: str) -> RunRow:
    """Store a run from a bundle in this workspace; its evaluation is recomputed from the model.

    Raises
    ------
    DatasetError
        The bundle's data set cannot be rebuilt (e.g. its file does not parse).
    StoreUnavailableError
    """
    from nn_core.io import load_network

    from .evaluation import evaluate

    store = get_store()
    if store is None:
        raise StoreUnavailableError("The run store is unavailable: bundles cannot be opened "
                                    "right now.")
    cfg = bundle.config
    if cfg.dataset == "Upload CSV":
        file_name = "data.csv"
        identity = DatasetIdentity("upload", f"Upload: {file_name}", {"file_name": file_name},
                                   bundle.data_csv)
    else:
        identity = builtin_identity(cfg)
    ds = dataset_from_identity(identity, cfg)
    prepared = prepare(ds, cfg.test_size, cfg.val_size, cfg.standardize, cfg.seed)
    network, _, _ = load_network(io.BytesIO(bundle.model))
    if network.n_features != ds.X.shape[1] or network.n_classes != len(prepared.classes):
        raise DatasetError("The bundle's model does not fit its data set (features or "
                           "classes differ).")
    epoch = bundle.records[-1].epoch if bundle.records else 0
    evaluation = evaluate(network, prepared.X_test, prepared.y_test, epoch, prepared.grid)
    run = store.create_run(workspace_id, config=cfg.to_dict(), dataset=identity,
                           classes=prepared.classes, n_params=network.n_params,
                           batch_size=min(cfg.batch_size, len(prepared.y_train)),
                           epochs_planned=cfg.epochs, server_id=None, status=bundle.status,
                           message=BUNDLE_MESSAGE)
    store.add_records(run.id, bundle.records)
    # The bundle's own message is not shown: the page trusts only what it wrote itself.
    store.finish_run(run.id, bundle.status, BUNDLE_MESSAGE, evaluation, bundle.model)
    store.update_run(run.id, name=f"{bundle.name} (from bundle)", notes=bundle.notes)
    return run
