"""Optimisers and schedules against their update formulas on hand-set numbers."""

import math

import numpy as np
import pytest

from nn_core import schedules
from nn_core.optimizers import (
    OPTIMIZERS,
    SGD,
    Adam,
    Momentum,
    Nesterov,
    RMSprop,
    make_optimizer,
)

P0 = np.array([1.0, -2.0, 0.5])
G1 = np.array([0.1, -0.2, 0.3])
G2 = np.array([-0.4, 0.0, 0.2])
LR = 0.1


def run(opt, grads, folded=False):
    """Steps from ``g`` at LR, or (``folded``) from ``LR * g`` at learning rate 1."""
    p = P0.copy()
    for g in grads:
        if folded:
            opt.step(p, LR * g, 1.0)
        else:
            opt.step(p, g.copy(), LR)
    return p


def test_sgd():
    # p - lr g1 - lr g2, written out
    expected = np.array([1.0 - 0.01 + 0.04, -2.0 + 0.02 - 0.0, 0.5 - 0.03 - 0.02])
    np.testing.assert_allclose(run(SGD(), [G1, G2]), expected, rtol=1e-15)
    np.testing.assert_allclose(run(SGD(), [G1, G2], folded=True), expected, rtol=1e-15)


def test_momentum():
    mu = 0.9
    v1 = -LR * G1                      # [-0.01, 0.02, -0.03]
    v2 = mu * v1 - LR * G2             # [-0.009 + 0.04, 0.018, -0.027 - 0.02]
    np.testing.assert_allclose(v2, [0.031, 0.018, -0.047], rtol=1e-12)
    expected = P0 + v1 + v2
    np.testing.assert_allclose(run(Momentum(mu), [G1, G2]), expected, rtol=1e-14)
    np.testing.assert_allclose(run(Momentum(mu), [G1, G2], True), expected, rtol=1e-14)


def test_nesterov():
    mu = 0.9
    v1 = -LR * G1
    p1 = P0 + mu * v1 - LR * G1
    v2 = mu * v1 - LR * G2
    p2 = p1 + mu * v2 - LR * G2
    np.testing.assert_allclose(p1, [0.981, -1.962, 0.443], rtol=1e-12)
    np.testing.assert_allclose(run(Nesterov(mu), [G1, G2]), p2, rtol=1e-14)
    np.testing.assert_allclose(run(Nesterov(mu), [G1, G2], True), p2, rtol=1e-14)


def test_adam_first_step_is_lr_times_sign():
    # After one step m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps).
    p = run(Adam(epsilon=1e-8), [G1])
    np.testing.assert_allclose(p, P0 - LR * G1 / (np.abs(G1) + 1e-8), rtol=1e-14)


def test_adam_two_steps():
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = (1 - b1) * G1
    v = (1 - b2) * G1 ** 2
    p = P0 - LR * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
    m = b1 * m + (1 - b1) * G2
    v = b2 * v + (1 - b2) * G2 ** 2
    p = p - LR * (m / (1 - b1 ** 2)) / (np.sqrt(v / (1 - b2 ** 2)) + eps)
    np.testing.assert_allclose(run(Adam(b1, b2, eps), [G1, G2]), p, rtol=1e-13)


def test_rmsprop():
    rho, eps = 0.9, 1e-8
    s = (1 - rho) * G1 ** 2
    p = P0 - LR * G1 / (np.sqrt(s) + eps)
    s = rho * s + (1 - rho) * G2 ** 2
    p = p - LR * G2 / (np.sqrt(s) + eps)
    # hand value of the first coordinate: s1 = 0.001, step1 = 0.1*0.1/0.0316..
    assert p[0] == pytest.approx(1.0 - 0.1 * 0.1 / math.sqrt(0.001)
                                 + 0.1 * 0.4 / math.sqrt(0.9 * 0.001 + 0.1 * 0.16),
                                 rel=1e-6)
    np.testing.assert_allclose(run(RMSprop(rho, eps), [G1, G2]), p, rtol=1e-13)


def test_reset_forgets_state():
    opt = Adam()
    run(opt, [G1])
    opt.reset()
    assert opt.t == 0
    np.testing.assert_allclose(run(opt, [G1]), run(Adam(), [G1]))


def test_make_optimizer_rejects_unknown():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("adagrad")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("lr", [LR, 1.0])
def test_optimizers_keep_dtype_and_update_in_place(name, dtype, lr):
    p = P0.astype(dtype)
    g = G1.astype(dtype)
    ref_id = id(p)
    make_optimizer(name).step(p, g, lr)
    assert id(p) == ref_id and p.dtype == dtype and not np.array_equal(p, P0.astype(dtype))
    np.testing.assert_array_equal(g, G1.astype(dtype))  # the gradient is never written


def test_registry_builds_each_optimizer_with_its_hyperparameters():
    assert list(OPTIMIZERS) == ["sgd", "momentum", "nesterov", "adam", "rmsprop"]
    opt = make_optimizer("adam", momentum=0.5, beta_1=0.8, beta_2=0.99, epsilon=1e-6, rho=0.7)
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.8, 0.99, 1e-6)
    assert make_optimizer("nesterov", momentum=0.5, rho=0.7).momentum == 0.5
    assert repr(make_optimizer("rmsprop", rho=0.7)) == "RMSprop(t=0, rho=0.7, epsilon=1e-08)"
    for name, cls in OPTIMIZERS.items():
        assert cls.name == name
        assert set(cls.hyperparameters) <= {"momentum", "beta_1", "beta_2", "epsilon", "rho"}


def test_the_apps_option_lists_are_the_engines_registries():
    from nn_core.activations import ACTIVATIONS
    from playground import config

    assert tuple(ACTIVATIONS) == config.ACTIVATIONS
    assert tuple(OPTIMIZERS) == config.OPTIMIZERS
    assert tuple(schedules.SCHEDULES) == config.SCHEDULES


# ---- schedules --------------------------------------------------------------
def test_constant():
    assert [schedules.constant(0.1, e) for e in (0, 5, 99)] == [0.1, 0.1, 0.1]


def test_step():
    got = [schedules.step(0.8, e, step_size=3, decay=0.5) for e in range(8)]
    assert got == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]


def test_cosine():
    assert schedules.cosine(1.0, 0, 10) == 1.0
    assert schedules.cosine(1.0, 5, 10) == pytest.approx(0.5)
    assert schedules.cosine(1.0, 10, 10) == pytest.approx(0.0, abs=1e-15)
    assert schedules.cosine(1.0, 20, 10, lr_min=0.1) == pytest.approx(0.1)
    assert schedules.cosine(2.0, 2, 8, lr_min=0.0) == pytest.approx(
        1.0 + math.cos(math.pi / 4))


def test_invscaling():
    assert schedules.invscaling(1.0, 0) == 1.0
    assert schedules.invscaling(1.0, 3, power_t=0.5) == 0.5
    assert schedules.invscaling(0.3, 7, power_t=1.0) == pytest.approx(0.0375)


def test_plateau():
    sched = schedules.ReduceOnPlateau(1.0, decay=0.5, patience=2, lr_min=0.2)
    lrs = [sched.update(loss) for loss in [1.0, 0.9, 0.9, 0.9, 0.95, 0.9, 0.8, 0.8, 0.8,
                                           0.8, 0.8, 0.8]]
    # two non-improving epochs -> cut; counter restarts; floor at 0.2
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]


def test_schedule_registry_rules():
    from nn_core import TrainConfig

    assert list(schedules.SCHEDULES) == ["constant", "step", "cosine", "invscaling", "plateau"]
    cfg = TrainConfig(learning_rate=0.8, epochs=12, lr_decay=0.5, lr_min=0.1, power_t=1.0)
    rates = {name: rule(cfg, 6) for name, rule in schedules.SCHEDULES.items() if rule}
    assert rates == {"constant": 0.8, "step": 0.2, "cosine": pytest.approx(0.45),
                     "invscaling": pytest.approx(0.8 / 7)}
    assert schedules.SCHEDULES["plateau"] is None  # a ReduceOnPlateau's state


def test_trainer_applies_schedule_per_epoch(rng):
    from nn_core import Network, TrainConfig, Trainer

    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0).astype(int)
    net = Network(3, (4,), 2, rng=rng)
    cfg = TrainConfig(learning_rate=0.2, epochs=8, lr_schedule="step", lr_step_size=2,
                      batch_size=8)
    res = Trainer(net, cfg, rng).fit(X, y)
    assert [r.learning_rate for r in res.records] == [0.2, 0.2, 0.1, 0.1, 0.05, 0.05,
                                                      0.025, 0.025]
    cfg = TrainConfig(learning_rate=0.2, epochs=4, lr_schedule="cosine")
    res = Trainer(Network(3, (4,), 2, rng=rng), cfg, rng).fit(X, y)
    assert [r.learning_rate for r in res.records] == pytest.approx(
        [0.2 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
