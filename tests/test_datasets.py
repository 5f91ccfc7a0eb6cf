"""Data loading: built-in sets, generators, CSV validation, splitting."""

import io
import zipfile

import numpy as np
import pytest

from playground.datasets import (
    DATASET_NAMES,
    MAX_CLASSES,
    DatasetError,
    csv_columns,
    load_builtin,
    parse_csv,
    prepare,
)


def csv(rows, header="a,b,label"):
    return (header + "\n" + "\n".join(rows) + "\n").encode()


GOOD = csv([f"{i},{i * 2 % 7},{'yes' if i % 3 else 'no'}" for i in range(30)])


def test_good_csv():
    ds = parse_csv(GOOD)
    assert ds.X.shape == (30, 2) and ds.feature_names == ("a", "b")
    assert set(ds.y) == {"yes", "no"} and ds.label_name == "label"
    assert ds.n_classes == 2


def test_label_column_choice_and_int_labels():
    data = csv([f"{i % 3},{i},{i * 0.5}" for i in range(20)], header="kind,x,y")
    ds = parse_csv(data, label_column="kind")
    assert ds.feature_names == ("x", "y")
    assert ds.y.dtype.kind == "i" and sorted(set(ds.y)) == [0, 1, 2]
    assert csv_columns(data, 10**6) == ["kind", "x", "y"]


def test_semicolon_and_tab_delimiters():
    for sep in (";", "\t"):
        data = GOOD.decode().replace(",", sep).encode()
        assert parse_csv(data).X.shape == (30, 2)


def xlsx_bytes():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<xml/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


BAD = [
    ("empty", b"", "The file is empty"),
    ("whitespace", b"  \n\n  ", "The file is empty"),
    ("only commas", b",,,\n, ,\n", "The file is empty"),
    ("header only", b"a,b,label\n", "header row but no data rows"),
    ("one column", b"label\n1\n2\n", "single column"),
    ("non-numeric", csv(["1,2,x"] * 9 + ["1,red,y"]),
     "Column 'b' is not numeric \\(row 11 has 'red'\\)"),
    ("missing", csv(["1,2,x"] * 5 + ["1,,y"] + ["3,4,y"] * 5),
     "Column 'b' has 1 missing values \\(first: row 7\\)"),
    ("NA text", csv(["1,NaN,x"] + ["3,4,y"] * 12), "Column 'b' has 1 missing values"),
    ("missing label", csv(["1,2,"] + ["3,4,y"] * 12), "label column 'label' is empty in 1 rows"),
    ("single class", csv(["1,2,x"] * 12), "only one class \\('x'\\)"),
    ("too many classes", csv([f"{i},{i},c{i}" for i in range(MAX_CLASSES + 1)]),
     f"{MAX_CLASSES + 1} different values; the playground supports up to {MAX_CLASSES}"),
    ("ragged", csv(["1,2,x"] * 4 + ["1,2,3,x"] + ["1,2,y"] * 6),
     "Row 6 has 4 values but the header has 3"),
    ("binary png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
     "not a text CSV file"),
    ("xlsx renamed", xlsx_bytes(), "not a text CSV file"),
    ("too few rows", csv(["1,2,x", "2,3,y"]), "only 2 data rows; at least 10"),
    ("infinite", csv(["1,inf,x"] + ["3,4,y"] * 12), "non-finite value"),
]


@pytest.mark.parametrize("name,data,message", BAD, ids=[b[0] for b in BAD])
def test_bad_csv_has_specific_message(name, data, message):
    with pytest.raises(DatasetError, match=message):
        parse_csv(data)


def test_size_limit():
    big = GOOD * 1000
    with pytest.raises(DatasetError, match=r"The file is 0\.\d\d MB; this server accepts CSV "
                                           r"files up to 0\.\d\d MB"):
        parse_csv(big, max_bytes=len(big) - 1)
    with pytest.raises(DatasetError, match=r"has more than 10 data rows .*; this server accepts "
                                           r"up to 10"):
        parse_csv(GOOD, max_rows=10)


def test_unknown_label_column():
    with pytest.raises(DatasetError, match="no column named 'nope'"):
        parse_csv(GOOD, label_column="nope")


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_builtin_datasets(name):
    ds = load_builtin(name, n_samples=300, noise=0.1, n_classes=4, seed=1)
    assert ds.X.ndim == 2 and len(ds.X) == len(ds.y) and np.isfinite(ds.X).all()
    assert ds.n_classes >= 2
    if name in ("Moons", "Circles", "XOR", "Spiral", "Gaussian blobs"):
        assert ds.is_2d and len(ds.y) == 300
    if name in ("Spiral", "Gaussian blobs"):
        assert ds.n_classes == 4
    # same seed, same data
    again = load_builtin(name, n_samples=300, noise=0.1, n_classes=4, seed=1)
    np.testing.assert_array_equal(ds.X, again.X)


def test_prepare_splits_scales_and_encodes():
    ds = load_builtin("Iris")
    p = prepare(ds, test_size=20, val_size=10, standardize=True, seed=0)
    n = len(ds.y)
    assert len(p.y_test) == 30 and len(p.y_train) + len(p.y_val) == 120
    assert len(p.y_val) == 12
    assert set(np.concatenate([p.train_index, p.test_index])).isdisjoint(set()) is True
    assert len(set(p.train_index) | set(p.test_index)) == len(p.train_index) + len(p.test_index)
    assert p.classes == ("setosa", "versicolor", "virginica")
    # scaled with the training split's statistics only
    np.testing.assert_allclose(p.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(p.X_train.std(axis=0), 1, atol=1e-4)
    assert p.X_train.dtype == np.float32
    # stratified: class shares of the test split match the data
    shares = np.bincount(p.y_test) / len(p.y_test)
    np.testing.assert_allclose(shares, np.bincount(np.unique(ds.y, return_inverse=True)[1]) / n,
                               atol=0.05)
    assert p.grid is None


def test_prepare_2d_grid_covers_the_data():
    ds = load_builtin("Moons", n_samples=200, noise=0.1, seed=0)
    p = prepare(ds, 20, 0, True, 0)
    assert p.X_val is None and p.grid.shape == (100 * 100, 2)
    assert p.grid_x[0] < ds.X[:, 0].min() and p.grid_x[-1] > ds.X[:, 0].max()
    assert p.grid_y[0] < ds.X[:, 1].min() and p.grid_y[-1] > ds.X[:, 1].max()
    # the grid is scaled like the data
    np.testing.assert_allclose(p.grid[0], (np.array([p.grid_x[0], p.grid_y[0]]) - p.mean)
                               / p.scale, rtol=1e-5)


def test_prepare_without_scaling_keeps_values():
    ds = load_builtin("Wine")
    p = prepare(ds, 25, 0, False, 3)
    np.testing.assert_allclose(p.X_test, ds.X[p.test_index].astype(np.float32))


def test_constant_feature_does_not_divide_by_zero():
    data = csv([f"5,{i},{'a' if i % 2 else 'b'}" for i in range(20)])
    p = prepare(parse_csv(data), 20, 0, True, 0)
    assert np.isfinite(p.X_train).all()
