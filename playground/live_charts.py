"""Vega-Lite charts for the Playground page: data in, ``(DataFrame, spec)`` out.

Why not Plotly here (the static pages use Plotly): Streamlit gives a Plotly
chart a new element identity whenever its data change, so the browser tears
the chart down and draws a new one on every refresh; measured in headless
Chromium while training, that left the loss chart missing for ~0.1-0.3 s at a
time and limited refreshes to about one per second. A Vega-Lite chart whose
specification stays the same is updated in place with the new data (no blank
frames), which is what a chart redrawn four times a second needs. Each spec
below therefore depends only on things that are fixed for a run (labels,
planned epochs, axis bounds) and everything that changes is in the DataFrame.

Use with ``st.vega_lite_chart(df, spec)``. The page's network diagram is
Vega-Lite too, so the browser has loaded the Vega library before the first
Train click rather than during the first live refresh.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from plotly.colors import hex_to_rgb, qualitative

from nn_core.network import Network
from nn_core.training import EpochRecord

from .charts import TRAIN_COLOR, VAL_COLOR, _epochs, _series, class_colors

__all__ = ["boundary_chart", "class_metrics_chart", "confusion_chart", "curves_chart",
           "gallery_chart", "network_chart", "norms_charts"]

Chart = tuple[pd.DataFrame, dict[str, Any]]


def _title(text: str, subtitle: str | None = None) -> dict:
    t = {"text": text, "anchor": "start", "fontSize": 15, "offset": 6}
    if subtitle:
        t["subtitle"] = subtitle
    return t


#: Tighter than Streamlit's chart theme, whose generous title and legend
#: padding leaves little room for the plot in a 300-pixel chart.
CONFIG = {"title": {"offset": 6, "subtitlePadding": 2},
          "legend": {"offset": 4, "padding": 0, "titlePadding": 2, "rowPadding": 2},
          "axis": {"titlePadding": 6}, "padding": 4}


def _spec(**spec: Any) -> dict:
    return {"config": CONFIG, **spec}


#: Most points per curve sent to the browser; longer runs are thinned (keeping
#: each stretch's lowest and highest value) because the browser's time to
#: redraw grows with the points, and a 600-pixel chart cannot show more.
MAX_CURVE_POINTS = 600


def envelope(epochs: np.ndarray, values: np.ndarray, max_points: int = MAX_CURVE_POINTS
             ) -> tuple[np.ndarray, np.ndarray]:
    """Thin a curve to about ``max_points`` points without losing its spikes.

    The epochs are cut into ``max_points / 2`` equal stretches; each keeps its
    minimum and its maximum (in epoch order), and the last epoch is always
    kept, so the drawn line has the same envelope as the full one.
    """
    # Vectorised (no Python loop over the stretches): runs 4x/s per session.
    n = len(epochs)
    if n <= max_points:
        return epochs, values
    bucket = -(-n // (max_points // 2))  # ceiling division
    full = n // bucket  # whole stretches; a shorter one may follow
    parts = [_stretch_extremes(values[:full * bucket].reshape(full, bucket), 0, bucket)]
    if full * bucket < n:
        tail = values[full * bucket:(full + 1) * bucket]
        parts.append(_stretch_extremes(tail.reshape(1, -1), full * bucket, bucket))
    idx = np.concatenate(parts)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return epochs[idx], values[idx]


def _stretch_extremes(block: np.ndarray, first: int, bucket: int) -> np.ndarray:
    """Indices :func:`envelope` keeps for the stretches in ``block``'s rows.

    Row ``i`` starts at index ``first + i * bucket``. A row with a finite value
    keeps the first index of its minimum and of its maximum, NaN ignored (as
    ``np.nanargmin``/``np.nanargmax``), in order and once if they coincide; a
    row without one keeps its first index.
    """
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


def curves_chart(records: Sequence[EpochRecord], metric: str, epochs_planned: int,
                 log_y: bool = False) -> Chart:
    """Training and validation loss (or accuracy) per epoch.

    Parameters
    ----------
    records : sequence of EpochRecord
    metric : {"loss", "accuracy"}
    epochs_planned : int
        The epoch axis spans the whole planned run, so the curve fills it.
    log_y : bool
        Logarithmic loss axis.

    Returns
    -------
    (DataFrame, spec)
        Long format: columns ``epoch``, ``split`` (train/validation), ``value``,
        ``hover`` (the points that show a tooltip). Runs longer than
        :data:`MAX_CURVE_POINTS` epochs are thinned with :func:`envelope`.
    """
    epochs = _epochs(records)
    splits = [("train", f"train_{metric}")]
    if records and records[-1].val_loss is not None:
        splits.append(("validation", f"val_{metric}"))
    frames = []
    for split, field in splits:
        x, v = envelope(epochs, _series(records, field, np.float64))
        # Hover targets: ~100 evenly spread points per line (an invisible mark
        # per point would put thousands of nodes in the page at each refresh).
        hover = np.zeros(len(x), dtype=bool)
        hover[:: max(1, -(-len(x) // 100))] = True
        if len(x):
            hover[-1] = True
        frames.append(pd.DataFrame({"epoch": x, "split": split, "value": v,
                                    "hover": hover}))
    df = pd.concat(frames, ignore_index=True)
    if metric == "accuracy":
        y = {"field": "value", "type": "quantitative", "title": "accuracy",
             "scale": {"domain": [0, 1]}, "axis": {"format": ".0%"}}
        fmt, title = ".2%", "Accuracy"
    else:
        y = {"field": "value", "type": "quantitative",
             "title": "loss (log scale)" if log_y else "loss",
             "scale": {"type": "log"} if log_y else {"zero": True}}
        fmt, title = ".4f", "Loss (cross-entropy)"
    color = {"field": "split", "type": "nominal", "title": None,
             "scale": {"domain": ["train", "validation"], "range": [TRAIN_COLOR, VAL_COLOR]},
             "legend": {"orient": "top", "direction": "horizontal"}}
    spec = _spec(**{
        "title": _title(title), "height": 290,
        "encoding": {"x": {"field": "epoch", "type": "quantitative", "title": "epoch",
                           "scale": {"domain": [0, max(epochs_planned, 1)]}},
                     "y": y, "color": color},
        "layer": [
            {"mark": {"type": "line", "strokeWidth": 2}},
            {"transform": [{"filter": "datum.hover"}],
             "params": [{"name": "hover", "select": {
                 "type": "point", "fields": ["epoch"], "nearest": True,
                 "on": "pointerover", "clear": "pointerout"}}],
             "mark": {"type": "point", "filled": True, "size": 45},
             "encoding": {
                 "opacity": {"condition": {"param": "hover", "empty": False, "value": 1},
                             "value": 0},
                 "tooltip": [{"field": "epoch", "type": "quantitative"},
                             {"field": "split", "type": "nominal"},
                             {"field": "value", "type": "quantitative", "format": fmt,
                              "title": metric}]}},
        ],
    })
    return df, spec


def confusion_chart(cm: np.ndarray | Sequence[Sequence[int]], labels: Sequence,
                    normalize: bool = False) -> Chart:
    """Confusion-matrix heatmap: rows true classes, columns predicted classes.

    With ``normalize`` the colour and the numbers are each row's shares (the
    diagonal is then per-class recall); counts stay in the tooltip.
    """
    cm = np.asarray(cm, dtype=float)
    names = [str(v) for v in labels]
    k = len(names)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    true_idx, pred_idx = np.indices(cm.shape)
    df = pd.DataFrame({
        "true": np.array(names)[true_idx.ravel()],
        "predicted": np.array(names)[pred_idx.ravel()],
        "count": cm.ravel().astype(int), "share": share.ravel(),
        "shown": share.ravel() if normalize else cm.ravel(),
    })
    df["text"] = [f"{s:.0%}" if normalize else f"{int(c)}"
                  for s, c in zip(df["share"], df["count"])]
    # every class label stays, even where Vega would thin out crowded labels
    axis_x = {"field": "predicted", "type": "nominal", "sort": names, "title": "predicted",
              "axis": {"labelAngle": 0 if k <= 12 else -45, "labelOverlap": False}}
    axis_y = {"field": "true", "type": "nominal", "sort": names, "title": "true",
              "axis": {"labelOverlap": False}}
    layers: list[dict] = [{
        "mark": {"type": "rect", "stroke": "white", "strokeWidth": 1},
        "encoding": {
            "color": {"field": "share", "type": "quantitative", "legend": None,
                      "scale": {"scheme": "blues", "domain": [0, 1]}},
            "tooltip": [{"field": "true", "title": "true class"},
                        {"field": "predicted", "title": "predicted"},
                        {"field": "count", "title": "samples"},
                        {"field": "share", "format": ".1%", "title": "share of true class"}]},
    }]
    if k <= 20:
        layers.append({
            "mark": {"type": "text", "fontSize": 12 if k <= 12 else 9},
            "encoding": {"text": {"field": "text"},
                         "color": {"condition": {"test": "datum.share > 0.5",
                                                 "value": "white"}, "value": "#212529"}}})
    spec = _spec(title=_title("Confusion matrix (test set)",
                              "each cell's colour: its share of the true class"),
                 height=max(260, 24 * k + 60),
                 encoding={"x": axis_x, "y": axis_y}, layer=layers)
    return df, spec


def class_metrics_chart(summary: dict, labels: Sequence) -> Chart:
    """Grouped bars of per-class precision, recall and F1."""
    names = [str(v) for v in labels]
    metrics = [("precision", "precision"), ("recall", "recall"), ("f1", "F1")]
    df = pd.DataFrame([{"class": n, "metric": shown, "score": float(summary[key][i])}
                       for key, shown in metrics for i, n in enumerate(names)])
    spec = _spec(**{
        "title": _title("Per-class precision, recall and F1 (test set)"), "height": 290,
        "mark": {"type": "bar", "cornerRadiusEnd": 2},
        "encoding": {
            "x": {"field": "class", "type": "nominal", "sort": names, "title": "class",
                  "axis": {"labelAngle": 0}},
            "xOffset": {"field": "metric", "sort": ["precision", "recall", "F1"]},
            "y": {"field": "score", "type": "quantitative", "title": "score",
                  "scale": {"domain": [0, 1]}},
            "color": {"field": "metric", "type": "nominal", "title": None,
                      "scale": {"domain": ["precision", "recall", "F1"],
                                "range": ["#4C6EF5", "#37B24D", "#F59F00"]},
                      "legend": {"orient": "top", "direction": "horizontal"}},
            "tooltip": [{"field": "class"}, {"field": "metric"},
                        {"field": "score", "format": ".3f"}]},
    })
    return df, spec


def _png_data_url(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def boundary_chart(grid_x: np.ndarray, grid_y: np.ndarray, grid_pred: np.ndarray,
                   grid_conf: np.ndarray, labels: Sequence,
                   points: Sequence[tuple[np.ndarray, np.ndarray, str]],
                   feature_names: Sequence[str] = ("x1", "x2")) -> Chart:
    """The classifier's regions as an image, with the data points on top.

    Each grid cell takes its predicted class's colour, paler where the model is
    unsure (confidence near ``1 / n_classes``). ``points`` lists
    ``(X, y_index, name)`` groups: ``"train"`` drawn as circles, ``"test"`` as
    crosses.
    """
    names = [str(v) for v in labels]
    k = len(names)
    colors = class_colors(k)
    ny, nx = len(grid_y), len(grid_x)
    pred = np.asarray(grid_pred).reshape(ny, nx)
    conf = np.asarray(grid_conf, dtype=float).reshape(ny, nx)
    strength = 0.15 + 0.45 * np.clip((conf - 1 / k) / (1 - 1 / k), 0, 1)
    rgb = np.empty((ny, nx, 3))
    for c in range(k):
        mask = pred == c
        rgb[mask] = 255 - strength[mask, None] * (255 - np.array(hex_to_rgb(colors[c])))
    # image rows run top to bottom, the y axis bottom to top
    url = _png_data_url(rgb[::-1].astype(np.uint8))
    half_x = (grid_x[1] - grid_x[0]) / 2
    half_y = (grid_y[1] - grid_y[0]) / 2
    x0, x1 = float(grid_x[0] - half_x), float(grid_x[-1] + half_x)
    y0, y1 = float(grid_y[0] - half_y), float(grid_y[-1] + half_y)
    rows = [{"kind": "image", "x": x0, "y": y0, "x2": x1, "y2": y1, "url": url}]
    for X, y, name in points:
        rows.extend({"kind": name, "x": float(a), "y": float(b), "class": names[int(c)]}
                    for (a, b), c in zip(X, y))
    df = pd.DataFrame(rows)
    x = {"field": "x", "type": "quantitative", "title": feature_names[0],
         "scale": {"domain": [x0, x1], "nice": False}}
    y = {"field": "y", "type": "quantitative", "title": feature_names[1],
         "scale": {"domain": [y0, y1], "nice": False}}
    color = {"field": "class", "type": "nominal", "title": "class",
             "scale": {"domain": names, "range": colors},
             "legend": {"orient": "right"}}
    tooltip = [{"field": "kind", "title": "set"}, {"field": "class"},
               {"field": "x", "format": ".2f", "title": feature_names[0]},
               {"field": "y", "format": ".2f", "title": feature_names[1]}]
    spec = _spec(**{
        "title": _title("Decision boundary", "circles: training points, crosses: test "
                        "points; paler regions: the model is less sure"),
        "height": 420, "encoding": {"x": x, "y": y},
        "layer": [
            {"transform": [{"filter": "datum.kind == 'image'"}],
             "mark": {"type": "image", "aspect": False, "smooth": False},
             "encoding": {"x2": {"field": "x2"}, "y2": {"field": "y2"},
                          "url": {"field": "url", "type": "nominal"}}},
            {"transform": [{"filter": "datum.kind == 'train'"}],
             "mark": {"type": "circle", "size": 36, "opacity": 0.9, "stroke": "white",
                      "strokeWidth": 0.7},
             "encoding": {"color": color, "tooltip": tooltip}},
            {"transform": [{"filter": "datum.kind == 'test'"}],
             "mark": {"type": "point", "shape": "cross", "size": 70, "filled": True,
                      "stroke": "#212529", "strokeWidth": 0.6},
             "encoding": {"color": color, "tooltip": tooltip}},
        ],
    })
    return df, spec


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


def norms_charts(records: Sequence[EpochRecord], layer_names: Sequence[str],
                 epochs_planned: int) -> tuple[Chart, Chart]:
    """Per-layer gradient norms (log scale) and weight norms per epoch.

    The gradient norm is measured on each epoch's last mini-batch, so it is
    noisy: the chart draws its exponential moving average over ~2 % of the
    planned epochs (the raw value is in the tooltip). Lines are thinned to
    ~150 points: the trend is what matters, and fewer points keep the browser
    free to redraw the loss curves.

    Returns
    -------
    (gradient chart, weight chart)
    """
    n = len(records)
    step = max(1, n // 150)  # at most ~150 points per line: enough for a trend
    epochs = _epochs(records)
    grads = np.array([r.grad_norms for r in records], dtype=np.float64).reshape(n, -1)
    weights = np.array([r.weight_norms for r in records], dtype=np.float64).reshape(n, -1)
    smooth = np.exp(_ema(np.log(np.maximum(grads, 1e-30)), max(1, epochs_planned // 50)))
    rows = slice(None, None, step)
    parts = [pd.DataFrame({"epoch": epochs[rows], "layer": name, "raw": grads[rows, i],
                           "smoothed": smooth[rows, i], "weight": weights[rows, i]})
             for i, name in enumerate(layer_names)]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"epoch": [], "layer": [], "raw": [], "smoothed": [], "weight": []})
    x = {"field": "epoch", "type": "quantitative", "title": "epoch",
         "scale": {"domain": [0, max(epochs_planned, 1)]}}
    color = {"field": "layer", "type": "nominal", "title": None,
             "scale": {"domain": list(layer_names),
                       "range": [qualitative.Dark2[i % 8] for i in range(len(layer_names))]},
             "legend": {"orient": "bottom", "direction": "horizontal"}}
    grad_spec = _spec(**{
        "title": _title("Gradient norm per layer", "last mini-batch of each epoch, log "
                        "scale, moving average"),
        "height": 280,
        "mark": {"type": "line", "strokeWidth": 2},
        "encoding": {"x": x, "color": color,
                     "y": {"field": "smoothed", "type": "quantitative",
                           "scale": {"type": "log"}, "title": "gradient norm"},
                     "tooltip": [{"field": "layer"}, {"field": "epoch"},
                                 {"field": "smoothed", "format": ".3g",
                                  "title": "gradient norm (smoothed)"},
                                 {"field": "raw", "format": ".3g",
                                  "title": "gradient norm (that epoch)"}]},
    })
    weight_spec = _spec(**{
        "title": _title("Weight norm per layer", "Frobenius norm of each weight matrix"),
        "height": 280, "mark": {"type": "line", "strokeWidth": 2},
        "encoding": {"x": x, "color": color,
                     "y": {"field": "weight", "type": "quantitative", "title": "weight norm",
                           "scale": {"zero": False}},
                     "tooltip": [{"field": "layer"}, {"field": "epoch"},
                                 {"field": "weight", "format": ".3g"}]},
    })
    return (df, grad_spec), (df, weight_spec)


def network_chart(layer_sizes: Sequence[int], activation: str, max_drawn: int = 10) -> Chart:
    """A diagram of the architecture: neurons as dots, layers as columns.

    Layers wider than ``max_drawn`` show their first and last neurons around a
    gap marked with dots; the label under each column gives the true width.
    """
    n_layers = len(layer_sizes)
    half = max_drawn // 2
    nodes, columns = [], []
    for i, size in enumerate(layer_sizes):
        wide = size > max_drawn
        drawn = [*range(half), *range(size - half, size)] if wide else list(range(size))
        slots = len(drawn) + (1 if wide else 0)
        kind = "input" if i == 0 else ("output" if i == n_layers - 1 else "hidden")
        col = []
        for j, neuron in enumerate(drawn):
            y = (slots - 1) / 2 - (j + 1 if wide and j >= half else j)
            col.append(y)
            nodes.append({"kind": "node", "x": i, "y": y, "role": kind,
                          "text": f"{kind} neuron {neuron + 1} of {size}"})
        if wide:
            nodes.append({"kind": "gap", "x": i, "y": (slots - 1) / 2 - half, "text": "⋮"})
        columns.append(col)
    edges = [{"kind": "edge", "x": i, "y": y0, "x2": i + 1, "y2": y1}
             for i in range(n_layers - 1) for y0 in columns[i] for y1 in columns[i + 1]]
    bottom = min(min(c) for c in columns) - 1.1
    labels = []
    for i, size in enumerate(layer_sizes):
        if i == 0:
            top, sub = "input", f"{size} features"
        elif i == n_layers - 1:
            top, sub = "output", f"{size} classes, softmax"
        else:
            top, sub = f"hidden {i}", f"{size} neurons, {activation}"
        labels.append({"kind": "label", "x": i, "y": bottom, "text": top})
        labels.append({"kind": "sublabel", "x": i, "y": bottom - 0.55, "text": sub})
    df = pd.DataFrame(edges + nodes + labels)
    x = {"field": "x", "type": "quantitative", "axis": None,
         "scale": {"domain": [-0.5, n_layers - 0.5]}}
    y = {"field": "y", "type": "quantitative", "axis": None}
    params = Network.count_parameters(layer_sizes)
    spec = _spec(**{
        "title": _title(f"Network: {' → '.join(map(str, layer_sizes))}",
                        f"{params:,} weights and biases"),
        "height": 380, "encoding": {"x": x, "y": y},
        "layer": [
            {"transform": [{"filter": "datum.kind == 'edge'"}],
             "mark": {"type": "rule", "color": TRAIN_COLOR, "opacity": 0.12},
             "encoding": {"x2": {"field": "x2"}, "y2": {"field": "y2"}}},
            {"transform": [{"filter": "datum.kind == 'node'"}],
             "mark": {"type": "circle", "size": 150, "opacity": 1, "stroke": "white",
                      "strokeWidth": 1.5},
             "encoding": {"color": {"field": "role", "type": "nominal", "legend": None,
                                    "scale": {"domain": ["input", "hidden", "output"],
                                              "range": ["#868E96", TRAIN_COLOR,
                                                        VAL_COLOR]}},
                          "tooltip": [{"field": "text", "title": "neuron"}]}},
            {"transform": [{"filter": "datum.kind == 'gap'"}],
             "mark": {"type": "text", "fontSize": 22, "color": "#868E96"},
             "encoding": {"text": {"field": "text"}}},
            {"transform": [{"filter": "datum.kind == 'label'"}],
             "mark": {"type": "text", "fontSize": 13, "fontWeight": "bold"},
             "encoding": {"text": {"field": "text"}}},
            {"transform": [{"filter": "datum.kind == 'sublabel'"}],
             "mark": {"type": "text", "fontSize": 12, "color": "#495057"},
             "encoding": {"text": {"field": "text"}}},
        ],
    })
    return df, spec


def gallery_chart(images: Sequence[np.ndarray], captions: Sequence[str], title: str,
                  subtitle: str, per_row: int = 8) -> Chart:
    """Small grey-level images in a grid, each with a caption (e.g. misclassified digits).

    The images travel as PNG data URLs inside the chart's data, so the grid is
    redrawn in place like the other live charts (``st.image`` would publish new
    media files on every refresh, which the browser may ask for after they
    are gone).
    """
    rows = []
    for i, (img, caption) in enumerate(zip(images, captions)):
        g = np.asarray(img, dtype=float)
        g = 255 * (1 - g / max(float(g.max()), 1e-9))  # ink dark on white, as on paper
        rgb = np.repeat(g[:, :, None], 3, axis=2).astype(np.uint8)
        col, row = i % per_row, i // per_row
        rows.append({"x": col, "x2": col + 0.82, "y": -row * 1.35, "y2": -row * 1.35 + 0.82,
                     "tx": col + 0.41, "ty": -row * 1.35 - 0.17, "url": _png_data_url(rgb),
                     "caption": caption})
    df = pd.DataFrame(rows, columns=["x", "x2", "y", "y2", "tx", "ty", "url", "caption"])
    n_rows = max(1, -(-len(rows) // per_row))
    x = {"field": "x", "type": "quantitative", "axis": None,
         "scale": {"domain": [-0.1, per_row], "nice": False}}
    y = {"field": "y", "type": "quantitative", "axis": None,
         "scale": {"domain": [-(n_rows - 1) * 1.35 - 0.45, 0.9], "nice": False}}
    spec = _spec(**{
        "title": _title(title, subtitle), "height": 40 + 95 * n_rows,
        "layer": [
            {"mark": {"type": "image", "aspect": False, "smooth": False},
             "encoding": {"x": x, "y": y, "x2": {"field": "x2"}, "y2": {"field": "y2"},
                          "url": {"field": "url", "type": "nominal"},
                          "tooltip": [{"field": "caption", "title": "test image"}]}},
            {"mark": {"type": "text", "fontSize": 11, "baseline": "top"},
             "encoding": {"x": {**x, "field": "tx"}, "y": {**y, "field": "ty"},
                          "text": {"field": "caption"}}},
        ],
    })
    return df, spec
