"""NeuralNetworkClassifier behaviour: labels, determinism, warm start, partial_fit,
divergence, early stopping, dropout, validation messages."""

import io
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs, make_classification

from nn_core import DivergenceWarning, Network, NeuralNetworkClassifier, TrainConfig, Trainer
from nn_core.losses import OutputTargets


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=300, centers=4, n_features=5, random_state=0)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def test_fit_predict_score(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(16,), epochs=30, random_state=0)
    assert clf.fit(X, y) is clf
    assert clf.score(X, y) > 0.95
    assert clf.predict(X).shape == (300,)
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 4) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    assert [W.shape for W in clf.coefs_] == [(5, 16), (16, 4)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (4,)]
    assert clf.n_iter_ == 30 and len(clf.loss_curve_) == 30
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None
    assert clf.status_ == "completed"
    assert clf.n_features_in_ == 5


def test_string_labels_are_returned(blobs):
    X, y = blobs
    names = np.array(["ant", "bee", "cat", "dog"])[y]
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(8,), epochs=20, random_state=0)
    clf.fit(X, names)
    assert clf.classes_.tolist() == ["ant", "bee", "cat", "dog"]
    assert set(clf.predict(X)) <= set(names)
    assert clf.score(X, names) > 0.9


def test_two_classes_use_softmax_with_two_outputs():
    X, y = make_classification(n_samples=200, random_state=0)
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(), epochs=20, random_state=0).fit(X, y)
    assert clf.coefs_[0].shape == (20, 2)
    assert clf.predict_proba(X).shape == (200, 2)


def test_same_seed_gives_bit_identical_curves(blobs):
    X, y = blobs
    kw = dict(hidden_layer_sizes=(12, 7), epochs=15, dropout=0.2, random_state=7,
              optimizer="adam", learning_rate=0.005)
    a = NeuralNetworkClassifier(**kw).fit(X, y)
    b = NeuralNetworkClassifier(**kw).fit(X, y)
    assert a.loss_curve_ == b.loss_curve_  # exact equality, not approx
    for Wa, Wb in zip(a.coefs_, b.coefs_):
        assert np.array_equal(Wa, Wb)
    c = NeuralNetworkClassifier(**{**kw, "random_state": 8}).fit(X, y)
    assert c.loss_curve_ != a.loss_curve_


def test_partial_fit_epochs_equal_fit_epochs(blobs):
    X, y = blobs
    kw = dict(hidden_layer_sizes=(10,), epochs=5, random_state=3, optimizer="momentum")
    full = NeuralNetworkClassifier(**kw).fit(X, y)
    inc = NeuralNetworkClassifier(**kw)
    for _ in range(5):
        inc.partial_fit(X, y, classes=np.unique(y))
    assert inc.n_iter_ == 5
    assert inc.loss_curve_ == full.loss_curve_
    np.testing.assert_array_equal(inc.coefs_[0], full.coefs_[0])


def test_partial_fit_classes(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(4,), random_state=0)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2, 3])
    assert clf.classes_.tolist() == [0, 1, 2, 3]
    clf.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"labels \[7\] that are not in classes_"):
        clf.partial_fit(X[:3], [0, 1, 7])


def test_warm_start_continues_from_current_weights(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0,
                                  warm_start=True)
    clf.fit(X, y)
    after_first = clf.coefs_[0].copy()
    loss_first = clf.loss_curve_[-1]
    clf.fit(X, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[5] < clf.loss_curve_[0]  # did not restart from scratch
    assert clf.loss_curve_[5] == pytest.approx(loss_first, rel=0.3)
    assert not np.array_equal(after_first, clf.coefs_[0])
    cold = NeuralNetworkClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0)
    cold.fit(X, y).fit(X, y)
    assert cold.n_iter_ == 5
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X[y < 3], y[y < 3])


def test_coefs_are_views_of_the_model(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0)
    clf.fit(X, y)
    clf.coefs_[-1][:] = 0
    clf.intercepts_[-1][:] = [0, 0, 0, 5]
    assert (clf.predict(X) == 3).all()


def test_pickle_round_trip_keeps_views(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0)
    clf.fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    clone.partial_fit(X, y)  # training after unpickling updates what coefs_ shows
    assert not np.array_equal(clone.coefs_[0], clf.coefs_[0])


def test_divergence_is_reported_and_predictions_stay_finite(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(64, 64), learning_rate=1e4,
                                  epochs=50, random_state=0)
    with pytest.warns(DivergenceWarning, match="Lower the learning rate"):
        clf.fit(X * 100, y)
    assert clf.status_ == "diverged"
    assert "diverged" in clf.status_message_
    assert clf.n_iter_ < 50
    assert np.isfinite(clf.predict_proba(X)).all()
    assert all(np.isfinite(W).all() for W in clf.coefs_)


def test_early_stopping_restores_best_weights(blobs):
    X, y = blobs
    rng = np.random.default_rng(0)
    y_noisy = np.where(rng.random(len(y)) < 0.3, rng.integers(0, 4, len(y)), y)
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(128, 128), optimizer="adam",
                                  learning_rate=0.01, epochs=300, early_stopping=True,
                                  n_iter_no_change=5, random_state=0)
    clf.fit(X, y_noisy)
    assert clf.status_ == "early_stopped"
    assert clf.n_iter_ < 300
    assert len(clf.validation_scores_) == clf.n_iter_
    best = int(np.argmin(clf.validation_loss_curve_))
    assert clf.n_iter_ - 1 - best >= 5  # stopped patience epochs after the best
    assert clf.best_validation_score_ == clf.validation_scores_[best]


def test_trainer_early_stopping_restores_the_best_epoch_weights():
    """The restored weights give exactly the best epoch's validation loss."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 6))
    y = rng.integers(0, 3, 120)  # pure noise: validation loss rises quickly
    net = Network(6, (64,), 3, rng=rng)
    cfg = TrainConfig(optimizer="adam", learning_rate=0.02, epochs=200,
                      early_stopping=True, n_iter_no_change=4)
    res = Trainer(net, cfg, rng).fit(X[:90], y[:90], X[90:], y[90:])
    assert res.status == "early_stopped"
    best = min(res.records, key=lambda r: r.val_loss)
    assert res.best_epoch == best.epoch
    from nn_core.losses import cross_entropy
    restored = float(np.mean(cross_entropy(net.forward_logits(X[90:]), y[90:])))
    assert restored == pytest.approx(best.val_loss, rel=1e-6)


def test_records_and_callbacks_can_stop():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    y = (X[:, 0] > 0).astype(int)
    net = Network(3, (5, 4), 2, rng=rng)
    seen = []

    def cb(record):
        seen.append(record)
        return record.epoch == 3

    res = Trainer(net, TrainConfig(epochs=10), rng, [cb]).fit(X, y, X[:20], y[:20])
    assert res.status == "stopped" and res.epochs_run == 3
    r = seen[-1]
    assert r.epoch == 3 and len(r.weight_norms) == 3 and len(r.grad_norms) == 3
    assert all(n > 0 for n in r.weight_norms + r.grad_norms)
    assert r.val_loss is not None and 0 <= r.val_accuracy <= 1
    assert r.samples_per_second > 0 and r.elapsed >= r.epoch_seconds > 0
    with pytest.raises(Exception):  # noqa: B017 - frozen dataclass
        r.epoch = 5
    assert r.to_dict()["train_loss"] == r.train_loss


def test_request_stop_from_another_thread():
    import threading
    import time

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 20))
    y = rng.integers(0, 3, 2000)
    trainer = Trainer(Network(20, (256, 256), 3, rng=rng),
                      TrainConfig(epochs=100000, batch_size=8), rng)
    threading.Timer(0.3, trainer.request_stop).start()
    t0 = time.perf_counter()
    res = trainer.fit(X, y)
    assert res.status == "stopped"
    assert time.perf_counter() - t0 < 2.0


def test_dropout_is_training_only_and_inverted():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    y = rng.integers(0, 2, 64)
    net = Network(4, (200,), 2, activation="identity", rng=rng)
    ws = net.workspace(64, dropout=0.5, rng=np.random.default_rng(1))
    x_rows = np.ones((64, 5), dtype=np.float32)
    x_rows[:, :-1] = X
    net.train_batch(ws, x_rows.T, OutputTargets.for_batch(y, 2, dtype=np.float32))
    hidden = ws.hidden[0][:-1]
    plain = (x_rows @ net.layers[0].Wb).T
    kept = hidden != 0
    assert 0.4 < kept.mean() < 0.6  # about half of the units dropped
    np.testing.assert_allclose(hidden[kept], 2 * plain[kept], rtol=1e-5)  # survivors x2
    # inference ignores dropout
    np.testing.assert_array_equal(net.forward_logits(X), net.forward_logits(X))


def test_dropout_and_l2_train_reasonably(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(32,), dropout=0.3, alpha=1e-3,
                                  epochs=30, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "rmsprop"])
@pytest.mark.parametrize("schedule", ["constant", "step", "cosine", "invscaling", "plateau"])
def test_every_optimizer_and_schedule_learns(blobs, optimizer, schedule):
    X, y = blobs
    lr = 0.01 if optimizer in ("adam", "rmsprop") else 0.05
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(16,), optimizer=optimizer,
                                  learning_rate=lr, lr_schedule=schedule, epochs=15,
                                  random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("init", ["auto", "glorot_normal", "glorot_uniform", "he_normal",
                                  "he_uniform"])
def test_every_activation_and_init_learns(blobs, activation, init):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(16, 8), activation=activation,
                                  init=init, optimizer="adam", learning_rate=0.01,
                                  epochs=20, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_initial_weight_statistics():
    rng = np.random.default_rng(0)
    for init, var in [("glorot_normal", 2 / (400 + 600)), ("glorot_uniform", 2 / 1000),
                      ("he_normal", 2 / 400), ("he_uniform", 2 / 400)]:
        net = Network(400, (600,), 2, "tanh", init, np.float64, rng)
        W = net.layers[0].W
        assert W.var() == pytest.approx(var, rel=0.02), init
        assert abs(W.mean()) < 0.01 * np.sqrt(var)
        assert not net.layers[0].b.any()
    # "auto" is the tutorial's Glorot/Xavier normal for every activation (it was He
    # for the ReLU family until the tutorial's default was adopted).
    for activation in ("relu", "leaky_relu", "tanh", "sigmoid", "identity"):
        assert Network(4, (3,), 2, activation, "auto").init == "glorot_normal"


def test_float64_dtype(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(8,), epochs=5, dtype="float64",
                                  random_state=0).fit(X, y)
    assert clf.coefs_[0].dtype == np.float64


def test_evaluate_keys_and_values(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(16,), epochs=20, random_state=0)
    clf.fit(X, y)
    rep = clf.evaluate(X, y)
    for key in ("accuracy", "precision", "recall", "f1", "macro_precision", "macro_recall",
                "macro_f1", "confusion_matrix", "support", "log_loss"):
        assert key in rep
    assert rep["accuracy"] == pytest.approx(clf.score(X, y))
    assert len(rep["precision"]) == 4 and np.array(rep["confusion_matrix"]).sum() == 300
    # a test set that lacks a class still reports every class
    rep2 = clf.evaluate(X[y != 2], y[y != 2])
    assert len(rep2["recall"]) == 4 and rep2["support"][2] == 0
    with pytest.raises(ValueError, match="not trained on"):
        clf.evaluate(X[:2], [0, 9])


# ---- validation messages ----------------------------------------------------
BAD_PARAMS = [
    ({"learning_rate": -1}, "learning_rate must be > 0, got -1"),
    ({"learning_rate": 0}, "learning_rate must be > 0"),
    ({"learning_rate": float("nan")}, "learning_rate must be > 0"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"epochs": 2.5}, "epochs must be an integer >= 1"),
    ({"alpha": -0.1}, "alpha must be >= 0"),
    ({"dropout": 0.95}, "dropout must be between 0 and 0.9"),
    ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ({"beta_1": -0.1}, r"beta_1 must be in \[0, 1\)"),
    ({"beta_2": 1}, r"beta_2 must be in \[0, 1\)"),
    ({"epsilon": 0}, "epsilon must be > 0"),
    ({"optimizer": "adagrad"}, "optimizer must be one of"),
    ({"activation": "swish"}, "activation must be one of"),
    ({"init": "zeros"}, "init must be 'auto' or one of"),
    ({"lr_schedule": "warmup"}, "lr_schedule must be one of"),
    ({"hidden_layer_sizes": (64, 0)}, "between 1 and 1024"),
    ({"hidden_layer_sizes": (2000,)}, "between 1 and 1024"),
    ({"hidden_layer_sizes": "big"}, "between 1 and 1024"),
    ({"validation_fraction": 1.5}, r"validation_fraction must be in \(0, 1\)"),
    ({"dtype": "float16"}, "dtype must be 'float32' or 'float64'"),
    ({"clip_norm": -1}, "clip_norm must be None or > 0"),
    ({"n_iter_no_change": 0}, "n_iter_no_change must be an integer >= 1"),
]


@pytest.mark.parametrize("params,message", BAD_PARAMS, ids=[m for _, m in BAD_PARAMS])
def test_bad_hyperparameters_are_named(params, message):
    X = np.random.default_rng(0).standard_normal((10, 2))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=message):
        NeuralNetworkClassifier(**params).fit(X, y)


BAD_DATA = [
    (np.ones(10), np.arange(10) % 2, "Expected 2D array, got 1D array"),
    (np.ones((10, 2, 2)), np.arange(10) % 2, "dim 3"),
    (np.array([[1.0, np.nan]] * 10), np.arange(10) % 2, "Input X contains NaN"),
    (np.array([[1.0, np.inf]] * 10), np.arange(10) % 2, "Input X contains infinity"),
    (np.array([["a", "b"]] * 10), np.arange(10) % 2, "could not convert|dtype"),
    (np.ones((10, 2)), np.arange(9) % 2, "inconsistent numbers of samples"),
    (np.ones((10, 2)), np.zeros(10), "only 1 class"),
    (np.ones((10, 2)), np.linspace(0, 1, 10), "Unknown label type"),
    (np.ones((0, 2)), np.zeros(0), "0 sample"),
    (np.ones((10, 2)), np.ones((10, 2)), "y should be a 1d array|multilabel"),
]


@pytest.mark.parametrize("X,y,message", BAD_DATA, ids=[m for *_, m in BAD_DATA])
def test_bad_data_messages(X, y, message):
    with pytest.raises(ValueError, match=message):
        NeuralNetworkClassifier(epochs=1).fit(X, y)


def test_predict_checks_feature_count(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(4,), epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but NeuralNetworkClassifier "
                                         "is expecting 5 features"):
        clf.predict(X[:, :3])


def test_trainer_rejects_bad_arrays():
    net = Network(3, (4,), 2)
    trainer = Trainer(net, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="X has 2 features, but the network expects 3"):
        trainer.fit(np.ones((5, 2)), np.zeros(5, int))
    with pytest.raises(ValueError, match="NaN or infinity"):
        trainer.fit(np.full((5, 3), np.nan), np.zeros(5, int))
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\)"):
        trainer.fit(np.ones((5, 3)), np.array([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match="early_stopping needs validation data"):
        Trainer(net, TrainConfig(early_stopping=True)).fit(np.ones((5, 3)), np.zeros(5, int))


def test_no_warning_on_normal_fit(blobs):
    X, y = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NeuralNetworkClassifier(hidden_layer_sizes=(8,), epochs=3, random_state=0).fit(X, y)


def test_batch_larger_than_data_is_clipped():
    X = np.random.default_rng(0).standard_normal((10, 2))
    y = np.arange(10) % 2
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(3,), batch_size=1000, epochs=2,
                                  random_state=0).fit(X, y)
    assert clf.n_iter_ == 2


def test_save_to_file_object(blobs):
    X, y = blobs
    clf = NeuralNetworkClassifier(hidden_layer_sizes=(4,), epochs=2, random_state=0)
    buf = io.BytesIO()
    clf.fit(X, y).save(buf)
    buf.seek(0)
    loaded = NeuralNetworkClassifier.load(buf)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
