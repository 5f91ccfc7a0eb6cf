"""Saving and loading trained networks as ``.npz`` archives. Nothing is pickled.

An archive holds:

=================  ==========================================================
``nn_core_format`` the string ``"nn_core.model"`` (identifies the file)
``format_version`` integer, currently 1
``config``         JSON text: the architecture (``network``) and free-form
                   metadata (``meta``: e.g. the estimator's hyper-parameters
                   and training curves)
``params``         the flat parameter vector (weights and biases of every
                   layer, see :mod:`nn_core.network`)
``classes``        the class labels, numeric or text
=================  ==========================================================

Loading uses ``allow_pickle=False`` and checks every entry, so a truncated,
foreign or inconsistent file raises :class:`ValueError` saying what is wrong.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import IO, Any

import numpy as np

from .network import Network

__all__ = ["FORMAT", "FORMAT_VERSION", "dumps", "load_network", "save_network"]

FORMAT = "nn_core.model"
FORMAT_VERSION = 1

PathOrFile = str | os.PathLike | IO[bytes]


def _classes_array(classes: np.ndarray) -> np.ndarray:
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf" or classes.dtype.kind == "U":
        return classes
    if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
        return classes.astype(str)
    raise ValueError("class labels must be all numbers or all strings to be saved, "
                     f"got dtype {classes.dtype}")


def save_network(path: PathOrFile, network: Network, classes: np.ndarray,
                 meta: dict[str, Any] | None = None) -> None:
    """Write ``network`` and its class labels to an ``.npz`` archive.

    Parameters
    ----------
    path : str, path-like or binary file object
    network : Network
    classes : array of shape (n_classes,)
        Label of each output unit.
    meta : dict, optional
        JSON-serialisable extra information stored in ``config["meta"]``.
    """
    classes = _classes_array(classes)
    if len(classes) != network.n_classes:
        raise ValueError(f"{len(classes)} class labels for a network with "
                         f"{network.n_classes} outputs")
    config = {"network": network.config(), "meta": meta or {}}
    np.savez(path, nn_core_format=np.array(FORMAT),
             format_version=np.array(FORMAT_VERSION),
             config=np.array(json.dumps(config)), params=network.params,
             classes=classes)


def load_network(path: PathOrFile) -> tuple[Network, np.ndarray, dict[str, Any]]:
    """Read an archive written by :func:`save_network`.

    Returns
    -------
    network : Network
    classes : ndarray of shape (n_classes,)
    meta : dict

    Raises
    ------
    ValueError
        If the file is not a readable ``.npz`` archive (e.g. truncated), is
        not an nn_core model, or its entries disagree with each other.
    """
    name = getattr(path, "name", path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name!s} is not a readable .npz archive (is it truncated "
                         f"or another kind of file?): {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{name!s} holds a single array, not an nn_core model archive")
    with archive:
        try:
            entries = {key: archive[key] for key in archive.files}
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"{name!s} is damaged or truncated: {exc}") from None
    return _from_entries(entries, name)


def _from_entries(entries: dict[str, np.ndarray], name: Any
                  ) -> tuple[Network, np.ndarray, dict[str, Any]]:
    required = ("nn_core_format", "format_version", "config", "params", "classes")
    if "nn_core_format" not in entries or str(entries["nn_core_format"]) != FORMAT:
        raise ValueError(f"{name!s} is not an nn_core model file (it has entries "
                         f"{sorted(entries)}, expected {list(required)})")
    missing = [k for k in required if k not in entries]
    if missing:
        raise ValueError(f"{name!s} is missing the entries {missing}")
    version = entries["format_version"]
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
        raise ValueError(f"{name!s} has format version {version!r}; this nn_core reads "
                         f"version {FORMAT_VERSION}")
    try:
        config = json.loads(str(entries["config"]))
        arch = config["network"]
        meta = config.get("meta", {})
        network = Network(int(arch["n_features"]),
                          [int(h) for h in arch["hidden_layer_sizes"]],
                          int(arch["n_classes"]), str(arch["activation"]),
                          str(arch["init"]), np.dtype(str(arch["dtype"])))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{name!s} has an invalid configuration: {exc}") from None
    params = entries["params"]
    if params.ndim != 1 or params.dtype.kind != "f":
        raise ValueError(f"{name!s}: params must be a 1-D float array, got "
                         f"shape {params.shape} dtype {params.dtype}")
    if params.size != network.n_params:
        raise ValueError(f"{name!s}: the configuration describes {network.n_params} "
                         f"parameters (layers {list(network.layer_sizes)}) but the file "
                         f"holds {params.size}")
    if not np.all(np.isfinite(params)):
        raise ValueError(f"{name!s}: the weights contain NaN or infinity")
    classes = entries["classes"]
    if classes.ndim != 1 or len(classes) != network.n_classes:
        raise ValueError(f"{name!s}: {classes.shape} class labels for a network "
                         f"with {network.n_classes} outputs")
    network.params[...] = params
    return network, classes, meta


def dumps(network: Network, classes: np.ndarray,
          meta: dict[str, Any] | None = None) -> bytes:
    """Like :func:`save_network`, returning the archive's bytes."""
    buf = io.BytesIO()
    save_network(buf, network, classes, meta)
    return buf.getvalue()
