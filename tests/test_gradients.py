"""Back-propagation checked against finite differences (float64)."""

import numpy as np
import pytest

from nn_core import Network, TrainConfig, Trainer
from nn_core.activations import ACTIVATIONS
from tests import reference as ref


def weights(net):
    return [W.copy() for W, _ in net.parameters()], [b.copy() for _, b in net.parameters()]


def numeric_gradient(net, X, y, alpha):
    """Central differences of the reference loss over every parameter."""
    base = net.params.copy()
    grad = np.empty_like(base)
    h = 1e-6
    for i in range(base.size):
        for sign in (1, -1):
            net.params[:] = base
            net.params[i] += sign * h
            Ws, bs = weights(net)
            value = ref.loss(Ws, bs, X, y, net.activation, alpha)
            grad[i] = value if sign == 1 else (grad[i] - value) / (2 * h)
    net.params[:] = base
    return grad


def make_problem(activation, n_classes, seed=0, hidden=(6, 5)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((9, 4))
    y = np.arange(9) % n_classes  # every class present
    net = Network(4, hidden, n_classes, activation, dtype=np.float64, rng=rng)
    # Non-zero biases so the bias gradient is exercised in a generic state.
    for _, b in net.parameters():
        b[:] = rng.standard_normal(b.shape) * 0.1
    return net, X, y


def analytic_gradient(net, X, y):
    """nn_core's own backward pass on one batch holding all samples."""
    n = len(y)
    ws = net.workspace(n)
    x_rows = np.ones((n, X.shape[1] + 1))
    x_rows[:, :-1] = X
    Yc = np.zeros((net.n_classes, n))
    Yc[y, np.arange(n)] = 1.0 / n
    label_index = y * n + np.arange(n)
    s, zy = np.empty((1, n)), np.empty(n)
    inv_c = np.full((1, net.n_classes), float(n))
    net.train_batch(ws, x_rows.T, Yc, inv_c, label_index, s, zy)
    # s holds sum(exp(z - max)) / c with c = 1 / n
    return net.grads.copy(), float(np.mean(np.log(s[0] / n) - zy))


@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_backprop_matches_finite_differences(activation, n_classes):
    net, X, y = make_problem(activation, n_classes)
    grad, batch_loss = analytic_gradient(net, X, y)
    numeric = numeric_gradient(net, X, y, alpha=0.0)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    # the loss reported by the fused softmax/cross-entropy is the reference loss
    Ws, bs = weights(net)
    assert batch_loss == pytest.approx(ref.loss(Ws, bs, X, y, activation), rel=1e-12)


@pytest.mark.parametrize("clip", [None, 1e9], ids=["lr-folded", "plain"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_trainer_step_is_gradient_descent_on_the_penalised_loss(activation, n_classes,
                                                                 alpha, clip):
    """One full-batch SGD step moves the parameters by -lr * gradient (with L2)."""
    net, X, y = make_problem(activation, n_classes, seed=1)
    numeric = numeric_gradient(net, X, y, alpha)
    before = net.params.copy()
    lr = 0.5
    config = TrainConfig(optimizer="sgd", learning_rate=lr, batch_size=len(y), epochs=1,
                         alpha=alpha, shuffle=False, clip_norm=clip)
    Trainer(net, config, np.random.default_rng(0)).fit(X, y)
    step_gradient = (before - net.params) / lr
    np.testing.assert_allclose(step_gradient, numeric, rtol=1e-5, atol=1e-7)


def test_no_hidden_layer_is_logistic_regression():
    net, X, y = make_problem("relu", 3, hidden=())
    grad, _ = analytic_gradient(net, X, y)
    np.testing.assert_allclose(grad, numeric_gradient(net, X, y, 0.0), rtol=1e-5,
                               atol=1e-8)


def test_deep_network_gradients():
    net, X, y = make_problem("tanh", 4, hidden=(5, 4, 6, 3, 5))
    grad, _ = analytic_gradient(net, X, y)
    np.testing.assert_allclose(grad, numeric_gradient(net, X, y, 0.0), rtol=1e-5,
                               atol=1e-8)
