"""Saving and loading trained networks as ``.npz`` archives. Nothing is pickled.

An archive holds:

=================  ==========================================================
``nn_core_format`` the string ``"nn_core.model"`` (identifies the file)
``format_version`` integer, currently 1
``config``         JSON text: the architecture (``network``) and free-form
                   metadata (``meta``: e.g. the estimator's hyper-parameters
                   and training curves)
``params``         the flat parameter vector (weights and biases of every
                   layer, see :mod:`nn_core.network`), float32 or float64
``classes``        the class labels, numeric or text
=================  ==========================================================

Loading treats the file as hostile. It reads the zip directory and each
``.npy`` header itself and checks them before it allocates anything sized by
the file: the entries' declared sizes against the file's real size (a zip bomb
is refused unread), every dtype (float32/float64 parameters, numeric or text
labels; object arrays, which would need pickle, are refused), the JSON's size,
nesting depth and value types, and the parameter count the configuration
implies against the shape the ``params`` header declares. Anything malformed
raises :class:`ValueError`, and only that, with a message saying what is
wrong; loading allocates at most a small multiple of the file's size.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from .activations import ACTIVATIONS
from .initializers import INITIALIZERS
from .network import Network

__all__ = ["FORMAT", "FORMAT_VERSION", "dumps", "load_network", "save_network"]

FORMAT = "nn_core.model"
FORMAT_VERSION = 1

PathOrFile = str | os.PathLike | IO[bytes]

_ENTRIES = ("nn_core_format", "format_version", "config", "params", "classes")
MAX_CONFIG_CHARS = 4_000_000  # the JSON text (training curves of ~100,000 epochs)
MAX_JSON_DEPTH = 32  # a saved model's JSON nests 4 deep
MAX_LABEL_CHARS = 1024  # one class label
MAX_LAYERS = 1000
MAX_WIDTH = 2**31 - 1  # features, units or classes of one layer
# Entries may declare (uncompressed) at most this many times the file's real
# size, plus a little: a compressed model's weights barely shrink, a zip bomb's
# zeros shrink a thousandfold.
_EXPANSION = 16
_SLACK = 2**20
_MAX_MEMBERS = 64
# Exceptions the zip, zlib and .npy header readers raise on damaged input
# (besides ValueError); a load turns them into ValueError.
_DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, RuntimeError, KeyError, TypeError, IndexError,
            OverflowError, UnicodeError, SyntaxError, MemoryError)


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
        not an nn_core model, declares more data than it can hold, or its
        entries have other types than a model's or disagree with each other.
    """
    name = _display_name(path)
    try:
        if isinstance(path, (str, os.PathLike)):
            with open(path, "rb") as fp:
                return _load(fp, name)
        return _load(path, name)
    except ValueError:
        raise
    except OSError as exc:
        raise ValueError(f"{name!s} is not a readable .npz archive: {exc}") from None
    except _DAMAGED as exc:
        raise ValueError(f"{name!s} is damaged or truncated ({type(exc).__name__}: "
                         f"{exc})") from None


def _display_name(path: PathOrFile) -> str:
    """How messages name the file: its path or name, else "the model file"."""
    if isinstance(path, (str, os.PathLike)):
        return os.fspath(path)
    name = getattr(path, "name", None)
    return name if isinstance(name, str) else "the model file"


def _load(fp: IO[bytes], name: Any) -> tuple[Network, np.ndarray, dict[str, Any]]:
    try:
        start = fp.tell()
        size = fp.seek(0, io.SEEK_END) - start
        fp.seek(start)
        magic = fp.read(6)
        fp.seek(start)
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"{name!s} is not a readable .npz archive (it must be a file or a "
                         f"seekable binary stream): {exc}") from None
    if magic == b"\x93NUMPY":
        raise ValueError(_single_array_message(fp, name))
    try:
        archive = zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name!s} is not a readable .npz archive (is it truncated "
                         f"or another kind of file?): {exc}") from None
    with archive:
        infos = _entries(archive, name, size)
        fmt = _read(archive, infos["nn_core_format"], name, _text_scalar(64))
        if str(fmt[()]) != FORMAT:
            raise ValueError(f"{name!s} is not an nn_core model file (its nn_core_format "
                             f"is {str(fmt[()])[:64]!r}, expected {FORMAT!r})")
        version = _read(archive, infos["format_version"], name, _int_scalar)
        if int(version[()]) != FORMAT_VERSION:
            raise ValueError(f"{name!s} has format version {int(version[()])}; this nn_core "
                             f"reads version {FORMAT_VERSION}")
        config = _read(archive, infos["config"], name, _text_scalar(MAX_CONFIG_CHARS))
        arch, meta = _parse_config(str(config[()]), name)
        del config
        sizes = (arch["n_features"], *arch["hidden_layer_sizes"], arch["n_classes"])
        n_params = Network.count_parameters(sizes)
        params = _read(archive, infos["params"], name, _params_check(n_params, sizes))
        classes = _read(archive, infos["classes"], name,
                        _classes_check(arch["n_classes"]))
    if not np.all(np.isfinite(params)):
        raise ValueError(f"{name!s}: the weights contain NaN or infinity")
    try:
        network = Network(arch["n_features"], arch["hidden_layer_sizes"], arch["n_classes"],
                          arch["activation"], arch["init"], np.dtype(arch["dtype"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{name!s} has an invalid configuration: {exc}") from None
    network.params[...] = params
    return network, classes.astype(classes.dtype.newbyteorder("=")), meta


def _single_array_message(fp: IO[bytes], name: Any) -> str:
    try:
        version = np.lib.format.read_magic(fp)
        _, _, dtype = _read_header(fp, version)
        pickled = dtype.hasobject
    except (ValueError, *_DAMAGED):
        pickled = False
    if pickled:
        return (f"{name!s} is a single pickled .npy array, not a readable .npz archive "
                "(object arrays need pickle, which is never loaded)")
    return f"{name!s} holds a single array, not an nn_core model archive"


def _entries(archive: zipfile.ZipFile, name: Any, size: int) -> dict[str, zipfile.ZipInfo]:
    """The model's entries, checked before any is read."""
    infos = archive.infolist()
    if len(infos) > _MAX_MEMBERS:
        raise ValueError(f"{name!s} is not an nn_core model file (it has {len(infos):,} "
                         f"entries, a model has {len(_ENTRIES)})")
    by_key: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        key = info.filename.removesuffix(".npy")
        if key in by_key:
            raise ValueError(f"{name!s} has the entry {key[:64]!r} twice")
        by_key[key] = info
    if "nn_core_format" not in by_key:
        listed = sorted(k[:64] for k in by_key)
        raise ValueError(f"{name!s} is not an nn_core model file (it has entries "
                         f"{listed[:10]}{' ...' if len(listed) > 10 else ''}, expected "
                         f"{list(_ENTRIES)})")
    missing = [k for k in _ENTRIES if k not in by_key]
    if missing:
        raise ValueError(f"{name!s} is missing the entries {missing}")
    declared = 0
    for key in _ENTRIES:
        info = by_key[key]
        if info.flag_bits & 0x1:
            raise ValueError(f"{name!s}: the entry {key!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{name!s}: the entry {key!r} uses an unsupported compression "
                             f"method ({info.compress_type})")
        declared += info.file_size
    budget = _SLACK + _EXPANSION * size
    if declared > budget:
        raise ValueError(f"{name!s} declares {declared:,} bytes of entries in a file of "
                         f"{size:,} bytes (more than {_EXPANSION} times its size: a zip "
                         "bomb or a damaged file); refused unread")
    return by_key


def _read_header(fp: IO[bytes], version: tuple[int, int]) -> tuple[tuple, bool, np.dtype]:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fp)
    raise ValueError(f"unsupported .npy format version {version}")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: Any,
          check: Callable[[tuple, np.dtype], str | None]) -> np.ndarray:
    """One entry's array, read only once ``check(shape, dtype)`` accepts its header
    (it returns what is wrong, or ``None``) and the header's size matches the entry's."""
    key = info.filename.removesuffix(".npy")
    with archive.open(info) as fp:
        try:
            shape, fortran, dtype = _read_header(fp, np.lib.format.read_magic(fp))
        except ValueError as exc:
            raise ValueError(f"{name!s}: the entry {key!r} is not a valid .npy array "
                             f"({exc})") from None
        if dtype.hasobject:
            raise ValueError(f"{name!s}: the entry {key!r} is an object array (it would "
                             "need pickle, which is never loaded)")
        problem = check(shape, dtype)
        if problem is not None:
            raise ValueError(f"{name!s}: {key} {problem}")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if info.file_size != fp.tell() + nbytes:
            raise ValueError(f"{name!s}: the entry {key!r} declares {shape} values of "
                             f"{dtype} ({nbytes:,} bytes) but holds "
                             f"{info.file_size - fp.tell():,} bytes")
        data = fp.read(nbytes)
        if len(data) != nbytes or fp.read(1):  # reading to the end checks the CRC
            raise ValueError(f"{name!s}: the entry {key!r} is truncated")
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def _text_scalar(max_chars: int) -> Callable[[tuple, np.dtype], str | None]:
    def check(shape: tuple, dtype: np.dtype) -> str | None:
        if shape != () or dtype.kind != "U" or not 0 < dtype.itemsize <= 4 * max_chars:
            return (f"must be a text of up to {max_chars:,} characters, got dtype {dtype} "
                    f"of shape {shape}")
        return None
    return check


def _int_scalar(shape: tuple, dtype: np.dtype) -> str | None:
    if shape != () or dtype.kind not in "iu" or dtype.itemsize > 8:
        return f"must be an integer, got dtype {dtype} of shape {shape}"
    return None


def _params_check(n_params: int, sizes: tuple) -> Callable[[tuple, np.dtype], str | None]:
    def check(shape: tuple, dtype: np.dtype) -> str | None:
        if len(shape) != 1 or dtype.kind != "f" or dtype.itemsize not in (4, 8):
            return (f"must be a 1-D float array (float32 or float64), got shape {shape} "
                    f"dtype {dtype}")
        if shape[0] != n_params:
            return (f"does not fit: the configuration describes {n_params:,} parameters "
                    f"(layers {list(sizes)}) but the file holds {shape[0]:,}")
        return None
    return check


def _classes_check(n_classes: int) -> Callable[[tuple, np.dtype], str | None]:
    def check(shape: tuple, dtype: np.dtype) -> str | None:
        numeric = dtype.kind in "biuf" and dtype.itemsize <= 8
        text = dtype.kind == "U" and 0 < dtype.itemsize <= 4 * MAX_LABEL_CHARS
        if len(shape) != 1 or not (numeric or text):
            return (f"must be a 1-D array of numbers or texts of up to {MAX_LABEL_CHARS} "
                    f"characters, got shape {shape} dtype {dtype}")
        if shape[0] != n_classes:
            return (f"has {shape[0]:,} class labels for a network with {n_classes} "
                    "outputs")
        return None
    return check


# ---- the JSON configuration ---------------------------------------------------------
# A string (its closing quote optional, so an unclosed one cannot make the scan
# backtrack) or a bracket: scanning these tokens is linear.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays and objects more than ``limit`` deep."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        char = token.group()[0]
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:32]} is too large")
    return value


def _reject_constant(text: str) -> float:
    raise ValueError(f"{text} is not a number JSON allows")


def _parse_config(text: str, name: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked architecture and the metadata of a configuration text."""
    def invalid(why: str) -> ValueError:
        return ValueError(f"{name!s} has an invalid configuration: {why}")

    if _json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise invalid(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        config = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise invalid(str(exc)) from None
    if not isinstance(config, dict):
        raise invalid(f"it must be a JSON object, got {type(config).__name__}")
    arch = config.get("network")
    if not isinstance(arch, dict):
        raise invalid("'network' must be a JSON object")
    meta = config.get("meta", {})
    if not isinstance(meta, dict):
        raise invalid(f"'meta' must be a JSON object, got {type(meta).__name__}")

    def integer(value: Any, what: str, low: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or \
                not low <= value <= MAX_WIDTH:
            raise invalid(f"{what} must be an integer from {low} to {MAX_WIDTH}, got "
                          f"{str(value)[:32]}")
        return value

    hidden = arch.get("hidden_layer_sizes")
    if not isinstance(hidden, list) or len(hidden) > MAX_LAYERS:
        raise invalid(f"hidden_layer_sizes must be a list of up to {MAX_LAYERS} integers, "
                      f"got {str(hidden)[:32]}")
    out = {"n_features": integer(arch.get("n_features"), "n_features", 1),
           "hidden_layer_sizes": [integer(h, "a hidden layer size", 1) for h in hidden],
           "n_classes": integer(arch.get("n_classes"), "n_classes", 2)}
    for key, allowed in (("activation", sorted(ACTIVATIONS)),
                         ("init", ["auto", *sorted(INITIALIZERS)]),
                         ("dtype", ["float32", "float64"])):
        value = arch.get(key)
        if value not in allowed:
            raise invalid(f"{key} must be one of {allowed}, got {str(value)[:32]}")
        out[key] = value
    return out, meta


def dumps(network: Network, classes: np.ndarray,
          meta: dict[str, Any] | None = None) -> bytes:
    """Like :func:`save_network`, returning the archive's bytes."""
    buf = io.BytesIO()
    save_network(buf, network, classes, meta)
    return buf.getvalue()
