"""How it works: the maths of a training run, each formula beside the code that computes it.

The code on this page is read from ``nn_core/textbook.py`` with
``inspect.getsource``, never copied into the page, so what is on screen is what
runs. The last section says how the fast engine, which the playground trains
with, differs from it.
"""

from __future__ import annotations

import inspect
import textwrap

import streamlit as st

from nn_core import metrics, textbook
from nn_core.losses import softmax_cross_entropy_grad_
from nn_core.network import Network
from nn_core.training import FoldedUpdate, Trainer
from playground.guards import guarded

FAST_ENGINE_NOTE = """
The playground does not train with the code above but with nn_core's fast engine
(`nn_core/network.py`, `nn_core/training.py`). It computes the same numbers: the tests train
both from the same weights, shuffles and dropout masks and compare weights, losses and
gradient norms to 1e-10, for every activation, optimiser and schedule, with L2, dropout and
clipping (`tests/test_textbook.py`). It is faster because a 32-sample step of a small network
is eight small matrix products, and every other NumPy call around them costs 1.5 to 2 µs
whatever its size, so the number of calls decides the speed. The fast engine makes few:

* **One flat parameter vector.** Each layer's $W$ and $b$ are views into it, $b$ stored as an
  extra row of $W$ and each input given a constant 1, so one product computes $aW + b$ and
  one vector operation updates every layer.
* **Buffers made once.** Activations are kept feature-major (one column per sample) in
  arrays allocated per batch width; every call writes into them, nothing is allocated while
  training.
* **Softmax and the loss gradient fused** into seven in-place calls; the shuffled data are
  gathered once per epoch, and the epoch's loss and accuracy are computed once from
  per-sample terms.
* **The learning rate folded into the output delta** for SGD, momentum and Nesterov: the
  batch computes $\\eta\\,(P - Y)/n$, so the gradients arrive already multiplied by $\\eta$
  and the optimiser steps with rate 1, which saves a pass over all the parameters per step.
  This one trick lives in `FoldedUpdate`.

On the tutorial's Digits set (hidden layers 64-32, batch 32, 500 epochs, one CPU thread) the
fast engine trains about 4 times faster than the textbook code (0.8 s against 3.1 s in one run)
and about 8 times faster than scikit-learn's `MLPClassifier` (`docs/benchmarks.md`).
"""


def source(*objects: object) -> str:
    """The source of functions, classes or methods, dedented and joined."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(o)).strip() for o in objects)


def beside(*objects: object):
    """Two columns: the maths (returned, to write into) and the textbook code of ``objects``."""
    maths, code = st.columns([4, 6], gap="medium")
    code.code(source(*objects), language="python")
    return maths


def section(title: str) -> None:
    st.subheader(title, divider="gray")


def _dense_layer() -> None:
    section("1. A dense layer")
    with beside(textbook.Dense):
        st.markdown("Each layer multiplies its input by its weights and adds the bias:")
        st.latex(r"z = a\,W + b")
        st.markdown("Going backwards it receives $\\delta = \\partial L / \\partial z$ and "
                    "returns the gradients of its parameters and of its input:")
        st.latex(r"\frac{\partial L}{\partial W} = a^{\top}\delta, \qquad "
                 r"\frac{\partial L}{\partial b} = \sum_{i=1}^{n} \delta_i, \qquad "
                 r"\frac{\partial L}{\partial a} = \delta\, W^{\top}")


def _activations() -> None:
    section("2. Activations")
    with beside(textbook.ReLU, textbook.LeakyReLU, textbook.Tanh, textbook.Sigmoid):
        st.markdown("Between the layers an activation function $f$ bends the signal; "
                    "its backward pass multiplies the incoming gradient by $f'$:")
        st.latex(r"\mathrm{relu}(z) = \max(0, z), \qquad \mathrm{relu}'(z) = [z > 0]")
        st.latex(r"\mathrm{leaky}(z) = \begin{cases} z & z > 0 \\ 0.01\,z & z \le 0"
                 r"\end{cases}")
        st.latex(r"\tanh'(z) = 1 - \tanh^2 z")
        st.latex(r"\sigma(z) = \frac{1}{1 + e^{-z}}, \qquad "
                 r"\sigma'(z) = \sigma(z)\,\big(1 - \sigma(z)\big)")
        st.markdown("Because $\\sigma' \\le 1/4$, gradients through many sigmoid layers "
                    "shrink geometrically: the *vanishing gradient*. Compare the "
                    "gradient-norm chart of a 6-layer sigmoid network with a ReLU one.")


def _softmax() -> None:
    section("3. Softmax")
    with beside(textbook.softmax):
        st.markdown("The output layer turns its $K$ scores (logits) into probabilities. "
                    "Subtracting each sample's largest logit $m$ changes nothing "
                    "mathematically but keeps $e^{x}$ from overflowing:")
        st.latex(r"p_k = \frac{e^{z_k - m}}{\sum_{j=1}^{K} e^{z_j - m}}, \qquad "
                 r"m = \max_j z_j")


def _cross_entropy() -> None:
    section("4. Cross-entropy and the output delta")
    with beside(textbook.SoftmaxCrossEntropy):
        st.markdown("The loss is the average negative log-probability of the true class "
                    "$y_i$, computed from the logits (exact even when $p_{i, y_i}$ is tiny):")
        st.latex(r"L = -\frac{1}{n}\sum_{i=1}^{n} \log p_{i, y_i}")
        st.latex(r"-\log p_{i, y_i} = m_i + \log \sum_j e^{z_{ij} - m_i} - z_{i y_i}")
        st.markdown("Softmax and cross-entropy together have a remarkably simple "
                    "gradient: the probabilities minus the one-hot targets $Y$.")
        st.latex(r"\delta^{(L)} = \frac{\partial L}{\partial z^{(L)}} = "
                 r"\frac{1}{n}\,(P - Y)")


def _backpropagation() -> None:
    section("5. Back-propagation")
    with beside(textbook.Network.forward, textbook.Network.backward,
                textbook.Network.gradients, textbook.objective):
        st.markdown("The forward pass runs the layers in order and keeps what each "
                    "backward pass needs. The chain rule then carries $\\delta$ back, "
                    "layer by layer:")
        st.latex(r"\delta^{(l-1)} = \big(\delta^{(l)} W^{(l)\top}\big) \odot "
                 r"f'\big(z^{(l-1)}\big)")
        st.markdown("With L2 regularisation training minimises "
                    "$L + \\frac{\\alpha}{2}\\sum_l \\lVert W^{(l)} \\rVert^2$, which adds "
                    "$\\alpha W$ to each weight gradient (biases are not penalised):")
        st.latex(r"\frac{\partial}{\partial W^{(l)}}\Big(L + \frac{\alpha}{2}\sum_k "
                 r"\lVert W^{(k)}\rVert^2\Big) = a^{(l-1)\top} \delta^{(l)} + \alpha W^{(l)}")
        st.markdown("The tests check every gradient against finite differences.")


def _dropout() -> None:
    section("6. Dropout")
    with beside(textbook.Dropout):
        st.markdown("With dropout rate $r$, each hidden unit is zeroed with probability "
                    "$r$ during training and the survivors are scaled up, so nothing "
                    "changes at prediction time; the same mask multiplies $\\delta$:")
        st.latex(r"\tilde a = a \odot \frac{M}{1 - r}, \qquad M_{ij} \sim "
                 r"\mathrm{Bernoulli}(1 - r)")


def _optimisers() -> None:
    section("7. Optimisers")
    st.markdown("With gradient $g$ and learning rate $\\eta$ (step $t$):")
    optimisers = [
        (textbook.SGD, r"\theta \leftarrow \theta - \eta\, g"),
        (textbook.Momentum, r"v \leftarrow \mu v - \eta g, \qquad \theta \leftarrow "
                            r"\theta + v"),
        (textbook.Nesterov, r"v \leftarrow \mu v - \eta g, \qquad \theta \leftarrow "
                            r"\theta + \mu v - \eta g"),
        (textbook.Adam, r"\begin{aligned} m &\leftarrow \beta_1 m + (1-\beta_1) g, \quad "
                        r"v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\ \theta &\leftarrow "
                        r"\theta - \eta\, \frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + "
                        r"\epsilon} \end{aligned}"),
        (textbook.RMSprop, r"s \leftarrow \rho s + (1-\rho) g^2, \qquad \theta "
                           r"\leftarrow \theta - \eta\, \frac{g}{\sqrt{s} + \epsilon}"),
    ]
    for cls, formula in optimisers:
        with beside(cls):
            st.markdown(f"**{cls.__name__}**")
            st.latex(formula)


def _schedules() -> None:
    section("8. Learning-rate schedules")
    with beside(textbook.constant, textbook.step, textbook.cosine, textbook.invscaling,
                textbook.Plateau):
        st.markdown("The rate of epoch $e$ (of $E$), from the initial rate $\\eta_0$:")
        st.latex(r"\text{step: } \eta_e = \eta_0\, \gamma^{\lfloor e / k \rfloor}")
        st.latex(r"\text{cosine: } \eta_e = \eta_{\min} + \tfrac{1}{2}(\eta_0 - "
                 r"\eta_{\min})\big(1 + \cos(\pi e / E)\big)")
        st.latex(r"\text{invscaling: } \eta_e = \eta_0 / (e+1)^{p}")
        st.markdown("*plateau* multiplies the rate by $\\gamma$ when the validation (or "
                    "training) loss has not improved for a few epochs.")


def _initialisation() -> None:
    section("9. Initialisation")
    with beside(textbook.glorot_normal, textbook.he_normal):
        st.latex(r"\text{Glorot/Xavier: } W \sim \mathcal{N}\!\Big(0, \frac{2}{n_{in} + "
                 r"n_{out}}\Big)")
        st.latex(r"\text{He: } W \sim \mathcal{N}\!\Big(0, \frac{2}{n_{in}}\Big)")
        st.markdown("Biases start at zero. The playground initialises with Glorot/Xavier "
                    "normal, as the tutorial does (scikit-learn uses Glorot too). He keeps "
                    "the signal's variance through deep stacks of ReLU layers, which zero "
                    "half their inputs; it is one choice away. Both also come in a uniform "
                    "form with the same variance.")


def _training_loop() -> None:
    section("10. The training loop")
    with beside(textbook.train_step, textbook.train):
        st.markdown("Each epoch shuffles the training set and walks through it in "
                    "mini-batches: forward, loss, backward, L2, optional clipping of the "
                    "gradient's norm, and one optimiser step. The playground also records "
                    "each epoch's loss and accuracy, the learning rate and each layer's "
                    "weight and gradient norms, and a loss that becomes infinite stops the "
                    "run with advice instead of producing NaN predictions.")
        st.latex(r"\text{clipping: } g \leftarrow g \cdot \min\!\Big(1, "
                 r"\frac{c}{\lVert g \rVert}\Big)")


def _metrics() -> None:
    section("11. Metrics")
    with beside(metrics.precision_recall_f1_support):
        st.latex(r"\text{precision}_k = \frac{TP_k}{TP_k + FP_k}\qquad \text{recall}_k = "
                 r"\frac{TP_k}{TP_k + FN_k} \qquad F_1 = \frac{2\,TP_k}{2\,TP_k + FP_k + "
                 r"FN_k}")
        st.markdown("The confusion matrix counts test samples by true class (rows) and "
                    "predicted class (columns); macro averages weigh every class the same, "
                    "weighted averages by class size.")


def _fast_engine() -> None:
    section("12. What the fast engine does differently")
    st.markdown(FAST_ENGINE_NOTE)
    for obj, name in ((Network.train_batch, "nn_core.network.Network.train_batch"),
                      (softmax_cross_entropy_grad_,
                       "nn_core.losses.softmax_cross_entropy_grad_"),
                      (FoldedUpdate, "nn_core.training.FoldedUpdate"),
                      (Trainer.fit, "nn_core.training.Trainer.fit")):
        with st.expander(f"The fast engine's `{name}`"):
            st.code(source(obj), language="python")


#: The page's sections, in the order a training run computes them.
SECTIONS = (_dense_layer, _activations, _softmax, _cross_entropy, _backpropagation, _dropout,
            _optimisers, _schedules, _initialisation, _training_loop, _metrics, _fast_engine)


@guarded
def page() -> None:
    st.title("How it works")
    st.markdown(
        "The playground trains **nn_core**, a neural network written from scratch in NumPy. "
        "Here is everything a training run computes, in the order it happens. Each formula "
        "stands beside the code that computes it, from `nn_core/textbook.py`: the engine "
        "written the way the maths reads. Notation: a mini-batch has $n$ samples as rows of "
        "$X$; layer $l$ has weights $W^{(l)}$ (inputs by outputs) and bias $b^{(l)}$.")
    for draw in SECTIONS:
        draw()


page()
