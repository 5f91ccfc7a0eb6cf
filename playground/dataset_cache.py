"""The data sets the pages draw and train on, parsed or generated once per content.

Built-in sets are generated once per parameter set and uploads parsed once
per file content (``st.cache_data``); a stored run's data set comes back from
its configuration (built-in) or from the store's copy of the file (upload).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from .config import RunConfig
from .datasets import Dataset, DatasetError, load_builtin
from .resources import get_parser, get_settings
from .store import DatasetIdentity
from .text import md

__all__ = ["builtin_dataset", "builtin_identity", "current_dataset", "current_identity",
           "dataset_from_identity", "dataset_or_error", "upload_columns", "uploaded_dataset"]

UPLOAD = "Upload CSV"


@st.cache_data(show_spinner=False, max_entries=32)
def builtin_dataset(name: str, n_samples: int, noise: float, n_classes: int, seed: int
                    ) -> Dataset:
    return load_builtin(name, n_samples, noise, n_classes, seed)


@st.cache_data(show_spinner=False, max_entries=16)
def _parsed(kind: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
    """An upload parsed in the helper process, once per content and arguments.

    A failure is cached too (as its message): a bad file is read once, not on
    every rerun of every page that shows it.
    """
    try:
        return get_parser().call(kind, data, *args, **kwargs)
    except DatasetError as exc:
        return _Failed(str(exc))


class _Failed(str):
    """The message of an upload that could not be read (a cached failure)."""


def _unwrap(result: Any) -> Any:
    if isinstance(result, _Failed):
        raise DatasetError(str(result))
    return result


def uploaded_dataset(data: bytes, file_name: str, label_column: str | None, max_bytes: int,
                     max_rows: int) -> Dataset:
    """Parse an upload (off the server's GIL) once per content and label choice."""
    return _unwrap(_parsed("parse", data, label_column, max_bytes=max_bytes, max_rows=max_rows,
                           name=f"Upload: {file_name}"))


def upload_columns(data: bytes, max_bytes: int) -> list[str]:
    """Header of an upload, read once per content (the sidebar asks on every rerun)."""
    return _unwrap(_parsed("columns", data, max_bytes))


def _builtin(cfg: RunConfig) -> Dataset:
    return builtin_dataset(cfg.dataset, cfg.n_samples, cfg.noise, cfg.n_classes, cfg.seed)


def _parse_upload(data: bytes, file_name: str, cfg: RunConfig) -> Dataset:
    s = get_settings()
    return uploaded_dataset(data, file_name, cfg.label_column, s.max_upload_mb * 2**20,
                            s.max_samples)


def current_dataset(cfg: RunConfig) -> Dataset:
    """The data set the sidebar selects (raises DatasetError for a bad upload)."""
    if cfg.dataset != UPLOAD:
        return _builtin(cfg)
    upload = st.session_state.get("csv_file")
    if upload is None:
        raise DatasetError("Choose a CSV file to upload: numeric feature columns and one "
                           "label column (the last one unless you pick another).")
    return _parse_upload(upload.getvalue(), upload.name, cfg)


def builtin_identity(cfg: RunConfig) -> DatasetIdentity:
    """A built-in data set's identity: its name and generator parameters."""
    return DatasetIdentity("builtin", cfg.dataset, {
        "n_samples": cfg.n_samples, "noise": cfg.noise, "n_classes": cfg.n_classes,
        "seed": cfg.seed})


def current_identity(cfg: RunConfig) -> DatasetIdentity:
    """What the store keeps of the selected data set: generator parameters or the file."""
    if cfg.dataset != UPLOAD:
        return builtin_identity(cfg)
    upload = st.session_state.get("csv_file")
    if upload is None:
        raise DatasetError("Choose a CSV file to upload.")
    return DatasetIdentity("upload", f"Upload: {upload.name}", {"file_name": upload.name},
                           upload.getvalue())


def dataset_from_identity(identity: DatasetIdentity | None, cfg: RunConfig) -> Dataset:
    """The data set a stored run trained on (raises DatasetError if it is gone)."""
    if cfg.dataset != UPLOAD:
        return _builtin(cfg)
    if identity is None or identity.content is None:
        raise DatasetError("The uploaded file of this run is no longer stored.")
    return _parse_upload(identity.content, str(identity.params.get("file_name", "data.csv")),
                         cfg)


def dataset_or_error(cfg: RunConfig) -> Dataset | None:
    """The selected data set, or ``None`` after showing what is wrong with it."""
    try:
        return current_dataset(cfg)
    except DatasetError as exc:
        st.error(md(exc), icon=":material/error:")
        return None
