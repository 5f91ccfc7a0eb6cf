"""The optimised training path gives the same numbers as the textbook maths.

Both run in float64 from the same initial weights and the same shuffles; the
reference (tests/reference.py) uses separate W and b arrays, new arrays at
every step and the optimisers' formulas verbatim.
"""

import numpy as np
import pytest

from nn_core import Network, TrainConfig, Trainer
from tests import reference as ref


def data(n=203, d=7, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (np.abs(X[:, :k]).argmax(axis=1) + (X[:, -1] > 1)) % k
    return X, y


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu", "identity"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "rmsprop"])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_optimised_training_equals_reference(optimizer, activation, alpha):
    X, y = data()
    net = Network(7, (9, 6), 4, activation, dtype=np.float64, rng=np.random.default_rng(1))
    Ws = [W.copy() for W, _ in net.parameters()]
    bs = [b.copy() for _, b in net.parameters()]
    lr = 0.01 if optimizer in ("adam", "rmsprop") else 0.1
    # batch 32 over 203 samples: six full batches and a partial one of 11
    config = TrainConfig(optimizer=optimizer, learning_rate=lr, batch_size=32, epochs=6,
                         alpha=alpha)
    result = Trainer(net, config, np.random.default_rng(2)).fit(X, y)
    ref_losses = ref.train(Ws, bs, X, y, activation, optimizer, lr, epochs=6, batch=32,
                           rng=np.random.default_rng(2), alpha=alpha)
    for (W, b), W_ref, b_ref in zip(net.parameters(), Ws, bs):
        np.testing.assert_allclose(W, W_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, b_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([r.train_loss for r in result.records], ref_losses,
                               rtol=1e-10)
    # same predictions, probabilities to 1e-12
    _, A = ref.forward(Ws, bs, X, activation)
    logits_ref = A[-1]
    np.testing.assert_array_equal(np.argmax(net.forward_logits(X), axis=1),
                                  np.argmax(logits_ref, axis=1))
    p_ref = np.exp(logits_ref - logits_ref.max(1, keepdims=True))
    p_ref /= p_ref.sum(1, keepdims=True)
    np.testing.assert_allclose(net.predict_proba(X), p_ref, rtol=1e-12, atol=1e-15)


def test_large_data_path_equals_reference(monkeypatch):
    """Data sets too big for the per-epoch gather use per-batch gathers: same numbers."""
    import nn_core.training as training

    monkeypatch.setattr(training, "_EPOCH_GATHER_BYTES", 0)
    X, y = data(n=150)
    net = Network(7, (5,), 4, "relu", dtype=np.float64, rng=np.random.default_rng(1))
    Ws = [W.copy() for W, _ in net.parameters()]
    bs = [b.copy() for _, b in net.parameters()]
    Trainer(net, TrainConfig(learning_rate=0.1, batch_size=16, epochs=3),
            np.random.default_rng(5)).fit(X, y)
    ref.train(Ws, bs, X, y, "relu", "sgd", 0.1, epochs=3, batch=16,
              rng=np.random.default_rng(5))
    np.testing.assert_allclose(net.layers[0].W, Ws[0], rtol=1e-10, atol=1e-12)


def test_float32_tracks_float64():
    """float32 training follows the float64 trajectory closely on a short run."""
    X, y = data()
    nets = [Network(7, (9, 6), 4, "relu", dtype=dt, rng=np.random.default_rng(1))
            for dt in (np.float32, np.float64)]
    for net in nets:
        Trainer(net, TrainConfig(learning_rate=0.1, epochs=5), np.random.default_rng(2)).fit(X, y)
    # float32 rounding flips a few ReLU kinks; the weights still agree to ~1e-3.
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=0, atol=3e-3)


@pytest.mark.parametrize("schedule", ["constant", "step"])
def test_unshuffled_training_equals_reference(schedule):
    """shuffle=False reuses the epoch layout; a changing learning rate must not."""
    X, y = data(n=100)
    net = Network(7, (6,), 4, "tanh", dtype=np.float64, rng=np.random.default_rng(1))
    Ws = [W.copy() for W, _ in net.parameters()]
    bs = [b.copy() for _, b in net.parameters()]
    cfg = TrainConfig(learning_rate=0.2, batch_size=16, epochs=4, shuffle=False,
                      lr_schedule=schedule, lr_step_size=1)
    Trainer(net, cfg, np.random.default_rng(5)).fit(X, y)
    opt = ref.Optim("sgd", 0.2)
    for epoch in range(4):
        opt.lr = 0.2 * (0.5 ** epoch if schedule == "step" else 1.0)
        for s in range(0, 100, 16):
            dWs, dbs = ref.gradients(Ws, bs, X[s:s + 16], y[s:s + 16], "tanh")
            opt.step(Ws + bs, dWs + dbs)
    np.testing.assert_allclose(net.layers[0].W, Ws[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.layers[1].b, bs[1], rtol=1e-10, atol=1e-12)
