"""Data for the playground: built-in sets, 2-D generators, CSV upload, splitting.

Built-in sets come from scikit-learn (Digits, Iris, Wine, Breast cancer, moons,
circles, blobs); XOR and the spiral have no scikit-learn generator and are
drawn here. Uploaded CSV files are parsed without ever evaluating or
unpickling anything, and every way a file can be wrong gets its own message
saying what is wrong and how to fix it (:class:`DatasetError`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DATASET_NAMES", "MAX_CLASSES", "MAX_FEATURES", "Dataset", "DatasetError", "Prepared",
           "csv_columns", "load_builtin", "parse_csv", "prepare", "spiral", "xor"]

#: Names accepted by :func:`load_builtin`.
DATASET_NAMES = ("Digits", "Iris", "Wine", "Breast cancer", "Moons", "Circles", "XOR", "Spiral",
                 "Gaussian blobs")
MAX_CLASSES = 50
MAX_FEATURES = 1000
MIN_ROWS = 10
GRID_STEPS = 100  # decision-boundary resolution per axis
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})


class DatasetError(ValueError):
    """The data cannot be used; the message tells the user what to change."""


@dataclass(frozen=True)
class Dataset:
    """A classification data set, before splitting and scaling."""

    name: str
    X: np.ndarray  # (n_samples, n_features) float64
    y: np.ndarray  # (n_samples,) labels (int or str)
    feature_names: tuple[str, ...]
    description: str
    images: np.ndarray | None = None  # (n_samples, h, w) for image data (Digits)
    label_name: str = "class"

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_2d(self) -> bool:
        return self.X.shape[1] == 2


# ---- generators -------------------------------------------------------------
def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four Gaussian clusters at (+-1, +-1); class = sign(x) != sign(y)."""
    centers = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float)
    which = rng.integers(0, 4, n)
    X = centers[which] + rng.normal(scale=0.25 + noise, size=(n, 2))
    y = (which >= 2).astype(int)
    return X, y


def spiral(n: int, k: int, noise: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    """``k`` interleaved spiral arms (the classic CS231n toy problem)."""
    y = np.arange(n) % k
    t = rng.uniform(0.0, 1.0, n)  # position along the arm
    r = 0.1 + t  # radius grows along the arm
    angle = 4.0 * t + y * 2 * np.pi / k + rng.normal(scale=noise, size=n)
    X = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    return X, y


def load_builtin(name: str, n_samples: int = 500, noise: float = 0.2, n_classes: int = 3,
                 seed: int = 0) -> Dataset:
    """Load a built-in or generated data set by its display name."""
    from sklearn import datasets as skd

    rng = np.random.default_rng(seed)
    if name == "Digits":
        d = skd.load_digits()
        return Dataset(name, d.data.astype(float), d.target,
                       tuple(f"pixel {i // 8},{i % 8}" for i in range(64)),
                       "1,797 handwritten digits, 8x8 grey-level images (64 features), "
                       "10 classes.", images=d.images, label_name="digit")
    if name in ("Iris", "Wine", "Breast cancer"):
        loader = {"Iris": skd.load_iris, "Wine": skd.load_wine,
                  "Breast cancer": skd.load_breast_cancer}[name]
        d = loader()
        labels = np.asarray(d.target_names)[d.target]
        text = {"Iris": "150 iris flowers, 4 measurements, 3 species.",
                "Wine": "178 wines, 13 chemical measurements, 3 cultivars.",
                "Breast cancer": "569 tumours, 30 measurements, malignant or benign."}[name]
        return Dataset(name, d.data.astype(float), labels, tuple(d.feature_names), text)
    seed32 = int(rng.integers(2**31 - 1))
    if name == "Moons":
        X, y = skd.make_moons(n_samples, noise=noise, random_state=seed32)
    elif name == "Circles":
        X, y = skd.make_circles(n_samples, noise=noise, factor=0.5, random_state=seed32)
    elif name == "XOR":
        X, y = xor(n_samples, noise, rng)
    elif name == "Spiral":
        X, y = spiral(n_samples, n_classes, noise, rng)
    elif name == "Gaussian blobs":
        X, y = skd.make_blobs(n_samples, centers=n_classes, cluster_std=1.0 + 4 * noise,
                              random_state=seed32)
    else:
        raise DatasetError(f"Unknown data set {name!r}.")
    k = len(np.unique(y))
    return Dataset(name, X.astype(float), y, ("x1", "x2"),
                   f"{n_samples} generated 2-D points, {k} classes, noise {noise:g}.")


# ---- CSV --------------------------------------------------------------------
def _mb(n: int) -> str:
    mb = n / 2**20
    return f"{mb:.2f} MB" if mb < 10 else f"{mb:.0f} MB"


def _text(data: bytes, max_bytes: int) -> str:
    if len(data) > max_bytes:
        raise DatasetError(
            f"The file is {_mb(len(data))}; this server accepts CSV files up to "
            f"{_mb(max_bytes)}. Upload a smaller sample of your data.")
    if not data.strip():
        raise DatasetError("The file is empty. Upload a CSV file with a header row and "
                           "one row per sample.")
    head = data[:65536]
    controls = sum(b < 32 and b not in (9, 10, 13) for b in head)
    if b"\x00" in head or controls > 0.05 * len(head):
        raise DatasetError("This is not a text CSV file (it contains binary data, e.g. a "
                           "spreadsheet or an image renamed .csv). Save or export your "
                           "table as CSV (comma-separated values) and upload that.")
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DatasetError("The file is not readable text.")  # pragma: no cover - latin-1 decodes all


def _rows(text: str) -> list[list[str]]:
    sample = text[:20000]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)
                if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise DatasetError(f"The file is not valid CSV: {exc}. Check quotes and "
                           "delimiters.") from None
    return rows


def _table(data: bytes, max_bytes: int) -> tuple[list[str], list[list[str]]]:
    """The header names and the data rows of a CSV file."""
    rows = _rows(_text(data, max_bytes))
    if not rows:  # e.g. only delimiters: nothing survives dropping blank rows
        raise DatasetError("The file is empty. Upload a CSV file with a header row and "
                           "one row per sample.")
    return [h.strip() or f"column {i + 1}" for i, h in enumerate(rows[0])], rows[1:]


def csv_columns(data: bytes, max_bytes: int) -> list[str]:
    """Header names of a CSV file (for choosing the label column)."""
    return _table(data, max_bytes)[0]


def parse_csv(data: bytes, label_column: str | None = None, *, max_bytes: int = 5 * 2**20,
              max_rows: int = 100_000, name: str = "Upload CSV") -> Dataset:
    """Parse an uploaded CSV: numeric feature columns and one label column.

    Parameters
    ----------
    data : bytes
        The file's content.
    label_column : str, optional
        Header of the label column; default: the last column.
    max_bytes, max_rows : int
        Limits; beyond them the file is refused.

    Raises
    ------
    DatasetError
        With a message naming the problem (empty file, no rows, binary data,
        ragged rows, non-numeric or missing feature values, a single class,
        more than 50 classes, too large) and how to fix it.
    """
    header, body = _table(data, max_bytes)
    if len(header) < 2:
        raise DatasetError("The file has a single column. It needs numeric feature columns "
                           "and one label column, separated by commas.")
    if not body:
        raise DatasetError("The file has a header row but no data rows. Add one row per "
                           "sample below the header.")
    if len(body) > max_rows:
        raise DatasetError(f"The file has {len(body):,} rows; this server accepts up to "
                           f"{max_rows:,}. Upload a random sample of your data.")
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DatasetError(
                f"Row {line} has {len(row)} values but the header has {len(header)} "
                "columns. Every row needs one value per column (check for missing or extra "
                "commas).")
    if len(body) < MIN_ROWS:
        raise DatasetError(f"The file has only {len(body)} data rows; at least {MIN_ROWS} "
                           "are needed to train and test a model.")
    if len(header) - 1 > MAX_FEATURES:
        raise DatasetError(f"The file has {len(header) - 1} feature columns; the playground "
                           f"handles up to {MAX_FEATURES}.")
    label = header[-1] if label_column is None else label_column
    if label not in header:
        raise DatasetError(f"There is no column named {label!r}. Pick the label column from "
                           "the list.")
    j = header.index(label)
    table = np.array(body, dtype=object)
    labels = np.array([str(v).strip() for v in table[:, j]])
    missing = [i for i, v in enumerate(labels) if v.lower() in _MISSING]
    if missing:
        raise DatasetError(f"The label column {label!r} is empty in {len(missing)} rows "
                           f"(first: row {missing[0] + 2}). Fill in the labels or drop those "
                           "rows.")
    feature_idx = [i for i in range(len(header)) if i != j]
    X = np.empty((len(body), len(feature_idx)))
    for col, i in enumerate(feature_idx):
        X[:, col] = _numeric_column(header[i], table[:, i])
    classes = np.unique(labels)
    if len(classes) < 2:
        raise DatasetError(f"The label column {label!r} has only one class "
                           f"({str(classes[0])!r}). A classifier needs at least two classes: "
                           "is this the right label column?")
    if len(classes) > MAX_CLASSES:
        raise DatasetError(f"The label column {label!r} has {len(classes)} different values; "
                           f"the playground supports up to {MAX_CLASSES} classes. Is this the "
                           "right label column (not an id or a measurement)?")
    y: np.ndarray = labels
    try:  # integer labels read back as integers
        as_int = labels.astype(int)
        if np.array_equal(as_int.astype(str), labels):
            y = as_int
    except ValueError:
        pass
    return Dataset(name, X, y, tuple(header[i] for i in feature_idx),
                   f"Uploaded CSV: {len(body):,} rows, {len(feature_idx)} features, "
                   f"{len(classes)} classes (label column {label!r}).", label_name=label)


def _numeric_column(name: str, values: np.ndarray) -> np.ndarray:
    stripped = [str(v).strip() for v in values]
    gaps = [i for i, v in enumerate(stripped) if v.lower() in _MISSING]
    if gaps:
        raise DatasetError(f"Column {name!r} has {len(gaps)} missing values (first: row "
                           f"{gaps[0] + 2}). Fill them in or drop those rows.")
    out = np.empty(len(stripped))
    for i, v in enumerate(stripped):
        try:
            out[i] = float(v)
        except ValueError:
            raise DatasetError(
                f"Column {name!r} is not numeric (row {i + 2} has {v!r}). Feature columns "
                "must hold numbers: encode categories as numbers, drop the column, or choose "
                "it as the label column.") from None
        if not math.isfinite(out[i]):
            raise DatasetError(f"Column {name!r} has a non-finite value ({v!r} in row "
                               f"{i + 2}). Replace it with a number.")
    return out


# ---- splitting and scaling --------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    """A data set split into train / validation / test, scaled, labels as indices."""

    X_train: np.ndarray
    y_train: np.ndarray  # class indices
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    classes: tuple  # label of each class index
    test_index: np.ndarray  # rows of the original data set in the test split
    train_index: np.ndarray
    mean: np.ndarray  # scaling applied: (X - mean) / scale
    scale: np.ndarray
    grid: np.ndarray | None  # (GRID_STEPS**2, 2), scaled, for 2-D data
    grid_x: np.ndarray | None  # (GRID_STEPS,) in original units
    grid_y: np.ndarray | None


def _split(idx: np.ndarray, y: np.ndarray, size: float, seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(idx, test_size=size, random_state=seed, stratify=y[idx])
    except ValueError:
        # A class with a single sample cannot be stratified: plain random split.
        return train_test_split(idx, test_size=size, random_state=seed)


def prepare(ds: Dataset, test_size: int, val_size: int, standardize: bool, seed: int
            ) -> Prepared:
    """Split (stratified), standardise on the training split, encode labels.

    Parameters
    ----------
    ds : Dataset
    test_size : int
        Percent of the samples held out for testing.
    val_size : int
        Percent of the remaining samples held out for validation (0: none).
    standardize : bool
    seed : int
        Seeds the splits.
    """
    classes, y_idx = np.unique(ds.y, return_inverse=True)
    n = len(y_idx)
    idx = np.arange(n)
    train, test = _split(idx, y_idx, test_size / 100, seed)
    val = None
    if val_size > 0:
        train, val = _split(train, y_idx, val_size / 100, seed + 1)
    if len(train) < len(classes) or len(test) == 0:
        raise DatasetError("The splits leave too few training or test samples; use a "
                           "smaller test split or more data.")
    X = ds.X
    if standardize:
        mean = X[train].mean(axis=0)
        scale = X[train].std(axis=0)
        scale[scale == 0] = 1.0  # constant feature: leave it at zero
    else:
        mean = np.zeros(X.shape[1])
        scale = np.ones(X.shape[1])

    def t(rows: np.ndarray) -> np.ndarray:
        return ((X[rows] - mean) / scale).astype(np.float32)

    grid = grid_x = grid_y = None
    if ds.is_2d:
        lo, hi = X.min(axis=0), X.max(axis=0)
        pad = 0.1 * (hi - lo) + 1e-9
        grid_x = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_STEPS)
        grid_y = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_STEPS)
        gx, gy = np.meshgrid(grid_x, grid_y)
        grid = ((np.column_stack([gx.ravel(), gy.ravel()]) - mean) / scale).astype(np.float32)
    return Prepared(
        X_train=t(train), y_train=y_idx[train],
        X_val=None if val is None else t(val), y_val=None if val is None else y_idx[val],
        X_test=t(test), y_test=y_idx[test], classes=tuple(classes.tolist()),
        test_index=test, train_index=train, mean=mean, scale=scale,
        grid=grid, grid_x=grid_x, grid_y=grid_y)
