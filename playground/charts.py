"""Plotly figures for the pages that do not change while a run trains.

Pure functions: data in, ``go.Figure`` out. (The live training view uses
Vega-Lite, see :mod:`playground.live_charts` for why.)

Each figure is described as one plain dict and validated once by ``go.Figure``
(Plotly's incremental ``update_*`` calls cost ~10x more on the server), series
are NumPy arrays (sent as compact binary), and there is no Plotly template
(``st.plotly_chart`` applies Streamlit's theme in the browser).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from nn_core.training import EpochRecord

__all__ = ["class_balance_figure", "class_colors", "compare_figure", "scatter_figure"]

#: Also used by :mod:`playground.live_charts`.
TRAIN_COLOR = "#4C6EF5"
VAL_COLOR = "#F76707"
_FONT = {"family": "Inter, system-ui, sans-serif", "size": 13}


def class_colors(n: int) -> list[str]:
    """Distinct colours for ``n`` classes (hex)."""
    base = qualitative.D3 if n <= 10 else qualitative.Dark24 + qualitative.Light24
    return [base[i % len(base)] for i in range(n)]


def _figure(data: list[dict], title: str, height: int = 330, hovermode: str = "x unified",
            **layout: Any) -> go.Figure:
    base = {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        "height": height, "font": _FONT,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right",
                   "x": 1.0},
        "hovermode": hovermode,
    }
    base.update(layout)
    return go.Figure({"data": data, "layout": base})


def _series(records: Sequence[EpochRecord], name: str,
            dtype: type[np.floating] = np.float32) -> np.ndarray:
    """One field of the records as a float array (NaN where missing)."""
    return np.array([np.nan if (v := getattr(r, name)) is None else v for r in records],
                    dtype=dtype)


def _epochs(records: Sequence[EpochRecord]) -> np.ndarray:
    return np.array([r.epoch for r in records], dtype=np.int32)


def compare_figure(runs: Sequence[tuple[str, Sequence[EpochRecord]]], metric: str,
                   split: str = "val") -> go.Figure:
    """Overlay one curve per run (validation if present, else training)."""
    data = []
    colors = class_colors(max(len(runs), 1))
    for (name, records), color in zip(runs, colors):
        which = split
        if not records or getattr(records[-1], f"{split}_{metric}") is None:
            which = "train"
        data.append({"type": "scatter", "x": _epochs(records),
                     "y": _series(records, f"{which}_{metric}"), "mode": "lines",
                     "name": f"{name} ({which})", "line": {"color": color, "width": 2}})
    yaxis = ({"tickformat": ".0%", "title": {"text": "accuracy"}} if metric == "accuracy"
             else {"title": {"text": "loss"}, "rangemode": "tozero"})
    return _figure(data, f"{metric.capitalize()} by run", height=380, uirevision="compare",
                   xaxis={"title": {"text": "epoch"}}, yaxis=yaxis)


def class_balance_figure(labels: Sequence, counts: Sequence[int]) -> go.Figure:
    """Samples per class."""
    names = [str(v) for v in labels]
    bar = {"type": "bar", "x": names, "y": list(counts), "text": list(counts),
           "textposition": "outside", "marker": {"color": class_colors(len(names))},
           "hovertemplate": "class %{x}: %{y} samples<extra></extra>"}
    return _figure([bar], "Class balance", hovermode="closest",
                   xaxis={"title": {"text": "class"}, "type": "category"},
                   yaxis={"title": {"text": "samples"}, "rangemode": "tozero"})


def scatter_figure(X2: np.ndarray, y: np.ndarray, labels: Sequence, axis_titles: Sequence[str],
                   title: str) -> go.Figure:
    """2-D scatter of the samples coloured by class (``y`` holds class indices)."""
    colors = class_colors(len(labels))
    data = [{"type": "scattergl", "x": X2[y == c, 0], "y": X2[y == c, 1], "mode": "markers",
             "name": str(name), "marker": {"color": colors[c], "size": 6, "opacity": 0.8},
             "hovertemplate": f"class {name}<br>%{{x:.2f}}, %{{y:.2f}}<extra></extra>"}
            for c, name in enumerate(labels)]
    return _figure(data, title, height=460, hovermode="closest",
                   margin={"l": 60, "r": 20, "t": 50, "b": 90},
                   legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0},
                   xaxis={"title": {"text": axis_titles[0]}},
                   yaxis={"title": {"text": axis_titles[1]}})
