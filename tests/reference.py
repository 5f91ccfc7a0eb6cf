"""A deliberately plain implementation of the same network, for cross-checks.

Written the way a textbook would (samples as rows, separate W and b per layer,
new arrays everywhere, no fusion, no folding), in float64. Tests train it side
by side with nn_core's optimised path and compare.
"""

from __future__ import annotations

import numpy as np

LEAKY = 0.01


def act(name, z):
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "identity":
        return z
    raise ValueError(name)


def act_grad(name, z):
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(name)


def forward(Ws, bs, X, activation):
    """Return the list of pre-activations and activations, and the logits."""
    A = [X]
    Zs = []
    for i, (W, b) in enumerate(zip(Ws, bs)):
        Z = A[-1] @ W + b
        Zs.append(Z)
        A.append(Z if i == len(Ws) - 1 else act(activation, Z))
    return Zs, A


def loss(Ws, bs, X, y, activation, alpha=0.0):
    """Mean cross-entropy (via log-sum-exp) plus alpha/2 * sum ||W||^2."""
    _, A = forward(Ws, bs, X, activation)
    logits = A[-1]
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    ce = np.mean(lse - logits[np.arange(len(y)), y])
    return ce + 0.5 * alpha * sum((W ** 2).sum() for W in Ws)


def gradients(Ws, bs, X, y, activation, alpha=0.0):
    """Back-propagation, textbook style."""
    Zs, A = forward(Ws, bs, X, activation)
    logits = A[-1]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    P = e / e.sum(axis=1, keepdims=True)
    Y = np.zeros_like(P)
    Y[np.arange(len(y)), y] = 1
    delta = (P - Y) / len(y)
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        dWs[i] = A[i].T @ delta + alpha * Ws[i]
        dbs[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ Ws[i].T) * act_grad(activation, Zs[i - 1])
    return dWs, dbs


class Optim:
    """The five optimisers, written from their textbook formulas."""

    def __init__(self, name, lr, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8, rho=0.9):
        self.name, self.lr, self.mu, self.b1, self.b2, self.eps, self.rho = (
            name, lr, momentum, b1, b2, eps, rho)
        self.state = {}
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        for k, (p, g) in enumerate(zip(params, grads)):
            st = self.state.setdefault(k, {"v": np.zeros_like(p), "m": np.zeros_like(p)})
            if self.name == "sgd":
                p -= self.lr * g
            elif self.name == "momentum":
                st["v"] = self.mu * st["v"] - self.lr * g
                p += st["v"]
            elif self.name == "nesterov":
                st["v"] = self.mu * st["v"] - self.lr * g
                p += self.mu * st["v"] - self.lr * g
            elif self.name == "adam":
                st["m"] = self.b1 * st["m"] + (1 - self.b1) * g
                st["v"] = self.b2 * st["v"] + (1 - self.b2) * g * g
                m_hat = st["m"] / (1 - self.b1 ** self.t)
                v_hat = st["v"] / (1 - self.b2 ** self.t)
                p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
            elif self.name == "rmsprop":
                st["v"] = self.rho * st["v"] + (1 - self.rho) * g * g
                p -= self.lr * g / (np.sqrt(st["v"]) + self.eps)


def train(Ws, bs, X, y, activation, optimizer, lr, epochs, batch, rng, alpha=0.0,
          shuffle=True):
    """Mini-batch training; permutations drawn as rng.permutation(n) per epoch."""
    opt = Optim(optimizer, lr)
    n = len(y)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        batch_losses = []
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            batch_losses.append(loss(Ws, bs, X[idx], y[idx], activation) * len(idx))
            dWs, dbs = gradients(Ws, bs, X[idx], y[idx], activation, alpha)
            opt.step(Ws + bs, dWs + dbs)
        losses.append(sum(batch_losses) / n)
    return losses
