"""The fast engine is a verified implementation of nn_core.textbook.

Both train in float64 from the same initial weights, the same shuffles and the
same dropout masks. The fast engine works in place on feature-major buffers,
fuses the softmax with the loss gradient and folds the learning rate into the
output delta (FoldedUpdate); the textbook does none of that. Weights, per-epoch
losses, accuracies, learning rates and gradient norms agree to 1e-10.
"""

import numpy as np
import pytest

from nn_core import Network, NeuralNetworkClassifier, TrainConfig, Trainer, textbook
from nn_core.activations import ACTIVATIONS
from nn_core.initializers import INITIALIZERS
from nn_core.losses import OutputTargets
from nn_core.optimizers import OPTIMIZERS, make_optimizer
from nn_core.schedules import SCHEDULES
from nn_core.training import FoldedUpdate

RTOL = 1e-10


def data(n=203, d=7, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (np.abs(X[:, :k]).argmax(axis=1) + (X[:, -1] > 1)) % k
    return X, y


def twins(activation="relu", hidden=(9, 6), dropout=0.0, n_features=7, n_classes=4,
          dtype=np.float64):
    """A fast network and a textbook network with the same initial weights."""
    net = Network(n_features, hidden, n_classes, activation, dtype=dtype,
                  rng=np.random.default_rng(1))
    book = textbook.Network([W.astype(np.float64) for W, _ in net.parameters()],
                            [b.astype(np.float64) for _, b in net.parameters()],
                            activation, dropout)
    return net, book


def fast_masks(rng, rate):
    """Dropout masks drawn as the fast engine draws them: (units, batch), then transposed."""
    def keep(shape):
        draws = rng.random(shape[::-1])
        return (draws >= rate).T

    return keep


def train_both(config, activation="relu", X=None, y=None, hidden=(9, 6), seed=2):
    X, y = data() if X is None else (X, y)
    net, book = twins(activation, hidden, config.dropout)
    result = Trainer(net, config, np.random.default_rng(seed)).fit(X, y)
    rng = np.random.default_rng(seed)
    history = textbook.train(book, X, y, config, rng, keep=fast_masks(rng, config.dropout))
    assert result.status == "completed", result.message
    return net, book, result, history


def assert_same(net, book, result, history):
    for (W, b), dense in zip(net.parameters(), book.dense):
        np.testing.assert_allclose(W, dense.W, rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(b, dense.b, rtol=RTOL, atol=1e-12)
    records = result.records
    np.testing.assert_allclose([r.train_loss for r in records], [e.loss for e in history],
                               rtol=RTOL)
    assert [r.train_accuracy for r in records] == [e.accuracy for e in history]
    np.testing.assert_allclose([r.learning_rate for r in records],
                               [e.learning_rate for e in history], rtol=1e-13)
    np.testing.assert_allclose([r.grad_norms for r in records],
                               [e.grad_norms for e in history], rtol=RTOL, atol=1e-13)


def lr_for(optimizer):
    return 0.01 if optimizer in ("adam", "rmsprop") else 0.1


# ---- the grid: every activation x optimizer, with and without L2 ----------------
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_fast_engine_equals_textbook(optimizer, activation, alpha):
    # batch 32 over 203 samples: six full batches and a partial one of 11
    config = TrainConfig(optimizer=optimizer, learning_rate=lr_for(optimizer), batch_size=32,
                         epochs=6, alpha=alpha)
    net, book, result, history = train_both(config, activation)
    assert_same(net, book, result, history)
    # same predictions, probabilities to 1e-12
    X, _ = data()
    np.testing.assert_allclose(net.predict_proba(X), textbook.softmax(book.forward(X)),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_every_schedule_equals_textbook(schedule, optimizer):
    # step every 2 epochs; plateau cuts after 1 epoch without improvement (dropout
    # makes the training loss wobble); cosine and plateau floor at lr_min.
    config = TrainConfig(optimizer=optimizer, learning_rate=lr_for(optimizer), epochs=10,
                         lr_schedule=schedule, lr_step_size=2, lr_patience=1, lr_min=1e-3,
                         power_t=0.7, dropout=0.5)
    net, book, result, history = train_both(config, "tanh")
    assert_same(net, book, result, history)
    rates = {r.learning_rate for r in result.records}
    assert len(rates) == 1 if schedule == "constant" else len(rates) > 1, rates


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_dropout_equals_textbook_for_every_activation(activation):
    config = TrainConfig(optimizer="sgd", learning_rate=0.1, epochs=4, dropout=0.3, alpha=0.01)
    assert_same(*train_both(config, activation))


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_dropout_equals_textbook_for_every_optimizer(optimizer):
    config = TrainConfig(optimizer=optimizer, learning_rate=lr_for(optimizer), epochs=4,
                         dropout=0.5)
    assert_same(*train_both(config, "relu"))


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_clipping_equals_textbook(optimizer, alpha):
    config = TrainConfig(optimizer=optimizer, learning_rate=lr_for(optimizer), epochs=4,
                         clip_norm=0.3, alpha=alpha)
    net, book, result, history = train_both(config, "relu")
    assert_same(net, book, result, history)
    # the clip binds: the last batch's gradient is longer than 0.3
    assert max(np.linalg.norm(r.grad_norms) for r in result.records) > 0.3


@pytest.mark.parametrize("schedule", ["constant", "step"])
def test_unshuffled_training_equals_textbook(schedule):
    """shuffle=False reuses the epoch layout; a changing learning rate must not."""
    X, y = data(n=100)
    config = TrainConfig(learning_rate=0.2, batch_size=16, epochs=4, shuffle=False,
                         lr_schedule=schedule, lr_step_size=1)
    assert_same(*train_both(config, "tanh", X, y, hidden=(6,)))


def test_large_data_path_equals_textbook(monkeypatch):
    """Data sets too big for the per-epoch gather use per-batch gathers: same numbers."""
    import nn_core.training as training

    monkeypatch.setattr(training, "_EPOCH_GATHER_BYTES", 0)
    X, y = data(n=150)
    config = TrainConfig(learning_rate=0.1, batch_size=16, epochs=3, dropout=0.2)
    assert_same(*train_both(config, "relu", X, y, hidden=(5,)))


def test_float32_tracks_float64():
    """float32 training follows the float64 trajectory closely on a short run."""
    X, y = data()
    nets = [Network(7, (9, 6), 4, "relu", dtype=dt, rng=np.random.default_rng(1))
            for dt in (np.float32, np.float64)]
    for net in nets:
        Trainer(net, TrainConfig(learning_rate=0.1, epochs=5), np.random.default_rng(2)).fit(X, y)
    # float32 rounding flips a few ReLU kinks; the weights still agree to ~1e-3.
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=0, atol=3e-3)


# ---- the one speed trick, on its own ---------------------------------------------------
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_folded_update_is_the_textbook_update(optimizer, alpha):
    """Three full-batch steps through FoldedUpdate equal three textbook steps."""
    X, y = data(n=40)
    net, book = twins("tanh")
    lr = 0.3
    config = TrainConfig(optimizer=optimizer, learning_rate=lr, alpha=alpha)
    update = FoldedUpdate(net, make_optimizer(optimizer), config)
    scale = update.start_epoch(lr)
    assert scale == (lr if optimizer in ("sgd", "momentum", "nesterov") else 1.0)
    targets = OutputTargets.for_batch(y, 4, scale)
    x_T = np.hstack([X, np.ones((len(X), 1))]).T
    ws = net.workspace(len(X))
    book_optimizer = textbook.OPTIMIZERS[optimizer](book.parameters(), config)
    for _ in range(3):
        net.train_batch(ws, x_T, targets)
        update.step()
        losses, _ = textbook.train_step(book, book_optimizer, X, y, config, lr)
        np.testing.assert_allclose(targets.batch_loss(), losses, rtol=1e-12)
    np.testing.assert_allclose(update.gradient_norms(),
                               [np.linalg.norm(d.dW) for d in book.dense], rtol=RTOL)
    for (W, b), dense in zip(net.parameters(), book.dense):
        np.testing.assert_allclose(W, dense.W, rtol=RTOL, atol=1e-13)
        np.testing.assert_allclose(b, dense.b, rtol=RTOL, atol=1e-13)


def test_clipping_turns_folding_off():
    net, _ = twins()
    config = TrainConfig(optimizer="sgd", clip_norm=1.0)
    assert FoldedUpdate(net, make_optimizer("sgd"), config).start_epoch(0.1) == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lr", [1e-18, 1e-19, 1e-20, 1e-37, 1e-38, 1e-40, 1e-45, 1e-300])
def test_a_tiny_learning_rate_is_not_divergence(dtype, lr):
    """lr <= 1e-37 used to overflow n / lr in float32 and be reported as diverged."""
    X, y = data(n=100)
    net, _ = twins(dtype=dtype)
    before = net.params.copy()
    loss_before = float(np.mean(textbook.SoftmaxCrossEntropy().forward(
        net.forward_logits(X, np.float64), y)))
    config = TrainConfig(optimizer="sgd", learning_rate=lr, epochs=3, batch_size=32)
    result = Trainer(net, config, np.random.default_rng(0)).fit(X, y)
    assert result.status == "completed", result.message
    losses = [r.train_loss for r in result.records]
    np.testing.assert_allclose(losses, loss_before, rtol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(net.params, before, rtol=1e-6, atol=1e-12)
    assert all(np.isfinite(r.grad_norms).all() and min(r.grad_norms) > 0
               for r in result.records)


def test_a_tiny_learning_rate_in_the_estimator():
    X, y = data(n=100)
    with np.errstate(all="raise"):  # nothing overflows or is divided by zero on the way
        clf = NeuralNetworkClassifier(hidden_layer_sizes=(8,), learning_rate=1e-37, epochs=3,
                                      random_state=0, dtype="float64").fit(X, y)
    assert clf.status_ == "completed" and np.isfinite(clf.loss_curve_).all()


# ---- initialisation and names ------------------------------------------------------------
@pytest.mark.parametrize("init", [*INITIALIZERS, "auto"])
def test_initial_weights_equal_textbook(init):
    sizes = (7, 9, 6, 4)
    net = Network(sizes[0], sizes[1:-1], sizes[-1], "relu", init, np.float64,
                  np.random.default_rng(5))
    book = textbook.Network.create(sizes, "relu", np.random.default_rng(5),
                                   init="glorot_normal" if init == "auto" else init)
    for (W, b), dense in zip(net.parameters(), book.dense):
        np.testing.assert_array_equal(W, dense.W)
        np.testing.assert_array_equal(b, dense.b)


def test_textbook_covers_every_name_of_the_engine():
    assert list(textbook.ACTIVATIONS) == list(ACTIVATIONS)
    assert list(textbook.OPTIMIZERS) == list(OPTIMIZERS)
    assert list(textbook.SCHEDULES) == list(SCHEDULES)
    assert list(textbook.INITIALIZERS) == list(INITIALIZERS)
