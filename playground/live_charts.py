"""Figures of the Playground page: data in, a Plotly figure as plain data out.

Each function returns ``{"data": [...], "layout": {...}}`` (NumPy arrays
allowed) for :func:`playground.plotly_live.live_chart`, which keeps the graph
mounted and sends the browser only what changed. No ``go.Figure`` here: its
validation costs milliseconds, and the curves are redrawn four times a second
per student (tests/test_app.py validates every figure with ``go.Figure``).
Colours, fonts and the base layout come from :mod:`playground.chart_style`.

The loss and accuracy curves are thinned to at most :data:`MAX_CURVE_POINTS`
points per line (:func:`envelope`). While a run trains, the stretches are cut
from the *planned* number of epochs, so a finished stretch never changes
again: :func:`curves_figure` says how many points of each line are final, and
only the points after them travel to the browser.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from plotly.colors import hex_to_rgb

from nn_core.network import Network
from nn_core.training import EpochRecord

from .chart_style import (
    HEATMAP_SCALE,
    HEATMAP_SCALE_DARK,
    METRIC_COLORS,
    NEURON_COLORS,
    TRAIN_COLOR,
    VAL_COLOR,
    base_layout,
    class_colors,
    layer_colors,
)
from .charts import _epochs, _series
from .text import plain_html

__all__ = ["MAX_CURVE_POINTS", "boundary_figure", "class_metrics_figure", "confusion_figure",
           "curves_figure", "envelope", "gallery_figure", "network_figure", "norms_figures"]

Figure = dict[str, Any]

#: Most points per curve sent to the browser; longer runs are thinned (keeping
#: each stretch's lowest and highest value) because the browser's time to
#: redraw grows with the points, and a 600-pixel chart cannot show more.
MAX_CURVE_POINTS = 600


def envelope(epochs: np.ndarray, values: np.ndarray, max_points: int = MAX_CURVE_POINTS,
             *, bucket: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Thin a curve to about ``max_points`` points without losing its spikes.

    The epochs are cut into stretches of ``bucket`` epochs (by default
    ``max_points / 2`` equal stretches, and no thinning at all up to
    ``max_points`` epochs); each keeps its minimum and its maximum (in epoch
    order), and the last epoch is always kept, so the drawn line has the same
    envelope as the full one.
    """
    if bucket is None:
        if len(epochs) <= max_points:
            return epochs, values
        bucket = -(-len(epochs) // (max_points // 2))  # ceiling division
    idx, _ = _envelope_index(values, bucket)
    return epochs[idx], values[idx]


def _envelope_index(values: np.ndarray, bucket: int) -> tuple[np.ndarray, int]:
    """Indices :func:`envelope` keeps, and how many of them lie in complete stretches."""
    # Vectorised (no Python loop over the stretches): runs 4x/s per session.
    n = len(values)
    if bucket <= 1 or n == 0:
        return np.arange(n), n
    full = n // bucket  # whole stretches; a shorter one may follow
    idx = _stretch_extremes(values[:full * bucket].reshape(full, bucket), 0, bucket)
    final = len(idx)
    if full * bucket < n:
        tail = values[full * bucket:]
        idx = np.concatenate([idx, _stretch_extremes(tail.reshape(1, -1), full * bucket,
                                                     bucket)])
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx, final


def _stretch_extremes(block: np.ndarray, first: int, bucket: int) -> np.ndarray:
    """Indices :func:`envelope` keeps for the stretches in ``block``'s rows.

    Row ``i`` starts at index ``first + i * bucket``. A row with a finite value
    keeps the first index of its minimum and of its maximum, NaN ignored (as
    ``np.nanargmin``/``np.nanargmax``), in order and once if they coincide; a
    row without one keeps its first index.
    """
    if len(block) == 0:
        return np.zeros(0, dtype=np.intp)
    if np.issubdtype(block.dtype, np.inexact):
        nan = np.isnan(block)
        lo = np.where(nan, np.inf, block).argmin(axis=1)
        hi = np.where(nan, -np.inf, block).argmax(axis=1)
    else:
        lo, hi = block.argmin(axis=1), block.argmax(axis=1)
    finite = np.isfinite(block).any(axis=1)
    pairs = np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], axis=1)
    pairs[~finite] = 0
    pairs += first + bucket * np.arange(len(block))[:, None]
    keep = np.ones(pairs.shape, dtype=bool)
    keep[:, 1] = finite & (lo != hi)
    return pairs[keep]


def curve_bucket(n_epochs: int, max_points: int = MAX_CURVE_POINTS) -> int:
    """Stretch length that thins ``n_epochs`` epochs to at most ``max_points`` points."""
    return max(1, -(-n_epochs // (max_points // 2)))


def curves_figure(records: Sequence[EpochRecord], metric: str, epochs_planned: int,
                  log_y: bool = False, finished: bool = False) -> tuple[Figure, list[int]]:
    """Training and validation loss (or accuracy) per epoch.

    Parameters
    ----------
    records : sequence of EpochRecord
    metric : {"loss", "accuracy"}
    epochs_planned : int
        The epoch axis spans the whole planned run, so the curve fills it.
    log_y : bool
        Logarithmic loss axis.
    finished : bool
        The run is over: thin by the epochs it ran, not by the planned ones.

    Returns
    -------
    (figure, frozen)
        Traces ``train`` and, with a validation split, ``validation``; ``frozen[i]``
        is how many leading points of trace ``i`` will stay as they are while the
        run goes on.
    """
    epochs = _epochs(records)
    bucket = curve_bucket(len(records) if finished else max(epochs_planned, len(records)))
    splits = [("train", f"train_{metric}", TRAIN_COLOR)]
    if records and records[-1].val_loss is not None:
        splits.append(("validation", f"val_{metric}", VAL_COLOR))
    fmt = ".2%" if metric == "accuracy" else ".4f"
    data, frozen = [], []
    for name, field, color in splits:
        values = _series(records, field, np.float64)
        idx, final = _envelope_index(values, bucket)
        data.append({
            "type": "scatter", "name": name, "x": epochs[idx], "y": values[idx],
            # a single point has no line to draw: show it as a dot
            "mode": "lines" if len(idx) > 1 else "markers",
            "line": {"color": color, "width": 2}, "marker": {"color": color, "size": 6},
            "hovertemplate": f"%{{y:{fmt}}}<extra>{name}</extra>"})
        frozen.append(final)
    xaxis = {"title": {"text": "epoch"}, "range": [0, max(epochs_planned, 1)],
             "showgrid": False, "zeroline": False}
    if metric == "accuracy":
        yaxis = {"title": {"text": "accuracy"}, "range": [0, 1.02], "tickformat": ".0%"}
        title = "Accuracy"
    else:
        yaxis = ({"title": {"text": "loss (log scale)"}, "type": "log"} if log_y
                 else {"title": {"text": "loss"}, "rangemode": "tozero"})
        title = "Loss (cross-entropy)"
    layout = base_layout(title, height=300, xaxis=xaxis, yaxis=yaxis,
                         hoverlabel={"namelength": -1})
    return {"data": data, "layout": layout}, frozen


def confusion_figure(cm: np.ndarray | Sequence[Sequence[int]], labels: Sequence,
                     normalize: bool = False) -> Figure:
    """Confusion-matrix heatmap: rows true classes, columns predicted classes.

    The colour is each cell's share of its true class (the diagonal is then
    per-class recall); the numbers are counts, or those shares with
    ``normalize``. Hover shows both.
    """
    cm = np.asarray(cm, dtype=float)
    names = [plain_html(v) for v in labels]  # user text: shown, never rendered
    k = len(names)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    counts = cm.astype(int)
    text = ([[f"{v:.0%}" for v in row] for row in share] if normalize
            else [[str(v) for v in row] for row in counts])
    heat = {
        "type": "heatmap", "x": names, "y": names, "z": share, "customdata": counts,
        "zmin": 0, "zmax": 1, "colorscale": HEATMAP_SCALE, "showscale": False,
        "xgap": 1, "ygap": 1, "text": text, "texttemplate": "%{text}" if k <= 20 else "",
        "textfont": {"size": 13 if k <= 12 else 10},
        "hovertemplate": "true %{y}, predicted %{x}<br>%{customdata} samples, "
                         "%{z:.1%} of true class %{y}<extra></extra>",
        "_dark": {"colorscale": HEATMAP_SCALE_DARK},
    }
    # ticks drawn in the background colour: a gap between the labels and the cells
    axis = {"type": "category", "showgrid": False, "zeroline": False, "ticks": "outside",
            "ticklen": 6, "tickcolor": "rgba(0,0,0,0)", "tickangle": 0 if k <= 12 else -45}
    layout = base_layout(
        "Confusion matrix (test set)", "each cell's colour: its share of the true class",
        height=min(760, max(340, 40 * k + 130)), hovermode="closest",
        xaxis={**axis, "title": {"text": "predicted"}, "side": "bottom"},
        yaxis={**axis, "title": {"text": "true"}, "autorange": "reversed"},
        margin={"l": 64, "r": 16, "t": 74, "b": 52})
    return {"data": [heat], "layout": layout}


def class_metrics_figure(summary: dict, labels: Sequence) -> Figure:
    """Grouped bars of per-class precision, recall and F1."""
    names = [plain_html(v) for v in labels]  # user text: shown, never rendered
    data = [{"type": "bar", "name": shown, "x": names,
             "y": np.asarray(summary[key], dtype=float),
             "marker": {"color": METRIC_COLORS[shown]},
             "hovertemplate": f"%{{y:.3f}}<extra>{shown}</extra>"}
            for key, shown in (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))]
    layout = base_layout("Per-class precision, recall and F1 (test set)", height=300,
                         barmode="group", bargap=0.25, bargroupgap=0.05,
                         xaxis={"title": {"text": "class"}, "type": "category",
                                "showgrid": False},
                         yaxis={"title": {"text": "score"}, "range": [0, 1.05]})
    return {"data": data, "layout": layout}


def _png_data_url(pixels: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def boundary_figure(grid_x: np.ndarray, grid_y: np.ndarray, grid_pred: np.ndarray,
                    grid_conf: np.ndarray, labels: Sequence,
                    points: Sequence[tuple[np.ndarray, np.ndarray, str]],
                    feature_names: Sequence[str] = ("x1", "x2")) -> Figure:
    """The classifier's regions as an image, with the data points on top.

    Each grid cell takes its predicted class's colour, more transparent where
    the model is unsure (confidence near ``1 / n_classes``), so the page's
    background (light or dark) shows through. ``points`` lists ``(X, y_index,
    name)`` groups: ``"train"`` drawn as circles, ``"test"`` as crosses.
    """
    names = [plain_html(v) for v in labels]  # user text: shown, never rendered
    k = len(names)
    colors = class_colors(k)
    ny, nx = len(grid_y), len(grid_x)
    pred = np.asarray(grid_pred).reshape(ny, nx)
    conf = np.asarray(grid_conf, dtype=float).reshape(ny, nx)
    strength = 0.15 + 0.45 * np.clip((conf - 1 / k) / (1 - 1 / k), 0, 1)
    rgba = np.empty((ny, nx, 4), dtype=np.uint8)
    rgba[..., :3] = np.array([hex_to_rgb(c) for c in colors], dtype=np.uint8)[pred]
    rgba[..., 3] = np.round(255 * strength).astype(np.uint8)
    half_x = (grid_x[1] - grid_x[0]) / 2
    half_y = (grid_y[1] - grid_y[0]) / 2
    x0, x1 = float(grid_x[0] - half_x), float(grid_x[-1] + half_x)
    y0, y1 = float(grid_y[0] - half_y), float(grid_y[-1] + half_y)
    image = {"source": _png_data_url(rgba[::-1]),  # image rows run top to bottom
             "xref": "x", "yref": "y", "x": x0, "y": y1, "sizex": x1 - x0, "sizey": y1 - y0,
             "sizing": "stretch", "layer": "below"}
    fx, fy = plain_html(feature_names[0]), plain_html(feature_names[1])
    data = []
    for X, y, group in points:
        X, y = np.asarray(X, dtype=float), np.asarray(y)
        test = group == "test"
        for c, name in enumerate(names):
            mask = y == c
            data.append({
                "type": "scatter", "mode": "markers", "name": name, "legendgroup": name,
                "showlegend": not test, "x": X[mask, 0], "y": X[mask, 1],
                "marker": ({"symbol": "x", "size": 8, "color": colors[c],
                            "line": {"width": 0.6, "color": "#212529"}} if test else
                           {"symbol": "circle", "size": 7, "color": colors[c], "opacity": 0.9,
                            "line": {"width": 0.7, "color": "white"}}),
                "hovertemplate": f"{group} sample, class {name}<br>{fx} %{{x:.2f}}, "
                                 f"{fy} %{{y:.2f}}<extra></extra>"})
            if test:  # a light outline on a dark page
                data[-1]["_dark"] = {"marker": {"line": {"color": "#F1F3F5"}}}
    layout = base_layout(
        "Decision boundary", "circles: training points, crosses: test points; paler "
        "regions: the model is less sure", height=440, hovermode="closest",
        images=[image],
        legend={"title": {"text": "class"}, "orientation": "v", "x": 1.02, "xanchor": "left",
                "y": 1, "yanchor": "top"},
        xaxis={"title": {"text": fx}, "range": [x0, x1], "showgrid": False, "zeroline": False},
        yaxis={"title": {"text": fy}, "range": [y0, y1], "showgrid": False, "zeroline": False},
        margin={"l": 56, "r": 16, "t": 74, "b": 48})
    return {"data": data, "layout": layout}


def _ema(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average along axis 0."""
    if span <= 1 or len(values) == 0:
        return values
    alpha = 2.0 / (span + 1)
    out = np.empty_like(values)
    acc = values[0].copy()
    for i, row in enumerate(values):
        acc = alpha * row + (1 - alpha) * acc
        out[i] = acc
    return out


def norms_figures(records: Sequence[EpochRecord], layer_names: Sequence[str],
                  epochs_planned: int) -> tuple[Figure, Figure]:
    """Per-layer gradient norms (log scale) and weight norms per epoch.

    The gradient norm is measured on each epoch's last mini-batch, so it is
    noisy: the chart draws its exponential moving average over ~2 % of the
    planned epochs (hover shows the raw value too). Lines are thinned to ~150
    points: the trend is what matters, and these charts are redrawn with each
    evaluation.

    Returns
    -------
    (gradient figure, weight figure)
    """
    n = len(records)
    step = max(1, n // 150)  # at most ~150 points per line: enough for a trend
    epochs = _epochs(records)
    grads = np.array([r.grad_norms for r in records], dtype=np.float64).reshape(n, -1)
    weights = np.array([r.weight_norms for r in records], dtype=np.float64).reshape(n, -1)
    smooth = np.exp(_ema(np.log(np.maximum(grads, 1e-30)), max(1, epochs_planned // 50)))
    rows = slice(None, None, step)
    colors = layer_colors(len(layer_names))
    grad_data, weight_data = [], []
    for i, name in enumerate(layer_names):
        line = {"color": colors[i], "width": 2}
        if i < grads.shape[1]:
            grad_data.append({
                "type": "scatter", "mode": "lines", "name": name, "x": epochs[rows],
                "y": smooth[rows, i], "customdata": grads[rows, i], "line": line,
                "hovertemplate": "%{y:.3g} (that epoch: %{customdata:.3g})"
                                 f"<extra>{name}</extra>"})
            weight_data.append({
                "type": "scatter", "mode": "lines", "name": name, "x": epochs[rows],
                "y": weights[rows, i], "line": line,
                "hovertemplate": f"%{{y:.3g}}<extra>{name}</extra>"})
    xaxis = {"title": {"text": "epoch"}, "range": [0, max(epochs_planned, 1)],
             "showgrid": False}
    # the legend under the epoch axis (a title and a subtitle fill the top)
    legend = {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "left", "x": 0}
    margin = {"l": 56, "r": 16, "t": 74, "b": 96}
    grad = base_layout("Gradient norm per layer", "last mini-batch of each epoch, log scale, "
                       "moving average", height=320, xaxis=xaxis, legend=legend,
                       margin=margin, yaxis={"title": {"text": "gradient norm"},
                                             "type": "log", "exponentformat": "power"})
    weight = base_layout("Weight norm per layer", "Frobenius norm of each weight matrix",
                         height=320, xaxis=xaxis, legend=legend, margin=margin,
                         yaxis={"title": {"text": "weight norm"}})
    return {"data": grad_data, "layout": grad}, {"data": weight_data, "layout": weight}


def network_figure(layer_sizes: Sequence[int], activation: str, max_drawn: int = 10) -> Figure:
    """A diagram of the architecture: neurons as dots, layers as columns.

    Layers wider than ``max_drawn`` show their first and last neurons around a
    gap marked with dots; the label under each column gives the true width.
    """
    n_layers = len(layer_sizes)
    half = max_drawn // 2
    columns: list[list[float]] = []
    nodes: dict[str, tuple[list, list, list]] = {r: ([], [], []) for r in NEURON_COLORS}
    gaps_x, gaps_y = [], []
    for i, size in enumerate(layer_sizes):
        wide = size > max_drawn
        drawn = [*range(half), *range(size - half, size)] if wide else list(range(size))
        slots = len(drawn) + (1 if wide else 0)
        role = "input" if i == 0 else ("output" if i == n_layers - 1 else "hidden")
        col = []
        for j, neuron in enumerate(drawn):
            y = (slots - 1) / 2 - (j + 1 if wide and j >= half else j)
            col.append(y)
            xs, ys, texts = nodes[role]
            xs.append(i)
            ys.append(y)
            texts.append(f"{role} neuron {neuron + 1} of {size}")
        if wide:
            gaps_x.append(i)
            gaps_y.append((slots - 1) / 2 - half)
        columns.append(col)
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for i in range(n_layers - 1):
        for y0 in columns[i]:
            for y1 in columns[i + 1]:
                edge_x += [i, i + 1, None]
                edge_y += [y0, y1, None]
    bottom = min(min(c) for c in columns) - 1.1
    labels, sublabels = [], []
    for i, size in enumerate(layer_sizes):
        if i == 0:
            top, sub = "input", f"{size} features"
        elif i == n_layers - 1:
            top, sub = "output", f"{size} classes, softmax"
        else:
            top, sub = f"hidden {i}", f"{size} neurons, {activation}"
        labels.append(f"<b>{top}</b>")
        sublabels.append(sub)
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines", "x": edge_x, "y": edge_y, "hoverinfo": "skip",
        "showlegend": False, "line": {"color": TRAIN_COLOR, "width": 1}, "opacity": 0.18,
        "_dark": {"opacity": 0.3}}]
    for role, (xs, ys, texts) in nodes.items():
        if xs:
            data.append({"type": "scatter", "mode": "markers", "name": role, "x": xs, "y": ys,
                         "text": texts, "hovertemplate": "%{text}<extra></extra>",
                         "showlegend": False,
                         "marker": {"size": 13, "color": NEURON_COLORS[role],
                                    "line": {"width": 1.5, "color": "white"}}})
    if gaps_x:
        data.append({"type": "scatter", "mode": "text", "x": gaps_x, "y": gaps_y,
                     "text": ["⋮"] * len(gaps_x), "textfont": {"size": 22},
                     "hoverinfo": "skip", "showlegend": False})
    data.append({"type": "scatter", "mode": "text", "x": list(range(n_layers)),
                 "y": [bottom] * n_layers, "text": labels, "textposition": "middle center",
                 "hoverinfo": "skip", "showlegend": False, "textfont": {"size": 13}})
    data.append({"type": "scatter", "mode": "text", "x": list(range(n_layers)),
                 "y": [bottom - 0.6] * n_layers, "text": sublabels,
                 "textposition": "middle center", "hoverinfo": "skip", "showlegend": False,
                 "textfont": {"size": 12}})
    params = Network.count_parameters(layer_sizes)
    hidden_axis = {"visible": False, "fixedrange": True}
    layout = base_layout(
        f"Network: {' → '.join(map(str, layer_sizes))}", f"{params:,} weights and biases",
        height=400, hovermode="closest", showlegend=False,
        xaxis={**hidden_axis, "range": [-0.6, n_layers - 0.4]},
        yaxis={**hidden_axis, "range": [bottom - 1.0, max(max(c) for c in columns) + 0.6]},
        margin={"l": 8, "r": 8, "t": 74, "b": 8})
    return {"data": data, "layout": layout}


def gallery_figure(images: Sequence[np.ndarray], captions: Sequence[str], title: str,
                   subtitle: str, per_row: int = 8) -> Figure:
    """Small grey-level images in a grid, each with a caption (e.g. misclassified digits).

    Each image is a layout image (a PNG data URL, ink dark on white as on
    paper); an invisible marker over it shows its caption on hover, and the
    caption is written under it.
    """
    sources, xs, ys = [], [], []
    for i, img in enumerate(images):
        g = np.asarray(img, dtype=float)
        g = 255 * (1 - g / max(float(g.max()), 1e-9))
        col, row = i % per_row, i // per_row
        xs.append(col + 0.41)
        ys.append(-row * 1.35 + 0.41)
        sources.append({"source": _png_data_url(g.astype(np.uint8)), "xref": "x", "yref": "y",
                        "x": col, "y": -row * 1.35 + 0.82, "sizex": 0.82, "sizey": 0.82,
                        "sizing": "stretch", "layer": "above"})
    n_rows = max(1, -(-len(sources) // per_row))
    caps = [plain_html(c) for c in captions]
    data = [{"type": "scatter", "mode": "markers", "x": xs, "y": ys, "text": caps,
             "marker": {"size": 36, "opacity": 0, "symbol": "square"},
             "hovertemplate": "%{text}<extra>test image</extra>", "showlegend": False},
            {"type": "scatter", "mode": "text", "x": xs, "y": [y - 0.6 for y in ys],
             "text": caps, "textfont": {"size": 11}, "hoverinfo": "skip",
             "showlegend": False}]
    hidden = {"visible": False, "fixedrange": True}
    layout = base_layout(title, subtitle, height=90 + 100 * n_rows, hovermode="closest",
                         images=sources, showlegend=False,
                         xaxis={**hidden, "range": [-0.1, per_row]},
                         yaxis={**hidden, "range": [-(n_rows - 1) * 1.35 - 0.4, 0.9]},
                         margin={"l": 8, "r": 8, "t": 74, "b": 8})
    return {"data": data, "layout": layout}
