"""Run bundles: one ``.zip`` with a run's model, settings and history, to keep or share.

A bundle holds

``run.json``
    ``{"format": "nn-playground.run/1", "name", "notes", "status", "message",
    "config", "classes", "n_params", "batch_size", "epochs_planned", "created_at",
    "dataset": {"kind", "name", "params"}, "records": [EpochRecord.to_dict(), ...]}``
``model.npz``
    the trained network (:mod:`nn_core.io`, loadable by
    ``NeuralNetworkClassifier.load``)
``data.csv``
    only for runs on an uploaded file: that file, so the bundle reopens anywhere.

Uploading a bundle is server input from anyone: :func:`read_bundle` bounds
the archive (size, members, uncompressed sizes, ratio) *before* inflating
anything, never unpickles, checks every field's type and raises
:class:`BundleError` with a readable message for anything else.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from nn_core.io import load_network
from nn_core.training import EpochRecord

from .config import RunConfig
from .status import FINISHED, Status

__all__ = ["FORMAT", "Bundle", "BundleError", "make_bundle", "read_bundle"]

FORMAT = "nn-playground.run/1"
_MEMBERS = {"run.json", "model.npz", "data.csv"}
_MAX_JSON = 8 * 2**20  # 2,000 epochs of records are ~1 MB
_MAX_RATIO = 200  # uncompressed / compressed, per member (zip bombs)


class BundleError(ValueError):
    """A bundle that cannot be opened; the message says why."""


@dataclass(frozen=True)
class Bundle:
    """The validated contents of a run bundle."""

    name: str
    notes: str
    status: Status
    message: str
    config: RunConfig
    classes: tuple
    records: tuple[EpochRecord, ...]
    model: bytes
    data_csv: bytes | None
    dataset_name: str


def make_bundle(view: Any, snap: Any, model: bytes | None, data_csv: bytes | None) -> bytes:
    """The bundle of a run on screen (``view``: :class:`playground.runs.RunView`;
    ``data_csv``: the uploaded file it trained on, if any)."""
    run = view.run
    meta = {"format": FORMAT, "name": run.name, "notes": run.notes,
            "status": str(snap.status), "message": snap.message,
            "config": view.config.to_dict(),
            "classes": [c.item() if isinstance(c, np.generic) else c
                        for c in view.prepared.classes],
            "n_params": run.n_params, "batch_size": run.batch_size,
            "epochs_planned": run.epochs_planned, "created_at": run.created_at,
            "dataset": {"name": view.dataset.name},
            "records": [_record_json(r) for r in snap.records]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("run.json", json.dumps(meta, allow_nan=False))
        if model:
            z.writestr("model.npz", model)
        if data_csv:
            z.writestr("data.csv", data_csv)
    return buf.getvalue()


def _record_json(r: EpochRecord) -> dict[str, Any]:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, (tuple, list)):
            return [clean(x) for x in v]
        return v
    return {k: clean(v) for k, v in r.to_dict().items()}


def _check_zip(data: bytes, max_bytes: int) -> zipfile.ZipFile:
    if len(data) > max_bytes:
        raise BundleError(f"The file is {len(data) / 2**20:.1f} MB; a run bundle may be at "
                          f"most {max_bytes / 2**20:.0f} MB.")
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BundleError("This is not a run bundle (not a .zip file). Download a bundle "
                          "with 'Run bundle (.zip)' on the Playground page.") from exc
    names = [i.filename for i in infos]
    if len(names) != len(set(names)) or not set(names) <= _MEMBERS or "run.json" not in names:
        raise BundleError("This .zip is not a run bundle: it must hold run.json and "
                          "model.npz (and data.csv for an uploaded data set), nothing else.")
    for info in infos:
        limit = _MAX_JSON if info.filename == "run.json" else max_bytes
        if info.file_size > limit or info.file_size > _MAX_RATIO * max(info.compress_size, 1):
            raise BundleError(f"{info.filename} in this bundle is too large when unpacked "
                              f"({info.file_size / 2**20:.1f} MB).")
    return z


def _read(z: zipfile.ZipFile, name: str) -> bytes:
    try:
        return z.read(name)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as exc:
        raise BundleError(f"{name} in this bundle is damaged ({type(exc).__name__}).") from exc


def _field(meta: dict, name: str, kind: type | tuple[type, ...]) -> Any:
    value = meta.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BundleError(f"run.json: '{name}' is missing or has the wrong type.")
    return value


def _records(raw: Any, n_layers: int) -> tuple[EpochRecord, ...]:
    if not isinstance(raw, list) or len(raw) > 100_000:
        raise BundleError("run.json: 'records' must be a list of epoch records.")
    out = []
    nan = float("nan")
    for i, r in enumerate(raw, 1):
        try:
            norms_w = tuple(nan if v is None else float(v) for v in r["weight_norms"])
            norms_g = tuple(nan if v is None else float(v) for v in r["grad_norms"])
            record = EpochRecord(
                epoch=int(r["epoch"]), train_loss=_number(r.get("train_loss"), nan),
                train_accuracy=float(r["train_accuracy"]),
                val_loss=_number(r.get("val_loss"), None),
                val_accuracy=_number(r.get("val_accuracy"), None),
                learning_rate=float(r["learning_rate"]),
                elapsed=float(r["elapsed"]), epoch_seconds=float(r["epoch_seconds"]),
                samples_per_second=float(r["samples_per_second"]),
                weight_norms=norms_w, grad_norms=norms_g)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise BundleError(f"run.json: epoch record {i} is malformed.") from exc
        if record.epoch != i or len(norms_w) != n_layers or len(norms_g) != n_layers:
            raise BundleError(f"run.json: epoch record {i} does not fit this run.")
        out.append(record)
    return tuple(out)


def _number(value: Any, missing: float | None) -> float | None:
    return missing if value is None else float(value)


def read_bundle(data: bytes, max_bytes: int) -> Bundle:
    """Validate and unpack a run bundle.

    Raises
    ------
    BundleError
        For anything that is not a well-formed bundle (message for the user).
    """
    z = _check_zip(data, max_bytes)
    with z:
        names = set(z.namelist())
        try:
            meta = json.loads(_read(z, "run.json").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise BundleError("run.json in this bundle is not valid JSON.") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise BundleError(f"This bundle's format is not {FORMAT!r}.")
        if "model.npz" not in names:
            raise BundleError("This bundle has no model.npz: only finished runs with a "
                              "trained model can be opened.")
        model = _read(z, "model.npz")
        data_csv = _read(z, "data.csv") if "data.csv" in names else None
    try:
        config = RunConfig.from_dict(_field(meta, "config", dict))
    except (TypeError, ValueError, OverflowError) as exc:
        raise BundleError("run.json: 'config' does not describe a playground run.") from exc
    try:
        network, _, _ = load_network(io.BytesIO(model))
    # nn_core raises ValueError for a malformed model; the rest guards crafted files.
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError,
            MemoryError) as exc:
        raise BundleError(f"model.npz in this bundle cannot be loaded: {exc}") from exc
    if network.hidden_layer_sizes != config.hidden_layer_sizes:
        raise BundleError("model.npz does not match the bundle's settings (hidden layers).")
    raw_classes = _field(meta, "classes", list)
    if len(raw_classes) != network.n_classes:
        raise BundleError("run.json: 'classes' does not match the model.")
    status_text = _field(meta, "status", str)
    status = Status(status_text) if status_text in set(Status) else Status.STOPPED
    if status not in FINISHED:
        status = Status.STOPPED
    if config.dataset == "Upload CSV" and data_csv is None:
        raise BundleError("This bundle's run trained on an uploaded file, but data.csv is "
                          "missing from it.")
    return Bundle(
        name=str(_field(meta, "name", str))[:200], notes=str(meta.get("notes") or "")[:5000],
        status=status, message=str(meta.get("message") or "")[:2000], config=config,
        classes=tuple(raw_classes), records=_records(meta.get("records"),
                                                     len(config.hidden_layer_sizes) + 1),
        model=model, data_csv=data_csv,
        dataset_name=str(_field(meta, "dataset", dict).get("name", config.dataset))[:200])
