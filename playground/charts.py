"""Plotly figures for the pages that do not change while a run trains (Compare, Data).

Pure functions: data in, ``go.Figure`` out, drawn with ``st.plotly_chart``
(whose Streamlit theme supplies the light or dark text, grid and background
colours). The Playground page's live figures are in
:mod:`playground.live_charts`; both take colours and layout from
:mod:`playground.chart_style`.

Each figure is described as one plain dict and validated once by ``go.Figure``
(Plotly's incremental ``update_*`` calls cost ~10x more on the server), and
series are NumPy arrays (sent as compact binary).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from nn_core.training import EpochRecord

from .chart_style import base_layout, class_colors
from .text import plain_html

__all__ = ["class_balance_figure", "compare_figure", "scatter_figure"]

#: ``config`` of every ``st.plotly_chart``: the mode bar's PNG download, no Plotly logo.
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"],
                 "toImageButtonOptions": {"format": "png", "scale": 2}}


def _series(records: Sequence[EpochRecord], name: str,
            dtype: type[np.floating] = np.float32) -> np.ndarray:
    """One field of the records as a float array (NaN where missing)."""
    return np.array([np.nan if (v := getattr(r, name)) is None else v for r in records],
                    dtype=dtype)


def _epochs(records: Sequence[EpochRecord]) -> np.ndarray:
    return np.array([r.epoch for r in records], dtype=np.int32)


def compare_figure(runs: Sequence[tuple[str, Sequence[EpochRecord]]], metric: str,
                   split: str = "val") -> go.Figure:
    """Overlay one curve per run (validation if present, else training).

    The run names are used as given: escape user text with
    :func:`playground.text.plain_html` first (the other figures here escape
    their labels themselves).
    """
    data = []
    colors = class_colors(max(len(runs), 1))
    fmt = ".2%" if metric == "accuracy" else ".4f"
    for (name, records), color in zip(runs, colors):
        which = split
        if not records or getattr(records[-1], f"{split}_{metric}") is None:
            which = "train"
        label = f"{name} ({which})"
        data.append({"type": "scatter", "x": _epochs(records),
                     "y": _series(records, f"{which}_{metric}"), "mode": "lines",
                     "name": label, "line": {"color": color, "width": 2},
                     "hovertemplate": f"%{{y:{fmt}}}<extra>{label}</extra>"})
    yaxis = ({"tickformat": ".0%", "title": {"text": "accuracy"}} if metric == "accuracy"
             else {"title": {"text": "loss"}, "rangemode": "tozero"})
    layout = base_layout(f"{metric.capitalize()} by run", height=380, uirevision="compare",
                         xaxis={"title": {"text": "epoch"}}, yaxis=yaxis,
                         hoverlabel={"namelength": -1})
    return go.Figure({"data": data, "layout": layout})


def class_balance_figure(labels: Sequence, counts: Sequence[int]) -> go.Figure:
    """Samples per class."""
    names = [plain_html(v) for v in labels]
    bar = {"type": "bar", "x": names, "y": list(counts), "text": list(counts),
           "textposition": "outside", "cliponaxis": False,
           "marker": {"color": class_colors(len(names))},
           "hovertemplate": "class %{x}: %{y} samples<extra></extra>"}
    layout = base_layout("Class balance", height=460, hovermode="closest",
                         xaxis={"title": {"text": "class"}, "type": "category"},
                         yaxis={"title": {"text": "samples"}, "rangemode": "tozero"})
    return go.Figure({"data": [bar], "layout": layout})


def scatter_figure(X2: np.ndarray, y: np.ndarray, labels: Sequence, axis_titles: Sequence[str],
                   title: str) -> go.Figure:
    """2-D scatter of the samples coloured by class (``y`` holds class indices)."""
    colors = class_colors(len(labels))
    names = [plain_html(v) for v in labels]
    data = [{"type": "scattergl", "x": X2[y == c, 0], "y": X2[y == c, 1], "mode": "markers",
             "name": name, "marker": {"color": colors[c], "size": 6, "opacity": 0.8},
             "hovertemplate": f"class {name}<br>%{{x:.2f}}, %{{y:.2f}}<extra></extra>"}
            for c, name in enumerate(names)]
    layout = base_layout(title, height=460, hovermode="closest",
                         margin={"l": 60, "r": 16, "t": 56, "b": 90},
                         legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0,
                                 "xanchor": "left"},
                         xaxis={"title": {"text": plain_html(axis_titles[0])}},
                         yaxis={"title": {"text": plain_html(axis_titles[1])}})
    return go.Figure({"data": data, "layout": layout})
