"""Training checkpoints as bytes (an ``.npz`` archive), e.g. for a database column.

A :class:`~nn_core.training.Checkpoint` (from :meth:`Trainer.checkpoint
<nn_core.training.Trainer.checkpoint>`) becomes a compressed ``.npz`` archive
with these entries, and back again. Nothing is pickled:

====================  =====================================================
``meta``              JSON text (a 0-d unicode array): ``format``
                      (``"nn_core.checkpoint/1"``), ``epoch``, ``network``
                      (layer sizes, activation, dtype), ``n_params``, the
                      optimiser's name, step count and array names, the
                      plateau schedule, the early-stopping tracker, elapsed
                      seconds, the generator's ``bit_generator.state`` and the
                      ``history`` (one :meth:`EpochRecord.to_dict
                      <nn_core.training.EpochRecord.to_dict>` per epoch)
``params``            the flat parameter vector, ``(n_params,)``
``optimizer.<name>``  each optimiser state array (e.g. ``optimizer.m``)
``best_params``       the best epoch's weights, if early stopping kept them
====================  =====================================================

Arrays are float32 or float64 as the network. Reading checks every entry
before it allocates anything sized by the file (array headers against the
metadata) and raises ``ValueError``, and only ``ValueError``, for anything
malformed: truncated or foreign bytes, unknown or missing entries, other
dtypes or sizes, NaN or infinity, or metadata that does not add up.

>>> data = checkpoint_to_bytes(trainer.checkpoint())  # doctest: +SKIP
>>> trainer2.restore(checkpoint_from_bytes(data))     # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from .network import Network
from .optimizers import OptimizerState
from .schedules import PlateauState
from .training import Checkpoint, EarlyStoppingState, EpochRecord

__all__ = ["FORMAT", "Checkpoint", "checkpoint_from_bytes", "checkpoint_to_bytes"]

#: Written as ``meta["format"]``; a reader accepts exactly this value.
FORMAT = "nn_core.checkpoint/1"

_META = "meta"
_PARAMS = "params"
_BEST = "best_params"
_OPT_PREFIX = "optimizer."

# The metadata, one table: each key and the kind of value it holds. Nested
# objects have their own rows; `_check_keys` rejects missing and unknown keys.
_META_KEYS = ("format", "epoch", "network", "n_params", "optimizer", "plateau",
              "early_stopping", "elapsed", "rng_state", "history")
_NETWORK_KEYS = ("layer_sizes", "activation", "dtype")
_OPTIMIZER_KEYS = ("name", "t", "arrays")
_PLATEAU_KEYS = ("lr", "best", "bad_epochs")
_EARLY_KEYS = ("best_val", "best_epoch", "no_improve", "best_params")


# ---- writing ---------------------------------------------------------------
def checkpoint_to_bytes(checkpoint: Checkpoint) -> bytes:
    """Serialise ``checkpoint`` to the bytes of a compressed ``.npz`` archive.

    Parameters
    ----------
    checkpoint : Checkpoint

    Returns
    -------
    bytes
        Read back with :func:`checkpoint_from_bytes`.
    """
    cp = checkpoint
    es = cp.early_stopping
    meta = {
        "format": FORMAT,
        "epoch": cp.epoch,
        "network": {"layer_sizes": list(cp.layer_sizes), "activation": cp.activation,
                    "dtype": cp.dtype},
        "n_params": int(cp.params.size),
        "optimizer": {"name": cp.optimizer.name, "t": cp.optimizer.t,
                      "arrays": sorted(cp.optimizer.arrays)},
        # JSON has no infinity: "no best yet" is written as null.
        "plateau": {"lr": cp.plateau.lr, "best": _finite_or_none(cp.plateau.best),
                    "bad_epochs": cp.plateau.bad_epochs},
        "early_stopping": {"best_val": _finite_or_none(es.best_val),
                           "best_epoch": es.best_epoch, "no_improve": es.no_improve,
                           "best_params": es.best_params is not None},
        "elapsed": cp.elapsed,
        "rng_state": cp.rng_state,
        "history": [r.to_dict() for r in cp.history],
    }
    arrays = {_META: np.array(json.dumps(meta, allow_nan=False, default=_json_default)),
              _PARAMS: cp.params}
    arrays.update({_OPT_PREFIX + k: a for k, a in cp.optimizer.arrays.items()})
    if es.best_params is not None:
        arrays[_BEST] = es.best_params
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _json_default(obj: Any) -> Any:
    # A record's learning rate is a NumPy scalar when the config held one.
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


# ---- reading ---------------------------------------------------------------
def checkpoint_from_bytes(data: bytes | bytearray | memoryview) -> Checkpoint:
    """Read a checkpoint written by :func:`checkpoint_to_bytes`.

    Parameters
    ----------
    data : bytes-like
        E.g. a database ``BLOB``/``bytea`` value (``memoryview`` works).

    Returns
    -------
    Checkpoint

    Raises
    ------
    ValueError
        For anything that is not exactly such a checkpoint (see the module
        docstring); never another exception type.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"a checkpoint is read from bytes, got {type(data).__name__}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    except Exception as exc:  # BadZipFile, OSError, EOFError, ... (see _read_entry)
        raise ValueError(f"not a checkpoint: the bytes are not an .npz archive ({exc})") \
            from exc
    with archive:
        names = archive.namelist()
        keys = [n.removesuffix(".npy") for n in names]
        if len(set(names)) != len(names) or any(not n.endswith(".npy") for n in names):
            raise ValueError(f"not a checkpoint: unexpected archive members {names}")
        if _META not in keys:
            raise ValueError(f"not a checkpoint: no {_META!r} entry (entries: {keys})")
        text = _read_entry(archive, _META, _check_meta_header)
        meta = _parse_meta(str(text[()]))
        dtype = np.dtype(meta["network"]["dtype"])
        n_params = meta["n_params"]
        expected = {_META, _PARAMS, *(_OPT_PREFIX + k for k in meta["optimizer"]["arrays"])}
        if meta["early_stopping"]["best_params"]:
            expected.add(_BEST)
        if set(keys) != expected:
            raise ValueError(f"checkpoint entries {sorted(keys)} do not match its "
                             f"metadata, which lists {sorted(expected)}")

        def vector(key: str) -> np.ndarray:
            def check(shape: tuple, fortran: bool, dt: np.dtype) -> None:
                # Checked before reading, so a forged header cannot make us
                # allocate more than the metadata declared.
                if dt != dtype or shape != (n_params,) or fortran:
                    raise ValueError(f"must be {dtype.name} of shape ({n_params},) like "
                                     f"the metadata says, got {dt} of shape {shape}")
            a = _read_entry(archive, key, check)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"checkpoint entry {key!r} contains NaN or infinity")
            return a

        params = vector(_PARAMS)
        opt_arrays = {k: vector(_OPT_PREFIX + k) for k in meta["optimizer"]["arrays"]}
        best_params = vector(_BEST) if _BEST in expected else None

    opt, plat, es = meta["optimizer"], meta["plateau"], meta["early_stopping"]
    best_val = es["best_val"]
    return Checkpoint(
        epoch=meta["epoch"],
        layer_sizes=tuple(meta["network"]["layer_sizes"]),
        activation=meta["network"]["activation"],
        dtype=dtype.name,
        params=params,
        optimizer=OptimizerState(opt["name"], opt["t"], opt_arrays),
        plateau=PlateauState(float(plat["lr"]),
                             math.inf if plat["best"] is None else float(plat["best"]),
                             plat["bad_epochs"]),
        early_stopping=EarlyStoppingState(
            math.inf if best_val is None else float(best_val), es["best_epoch"],
            es["no_improve"], best_params),
        elapsed=float(meta["elapsed"]),
        rng_state=meta["rng_state"],
        history=tuple(EpochRecord.from_dict(d) for d in meta["history"]),
    )


def _read_entry(archive: zipfile.ZipFile, key: str,
                check: Callable[[tuple, bool, np.dtype], None]) -> np.ndarray:
    """Read ``key`` after ``check(shape, fortran_order, dtype)`` accepts its header."""
    name = key + ".npy"
    try:
        with archive.open(name) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        if header[2].hasobject:
            raise ValueError("object arrays are refused (they would need pickle)")
        check(*header)
        with archive.open(name) as fp:
            a = np.lib.format.read_array(fp, allow_pickle=False)
            if fp.read(1):  # reading to the end also verifies the CRC
                raise ValueError("trailing data after the array")
    except ValueError as exc:
        raise ValueError(f"checkpoint entry {key!r} is invalid: {exc}") from exc
    except Exception as exc:
        # zipfile, zlib and NumPy's header parser raise a long, version-dependent
        # list on damaged input (BadZipFile, zlib.error, EOFError, RuntimeError
        # for encrypted members, NotImplementedError for unknown compression,
        # MemoryError, ...); the promise is ValueError only.
        raise ValueError(f"checkpoint entry {key!r} is damaged or truncated: "
                         f"{type(exc).__name__}: {exc}") from exc
    return a


def _check_meta_header(shape: tuple, fortran: bool, dtype: np.dtype) -> None:
    if shape != () or dtype.kind != "U":
        raise ValueError(f"must be a text scalar, got {dtype} of shape {shape}")


def _reject_constant(name: str) -> float:
    raise ValueError(f"the metadata contains {name}, but every number must be finite")


def _check_finite(obj: Any, where: str = "meta") -> None:
    """Raise if a float anywhere in parsed JSON is infinite (``1e999`` parses as inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"checkpoint {where} is not finite")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")


def _check_keys(obj: Any, keys: tuple[str, ...], where: str) -> dict:
    if not isinstance(obj, dict) or set(obj) != set(keys):
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"checkpoint {where} must have exactly the keys {list(keys)}, "
                         f"got {got}")
    return obj


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _require(ok: bool, what: str, rule: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"checkpoint {what} must be {rule}, got {value!r}")


def _parse_meta(text: str) -> dict:
    """The metadata, with every type and the declared sizes checked."""
    try:
        meta = json.loads(text, parse_constant=_reject_constant)
        _check_finite(meta)
    except RecursionError:
        raise ValueError("checkpoint metadata is nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"checkpoint metadata is not valid JSON: {exc}") from exc
    _check_keys(meta, _META_KEYS, "metadata")
    _require(meta["format"] == FORMAT, "format", repr(FORMAT), meta["format"])
    _require(_is_int(meta["epoch"]) and meta["epoch"] >= 0, "epoch", "an integer >= 0",
             meta["epoch"])

    net = _check_keys(meta["network"], _NETWORK_KEYS, "network")
    sizes = net["layer_sizes"]
    _require(isinstance(sizes, list) and len(sizes) >= 2
             and all(_is_int(n) and n >= 1 for n in sizes),
             "network.layer_sizes", "a list of >= 2 positive integers", sizes)
    _require(isinstance(net["activation"], str), "network.activation", "a string",
             net["activation"])
    _require(net["dtype"] in ("float32", "float64"), "network.dtype",
             "'float32' or 'float64'", net["dtype"])
    n_params = Network.count_parameters(sizes)
    _require(meta["n_params"] == n_params, "n_params",
             f"{n_params} (the parameters of layers {sizes})", meta["n_params"])

    opt = _check_keys(meta["optimizer"], _OPTIMIZER_KEYS, "optimizer")
    _require(isinstance(opt["name"], str), "optimizer.name", "a string", opt["name"])
    _require(_is_int(opt["t"]) and opt["t"] >= 0, "optimizer.t", "an integer >= 0",
             opt["t"])
    arrays = opt["arrays"]
    _require(isinstance(arrays, list) and all(isinstance(k, str) and k.isidentifier()
                                              for k in arrays)
             and len(set(arrays)) == len(arrays),
             "optimizer.arrays", "a list of distinct names", arrays)

    plat = _check_keys(meta["plateau"], _PLATEAU_KEYS, "plateau")
    _require(_is_real(plat["lr"]), "plateau.lr", "a number", plat["lr"])
    _require(plat["best"] is None or _is_real(plat["best"]), "plateau.best",
             "a number or null", plat["best"])

    es = _check_keys(meta["early_stopping"], _EARLY_KEYS, "early_stopping")
    _require(es["best_val"] is None or _is_real(es["best_val"]), "early_stopping.best_val",
             "a number or null", es["best_val"])
    _require(isinstance(es["best_params"], bool), "early_stopping.best_params",
             "true or false", es["best_params"])

    _require(_is_real(meta["elapsed"]), "elapsed", "a number", meta["elapsed"])
    _require(isinstance(meta["rng_state"], dict), "rng_state", "an object",
             type(meta["rng_state"]).__name__)
    history = meta["history"]
    if not isinstance(history, list) or len(history) != meta["epoch"]:
        got = f"{len(history)} records" if isinstance(history, list) else \
            type(history).__name__
        raise ValueError(f"checkpoint history must be a list of {meta['epoch']} epoch "
                         f"records (one per epoch), got {got}")
    # The remaining rules (ranges, best_epoch <= epoch, the generator state,
    # each record) are checked by the dataclasses the reader builds.
    return meta
