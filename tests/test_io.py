"""Saving and loading models: round trips and every kind of bad file."""

import io
import json
import zipfile

import numpy as np
import pytest

import nn_core
from nn_core import NeuralNetworkClassifier
from nn_core.io import load_network


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 6))
    y = np.array(["red", "green", "blue", "green"] * 20)
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(7, 5), activation="tanh", epochs=4,
                                  optimizer="adam", random_state=0).fit(X, y)
    return clf, X


def test_round_trip(tmp_path, fitted):
    clf, X = fitted
    path = tmp_path / "model.npz"
    clf.save(path)
    loaded = NeuralNetworkClassifier.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.predict(X).tolist() == clf.predict(X).tolist()
    assert loaded.classes_.tolist() == ["blue", "green", "red"]
    assert loaded.get_params() == clf.get_params()
    assert loaded.loss_curve_ == clf.loss_curve_
    assert loaded.n_iter_ == 4
    # module-level helpers do the same
    nn_core.save(clf, tmp_path / "again.npz")
    np.testing.assert_array_equal(nn_core.load(tmp_path / "again.npz").coefs_[1],
                                  clf.coefs_[1])


def test_loaded_model_can_keep_training(tmp_path, fitted):
    clf, X = fitted
    clf.save(tmp_path / "m.npz")
    loaded = NeuralNetworkClassifier.load(tmp_path / "m.npz")
    loaded.partial_fit(X, clf.predict(X))
    assert loaded.n_iter_ == 5


def test_no_pickle_inside(tmp_path, fitted):
    clf, _ = fitted
    clf.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        for key in archive.files:
            assert archive[key].dtype != object
        config = json.loads(str(archive["config"]))
    assert config["network"]["hidden_layer_sizes"] == [7, 5]


def model_bytes(clf):
    buf = io.BytesIO()
    clf.save(buf)
    return buf.getvalue()


def rewrite(data: bytes, **changes) -> bytes:
    """Copy an archive, replacing or dropping (None) some entries."""
    src = np.load(io.BytesIO(data), allow_pickle=False)
    entries = {k: src[k] for k in src.files}
    for k, v in changes.items():
        if v is None:
            entries.pop(k)
        else:
            entries[k] = v
    out = io.BytesIO()
    np.savez(out, **entries)
    return out.getvalue()


def bad_files(clf):
    good = model_bytes(clf)
    cfg = json.loads(str(np.load(io.BytesIO(good))["config"]))
    cfg_big = json.loads(json.dumps(cfg))
    cfg_big["network"]["hidden_layer_sizes"] = [8, 5]
    out = io.BytesIO()
    np.savez(out, weights=np.ones(3))
    foreign_npz = out.getvalue()
    out = io.BytesIO()
    np.save(out, np.ones(3))
    npy = out.getvalue()
    out = io.BytesIO()
    np.save(out, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    pickled = out.getvalue()
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("readme.txt", "hello")
    return [
        ("truncated", good[: len(good) // 2], "not a readable .npz archive"),
        ("empty", b"", "not a readable .npz archive"),
        ("text", b"hello, world\n" * 10, "not a readable .npz archive"),
        ("foreign npz", foreign_npz, "not an nn_core model file"),
        ("npy", npy, "single array"),
        ("pickled npy", pickled, "not a readable .npz archive"),
        ("zip of text", zbuf.getvalue(), "not an nn_core model file"),
        ("wrong version", rewrite(good, format_version=np.array(99)), "format version"),
        ("params too short", rewrite(good, params=np.ones(5, np.float32)),
         "describes 107 parameters"),
        ("config mismatch", rewrite(good, config=np.array(json.dumps(cfg_big))),
         "parameters .* but the file holds"),
        ("bad json", rewrite(good, config=np.array("{nope")), "invalid configuration"),
        ("missing classes", rewrite(good, classes=None), "missing the entries"),
        ("class count", rewrite(good, classes=np.array(["a", "b"])), "class labels"),
        ("nan weights", rewrite(good, params=np.full(107, np.nan, np.float32)), "NaN"),
        ("int params", rewrite(good, params=np.ones(107, np.int64)), "float array"),
    ]


def test_bad_files_raise_value_error(tmp_path, fitted):
    clf, _ = fitted
    for name, data, message in bad_files(clf):
        path = tmp_path / f"{name}.npz"
        path.write_bytes(data)
        with pytest.raises(ValueError, match=message):
            NeuralNetworkClassifier.load(path)
        with pytest.raises(ValueError, match=message):
            load_network(io.BytesIO(data))


def test_missing_file_is_value_error(tmp_path):
    with pytest.raises(ValueError, match="not a readable"):
        NeuralNetworkClassifier.load(tmp_path / "nope.npz")


def test_mixed_labels_cannot_be_saved():
    from nn_core import Network
    from nn_core.io import save_network

    with pytest.raises(ValueError, match="all numbers or all strings"):
        save_network(io.BytesIO(), Network(2, (2,), 2), np.array([1, "a"], dtype=object))
