"""How it works: the maths the engine runs, each part next to its code."""

from __future__ import annotations

import inspect

import streamlit as st

from nn_core import activations, initializers, losses, metrics, optimizers, schedules, training
from nn_core.layers import Dense
from nn_core.network import Network
from playground.ui import guarded


def code(obj: object, name: str) -> None:
    """Show the engine function or class that implements the formula above."""
    with st.expander(f"Implemented in `{name}`"):
        st.code(inspect.getsource(obj), language="python")


def section(title: str) -> None:
    st.subheader(title, divider="gray")


@guarded
def page() -> None:
    st.title("How it works")
    st.markdown(
        "The playground trains **nn_core**, a neural network written from scratch in NumPy. "
        "Here is everything it computes, in the order it happens, each formula next to the "
        "engine code that implements it. Notation: a mini-batch has $n$ samples as rows of "
        "$X$; layer $l$ has weights $W^{(l)}$ (inputs by outputs) and bias $b^{(l)}$.")

    section("1. Forward pass")
    st.markdown("Each hidden layer multiplies its input by its weights, adds the bias and "
                "applies an activation function $f$:")
    st.latex(r"z^{(l)} = a^{(l-1)} W^{(l)} + b^{(l)}, \qquad a^{(l)} = f\big(z^{(l)}\big),"
             r"\qquad a^{(0)} = X")
    st.markdown("The engine keeps the bias as an extra row of $W$ and appends a constant 1 "
                "to every input, so one matrix product does both.")
    code(Dense.forward, "nn_core.layers.Dense.forward")
    code(Network.train_batch, "nn_core.network.Network.train_batch")

    section("2. Activations")
    st.latex(r"\mathrm{relu}(z) = \max(0, z) \qquad \mathrm{leaky}(z) = "
             r"\begin{cases} z & z > 0 \\ 0.01\,z & z \le 0\end{cases}")
    st.latex(r"\tanh(z) = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}} \qquad "
             r"\sigma(z) = \frac{1}{1 + e^{-z}}")
    st.markdown("Back-propagation needs their derivatives; each can be written with the "
                "output $a = f(z)$ alone:")
    st.latex(r"\mathrm{relu}'(z) = [a > 0] \qquad \tanh'(z) = 1 - a^2 \qquad "
             r"\sigma'(z) = a\,(1 - a)")
    st.markdown("Because $\\sigma' \\le 1/4$, gradients through many sigmoid layers shrink "
                "geometrically: the *vanishing gradient*. Compare the gradient-norm chart "
                "of a 6-layer sigmoid network with a ReLU one.")
    code(activations, "nn_core.activations")

    section("3. Softmax")
    st.markdown("The output layer turns its $K$ scores (logits) into probabilities. "
                "Subtracting each sample's largest logit $m$ changes nothing mathematically "
                "but keeps $e^{x}$ from overflowing:")
    st.latex(r"p_k = \frac{e^{z_k - m}}{\sum_{j=1}^{K} e^{z_j - m}}, \qquad m = \max_j z_j")
    code(losses.softmax, "nn_core.losses.softmax")

    section("4. Cross-entropy loss")
    st.markdown("The loss is the average negative log-probability of the true class "
                "$y_i$, computed from the logits with the log-sum-exp form (exact even "
                "when $p_{y_i}$ is tiny):")
    st.latex(r"L = -\frac{1}{n}\sum_{i=1}^{n} \log p_{i, y_i} = \frac{1}{n}\sum_{i=1}^{n}"
             r"\Big(m_i + \log \sum_j e^{z_{ij} - m_i} - z_{i y_i}\Big)")
    st.markdown("With L2 regularisation the optimiser minimises "
                "$L + \\frac{\\alpha}{2}\\sum_l \\lVert W^{(l)} \\rVert^2$ (biases are not "
                "penalised).")
    code(losses.cross_entropy, "nn_core.losses.cross_entropy")

    section("5. Back-propagation")
    st.markdown("Softmax and cross-entropy together have a remarkably simple gradient: the "
                "predicted probabilities minus the one-hot targets $Y$.")
    st.latex(r"\delta^{(L)} = \frac{\partial L}{\partial z^{(L)}} = \frac{1}{n}\,(P - Y)")
    st.markdown("The chain rule then carries the error backwards, layer by layer:")
    st.latex(r"\frac{\partial L}{\partial W^{(l)}} = a^{(l-1)\top} \delta^{(l)} + \alpha "
             r"W^{(l)}, \qquad \frac{\partial L}{\partial b^{(l)}} = \sum_i \delta^{(l)}_i,"
             r"\qquad \delta^{(l-1)} = \big(\delta^{(l)} W^{(l)\top}\big) \odot "
             r"f'\big(z^{(l-1)}\big)")
    st.markdown("With **dropout** rate $r$, each hidden unit is zeroed with probability $r$ "
                "during training and the survivors are scaled by $1/(1-r)$; the same mask "
                "multiplies $\\delta$. The tests check every gradient against finite "
                "differences.")
    code(losses.softmax_cross_entropy_grad_, "nn_core.losses.softmax_cross_entropy_grad_")

    section("6. Optimisers")
    st.markdown("With gradient $g$ and learning rate $\\eta$ (step $t$):")
    st.latex(r"\text{SGD:}\quad \theta \leftarrow \theta - \eta\, g")
    st.latex(r"\text{Momentum:}\quad v \leftarrow \mu v - \eta g,\quad \theta \leftarrow "
             r"\theta + v \qquad \text{Nesterov:}\quad \theta \leftarrow \theta + \mu v - "
             r"\eta g")
    st.latex(r"\text{Adam:}\quad m \leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow "
             r"\beta_2 v + (1-\beta_2) g^2,\quad \theta \leftarrow \theta - \eta\, "
             r"\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon}")
    st.latex(r"\text{RMSprop:}\quad s \leftarrow \rho s + (1-\rho) g^2,\quad \theta "
             r"\leftarrow \theta - \eta\, \frac{g}{\sqrt{s} + \epsilon}")
    code(optimizers, "nn_core.optimizers")

    section("7. Learning-rate schedules")
    st.latex(r"\text{step: } \eta_e = \eta_0\, \gamma^{\lfloor e / k \rfloor} \qquad "
             r"\text{cosine: } \eta_e = \tfrac{1}{2}\eta_0\big(1 + \cos(\pi e / E)\big)"
             r"\qquad \text{invscaling: } \eta_e = \eta_0 / (e+1)^{p}")
    st.markdown("*plateau* halves the rate when the validation (or training) loss has not "
                "improved for a few epochs.")
    code(schedules, "nn_core.schedules")

    section("8. Initialisation")
    st.latex(r"\text{Glorot/Xavier: } W \sim \mathcal{N}\!\Big(0, \frac{2}{n_{in} + n_{out}}"
             r"\Big) \qquad \text{He: } W \sim \mathcal{N}\!\Big(0, \frac{2}{n_{in}}\Big)")
    st.markdown("He keeps the signal's variance constant through ReLU layers (which zero "
                "half of their inputs); the playground uses He for ReLU and leaky ReLU, "
                "Glorot otherwise.")
    code(initializers, "nn_core.initializers")

    section("9. Training loop")
    st.markdown("Each epoch shuffles the training set, walks through it in mini-batches "
                "(forward, loss gradient, backward, optimiser step), then records the "
                "epoch's loss and accuracy, the learning rate and each layer's weight and "
                "gradient norms. A loss that becomes infinite stops the run with advice "
                "instead of producing NaN predictions.")
    code(training.Trainer.fit, "nn_core.training.Trainer.fit")

    section("10. Metrics")
    st.latex(r"\text{precision}_k = \frac{TP_k}{TP_k + FP_k}\qquad \text{recall}_k = "
             r"\frac{TP_k}{TP_k + FN_k} \qquad F_1 = \frac{2\,TP_k}{2\,TP_k + FP_k + FN_k}")
    st.markdown("The confusion matrix counts test samples by true class (rows) and "
                "predicted class (columns); macro averages weigh every class the same, "
                "weighted averages by class size.")
    code(metrics.precision_recall_f1_support, "nn_core.metrics.precision_recall_f1_support")


page()
