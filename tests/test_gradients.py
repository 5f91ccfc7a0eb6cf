"""Back-propagation checked against finite differences (float64).

Both engines are checked independently: the textbook's backward pass
(nn_core.textbook) and the fast engine's, against central differences of the
textbook's objective (mean cross-entropy + alpha/2 * sum of squared weights).
"""

import numpy as np
import pytest

from nn_core import Network, TrainConfig, Trainer, textbook
from nn_core.activations import ACTIVATIONS
from nn_core.losses import OutputTargets


def as_textbook(net):
    """A textbook network holding copies of ``net``'s weights."""
    return textbook.Network([W.copy() for W, _ in net.parameters()],
                            [b.copy() for _, b in net.parameters()], net.activation)


def objective(net, X, y, alpha=0.0):
    return textbook.objective(as_textbook(net), X, y, alpha)


def numeric_gradient(net, X, y, alpha):
    """Central differences of the textbook objective over every parameter."""
    base = net.params.copy()
    grad = np.empty_like(base)
    h = 1e-6
    for i in range(base.size):
        for sign in (1, -1):
            net.params[:] = base
            net.params[i] += sign * h
            value = objective(net, X, y, alpha)
            grad[i] = value if sign == 1 else (grad[i] - value) / (2 * h)
    net.params[:] = base
    return grad


def textbook_gradient(net, X, y, alpha):
    """The textbook's backward pass, laid out like ``net.params`` (each layer: W, then b)."""
    book = as_textbook(net)
    head = textbook.SoftmaxCrossEntropy()
    head.forward(book.forward(X), y)
    book.backward(head.backward())
    grads = book.gradients(alpha)  # [dW1, db1, dW2, db2, ...]
    return np.concatenate([np.vstack([dW, db]).ravel() for dW, db in
                           zip(grads[::2], grads[1::2])])


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
    """nn_core's fast backward pass on one batch holding all samples."""
    n = len(y)
    x_rows = np.ones((n, X.shape[1] + 1))
    x_rows[:, :-1] = X
    targets = OutputTargets.for_batch(y, net.n_classes)
    net.train_batch(net.workspace(n), x_rows.T, targets)
    return net.grads.copy(), float(np.mean(targets.batch_loss()))


@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_backprop_matches_finite_differences(activation, n_classes):
    net, X, y = make_problem(activation, n_classes)
    grad, batch_loss = analytic_gradient(net, X, y)
    numeric = numeric_gradient(net, X, y, alpha=0.0)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    # the loss reported by the fused softmax/cross-entropy is the textbook's loss
    assert batch_loss == pytest.approx(objective(net, X, y), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_textbook_backprop_matches_finite_differences(activation, n_classes, alpha):
    """The textbook is checked on its own, not only against the fast engine."""
    net, X, y = make_problem(activation, n_classes, seed=2)
    np.testing.assert_allclose(textbook_gradient(net, X, y, alpha),
                               numeric_gradient(net, X, y, alpha), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("clip", [None, 1e9], ids=["lr-folded", "not-folded"])
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
