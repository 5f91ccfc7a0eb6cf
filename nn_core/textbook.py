"""The engine as the maths reads: nn_core, written like a textbook.

This module is for reading: the How it works page shows it beside
each formula. Samples are rows (``X`` is ``(n, d)``, ``W`` is
``(n_in, n_out)``); each layer keeps what its backward pass needs and
has its ``forward`` and ``backward`` side by side; the optimisers and
schedules are their formulas. Arrays are new at every step: no
buffers, no tricks.

The fast engine (:mod:`nn_core.network`, :mod:`nn_core.training`)
computes the same numbers in place on preallocated buffers.
``tests/test_textbook.py`` trains both in float64 from the same
weights and shuffles and checks that they agree to 1e-10 for every
activation, optimiser and schedule, with L2, dropout and clipping.

>>> import numpy as np
>>> from nn_core import TrainConfig, textbook
>>> rng = np.random.default_rng(0)
>>> X, y = rng.standard_normal((60, 2)), np.arange(60) % 2
>>> net = textbook.Network.create([2, 8, 2], "tanh", rng)
>>> config = TrainConfig(optimizer="adam", learning_rate=0.01, epochs=5)
>>> history = textbook.train(net, X, y, config, rng)
>>> [round(epoch.loss, 2) for epoch in history][:2]
[0.72, 0.71]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from .activations import LEAKY_RELU_SLOPE


# ---- a dense layer: z = x W + b -------------------------------------
class Dense:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x  # kept for the backward pass
        return x @ self.W + self.b

    def backward(self, delta):  # delta = dL/dz, a row per sample
        self.dW = self.x.T @ delta  # dL/dW
        self.db = delta.sum(axis=0)  # dL/db
        return delta @ self.W.T  # dL/dx, for the layer below


# ---- activations: f and f' ------------------------------------------
class ReLU:
    def forward(self, z):
        self.z = z
        return np.maximum(z, 0)

    def backward(self, grad):
        return grad * (self.z > 0)


class LeakyReLU:
    def forward(self, z):
        self.z = z
        return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)

    def backward(self, grad):
        return grad * np.where(self.z > 0, 1.0, LEAKY_RELU_SLOPE)


class Tanh:
    def forward(self, z):
        self.a = np.tanh(z)
        return self.a

    def backward(self, grad):
        return grad * (1 - self.a ** 2)


class Sigmoid:
    def forward(self, z):
        self.a = 1 / (1 + np.exp(-z))
        return self.a

    def backward(self, grad):
        return grad * self.a * (1 - self.a)


class Identity:
    def forward(self, z):
        return z

    def backward(self, grad):
        return grad


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh,
               "sigmoid": Sigmoid, "identity": Identity}


# ---- inverted dropout -----------------------------------------------
class Dropout:
    """Keep a unit with chance 1 - rate, scale it by 1 / (1 - rate)."""

    def __init__(self, rate):
        self.rate = rate

    def forward(self, a, keep):  # keep: True where a unit survives
        self.mask = keep / (1 - self.rate)
        return a * self.mask

    def backward(self, grad):
        return grad * self.mask


# ---- softmax and cross-entropy --------------------------------------
def softmax(z):
    # minus each sample's largest logit: exp never overflows
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropy:
    def forward(self, z, y):  # per-sample loss -log p_y
        n, k = z.shape
        self.P = softmax(z)  # probabilities
        self.Y = np.eye(k)[y]  # one-hot targets
        m = z.max(axis=1, keepdims=True)
        log_sum_exp = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
        return log_sum_exp - z[np.arange(n), y]

    def backward(self):  # dL/dz, L the mean of the losses
        n = len(self.P)
        return (self.P - self.Y) / n


# ---- the network ----------------------------------------------------
class Network:
    """Dense layers, an activation (and dropout) between them."""

    def __init__(self, weights, biases, activation="relu",
                 dropout=0.0):
        self.dense = [Dense(W, b) for W, b in zip(weights, biases)]
        hidden = self.dense[:-1]
        self.act = [ACTIVATIONS[activation]() for _ in hidden]
        self.drop = [Dropout(dropout) for _ in hidden]
        self.dropout = dropout

    @classmethod
    def create(cls, sizes, activation, rng, init="glorot_normal",
               dropout=0.0):
        draw = INITIALIZERS[init]
        Ws = [draw(rng, n_in, n_out) for n_in, n_out in pairwise(sizes)]
        bs = [np.zeros(n_out) for n_out in sizes[1:]]
        return cls(Ws, bs, activation, dropout)

    def forward(self, X, keep=None):  # keep: masks, while training
        self.dropping = keep is not None and self.dropout > 0
        a = X
        for dense, act, drop in zip(self.dense, self.act, self.drop):
            a = act.forward(dense.forward(a))
            if self.dropping:
                a = drop.forward(a, keep(a.shape))
        return self.dense[-1].forward(a)  # the logits

    def backward(self, delta):
        delta = self.dense[-1].backward(delta)
        hidden = zip(self.dense, self.act, self.drop)
        for dense, act, drop in reversed(list(hidden)):
            if self.dropping:
                delta = drop.backward(delta)
            delta = dense.backward(act.backward(delta))

    def parameters(self):
        return [p for d in self.dense for p in (d.W, d.b)]

    def gradients(self, alpha=0.0):  # L2 on the weights only
        return [g for d in self.dense
                for g in (d.dW + alpha * d.W, d.db)]


def objective(net, X, y, alpha=0.0):
    """Mean cross-entropy + alpha/2 * the sum of squared weights."""
    loss = SoftmaxCrossEntropy().forward(net.forward(X), y).mean()
    return loss + alpha / 2 * sum((d.W ** 2).sum() for d in net.dense)


# ---- initialisation -------------------------------------------------
def glorot_normal(rng, n_in, n_out):
    std = math.sqrt(2 / (n_in + n_out))
    return rng.standard_normal((n_in, n_out)) * std


def glorot_uniform(rng, n_in, n_out):
    limit = math.sqrt(6 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_in, n_out))


def he_normal(rng, n_in, n_out):
    std = math.sqrt(2 / n_in)
    return rng.standard_normal((n_in, n_out)) * std


def he_uniform(rng, n_in, n_out):
    limit = math.sqrt(6 / n_in)
    return rng.uniform(-limit, limit, size=(n_in, n_out))


INITIALIZERS = {"glorot_normal": glorot_normal,
                "glorot_uniform": glorot_uniform,
                "he_normal": he_normal, "he_uniform": he_uniform}


# ---- optimisers: from the gradients g and the learning rate lr -------
class SGD:
    def __init__(self, params, config):
        self.params = params

    def step(self, grads, lr):
        for p, g in zip(self.params, grads):
            p -= lr * g


class Momentum:
    def __init__(self, params, config):
        self.params, self.mu = params, config.momentum
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads, lr):
        for p, v, g in zip(self.params, self.v, grads):
            v[:] = self.mu * v - lr * g
            p += v


class Nesterov(Momentum):
    def step(self, grads, lr):
        for p, v, g in zip(self.params, self.v, grads):
            v[:] = self.mu * v - lr * g
            p += self.mu * v - lr * g  # a look ahead along v


class Adam:
    def __init__(self, params, config):
        self.params, self.t = params, 0
        self.b1, self.b2 = config.beta_1, config.beta_2
        self.eps = config.epsilon
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads, lr):
        self.t += 1
        b1, b2, t = self.b1, self.b2, self.t
        for p, m, v, g in zip(self.params, self.m, self.v, grads):
            m[:] = b1 * m + (1 - b1) * g
            v[:] = b2 * v + (1 - b2) * g ** 2
            m_hat = m / (1 - b1 ** t)  # bias corrections
            v_hat = v / (1 - b2 ** t)
            p -= lr * m_hat / (np.sqrt(v_hat) + self.eps)


class RMSprop:
    def __init__(self, params, config):
        self.params = params
        self.rho, self.eps = config.rho, config.epsilon
        self.s = [np.zeros_like(p) for p in params]

    def step(self, grads, lr):
        for p, s, g in zip(self.params, self.s, grads):
            s[:] = self.rho * s + (1 - self.rho) * g ** 2
            p -= lr * g / (np.sqrt(s) + self.eps)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov,
              "adam": Adam, "rmsprop": RMSprop}


# ---- learning-rate schedules: the rate of epoch e (0-based) ---------
def constant(c, e):
    return c.learning_rate


def step(c, e):
    every = c.lr_step_size or max(1, c.epochs // 4)
    return c.learning_rate * c.lr_decay ** (e // every)


def cosine(c, e):
    progress = min(e / c.epochs, 1)
    wave = (1 + math.cos(math.pi * progress)) / 2  # from 1 to 0
    return c.lr_min + (c.learning_rate - c.lr_min) * wave


def invscaling(c, e):
    return c.learning_rate / (e + 1) ** c.power_t


class Plateau:
    """Cut the rate when the loss stalls for lr_patience epochs."""

    def __init__(self, c):
        self.c, self.lr = c, c.learning_rate
        self.best, self.bad_epochs = math.inf, 0

    def update(self, loss):  # after each epoch
        c = self.c
        improved = loss < self.best - 1e-4 * abs(self.best)
        if improved or self.best == math.inf:  # by 0.01 %
            self.best, self.bad_epochs = loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= c.lr_patience:
                self.lr = max(self.lr * c.lr_decay, c.lr_min)
                self.bad_epochs = 0


SCHEDULES = {"constant": constant, "step": step, "cosine": cosine,
             "invscaling": invscaling,
             "plateau": None}  # the rate is a Plateau's state


# ---- training -------------------------------------------------------
@dataclass
class Epoch:
    loss: float  # mean loss of the batches, as they were trained
    accuracy: float  # true class has the top logit (ties count)
    learning_rate: float
    grad_norms: list  # each layer's ||dL/dW||, on the last batch


def train_step(net, optimizer, X, y, config, lr, keep=None):
    """One update from one mini-batch; its losses and logits."""
    head = SoftmaxCrossEntropy()
    logits = net.forward(X, keep if config.dropout > 0 else None)
    losses = head.forward(logits, y)
    net.backward(head.backward())  # delta = (P - Y) / n
    grads = net.gradients(config.alpha)
    if config.clip_norm is not None:  # rescale to <= clip_norm
        norm = math.sqrt(sum((g ** 2).sum() for g in grads))
        if norm > config.clip_norm:
            grads = [g * (config.clip_norm / norm) for g in grads]
    optimizer.step(grads, lr)
    return losses, logits


def train(net, X, y, config, rng, keep=None):
    """Mini-batch training, a new shuffle every epoch.

    ``config``: a :class:`nn_core.TrainConfig` (or anything with
    its fields). ``keep(shape)`` draws a dropout mask, by default
    ``rng.random(shape) >= config.dropout``.
    """
    optimizer = OPTIMIZERS[config.optimizer](net.parameters(), config)
    schedule, plateau = SCHEDULES[config.lr_schedule], Plateau(config)
    keep = keep or (lambda shape: rng.random(shape) >= config.dropout)
    n, size, history = len(X), config.batch_size, []
    for e in range(config.epochs):
        lr = plateau.lr if schedule is None else schedule(config, e)
        order = rng.permutation(n) if config.shuffle else np.arange(n)
        losses, hits = [], 0
        for start in range(0, n, size):
            b = order[start:start + size]
            loss, z = train_step(net, optimizer, X[b], y[b], config,
                                 lr, keep)
            losses.append(loss)
            hits += (z[np.arange(len(b)), y[b]] == z.max(axis=1)).sum()
        loss = float(np.concatenate(losses).mean())
        plateau.update(loss)
        norms = [float(np.linalg.norm(d.dW)) for d in net.dense]
        history.append(Epoch(loss, float(hits / n), lr, norms))
    return history
