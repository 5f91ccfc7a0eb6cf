"""The one place that defines how the app's charts look: colours, fonts, layout.

Every chart is Plotly. The figures of :mod:`playground.charts` (drawn with
``st.plotly_chart``) and :mod:`playground.live_charts` (drawn with
:func:`playground.plotly_live.live_chart`) take their colours and their base
layout from here. What depends on Streamlit's light or dark theme (text, grid
and background colours, the font family) is not fixed here: Streamlit's Plotly
theme fills it in for ``st.plotly_chart``, and the live component reads the same
theme variables in the browser. A figure part may carry a ``"_dark"`` dict of
overrides that the live component applies in a dark theme (used for the
confusion matrix's colour scale, which must stay readable on both
backgrounds).
"""

from __future__ import annotations

from typing import Any

from plotly.colors import qualitative

__all__ = ["HEATMAP_SCALE", "HEATMAP_SCALE_DARK", "LAYER_COLORS", "METRIC_COLORS",
           "NEURON_COLORS", "TRAIN_COLOR", "VAL_COLOR", "base_layout", "class_colors",
           "layer_colors", "title"]

#: Training curves, and the app's primary colour (.streamlit/config.toml).
TRAIN_COLOR = "#4C6EF5"
#: Validation curves.
VAL_COLOR = "#F76707"
#: Per-class bars: precision, recall, F1.
METRIC_COLORS = {"precision": "#4C6EF5", "recall": "#37B24D", "F1": "#F59F00"}
#: The network diagram's neurons by role.
NEURON_COLORS = {"input": "#868E96", "hidden": TRAIN_COLOR, "output": VAL_COLOR}
#: One line per layer in the gradient and weight norm charts.
LAYER_COLORS = qualitative.Dark2
#: Confusion matrix: a cell's share of its true class, 0 to 1 (light theme) ...
HEATMAP_SCALE = [[0.0, "#F1F4FE"], [0.5, "#91A7FF"], [1.0, "#2F44AD"]]
#: ... and in a dark theme (dark cells for zero, so the matrix does not glare).
HEATMAP_SCALE_DARK = [[0.0, "#1C2030"], [0.5, "#4A5FC1"], [1.0, "#A5B8FF"]]
#: Font sizes (the family is the theme's body font).
FONT_SIZE = 13
TICK_SIZE = 12
TITLE_SIZE = 15
SUBTITLE_SIZE = 12


def class_colors(n: int) -> list[str]:
    """Distinct colours for ``n`` classes (hex)."""
    base = qualitative.D3 if n <= 10 else qualitative.Dark24 + qualitative.Light24
    return [base[i % len(base)] for i in range(n)]


def layer_colors(n: int) -> list[str]:
    return [LAYER_COLORS[i % len(LAYER_COLORS)] for i in range(n)]


def title(text: str, subtitle: str | None = None) -> dict[str, Any]:
    """A left-aligned chart title, with an optional smaller line under it."""
    t: dict[str, Any] = {"text": text, "x": 0, "xref": "container", "xanchor": "left",
                         "y": 1, "yref": "container", "yanchor": "top",
                         "pad": {"t": 6, "l": 4},
                         "font": {"size": TITLE_SIZE, "weight": "bold"}}
    if subtitle:
        t["subtitle"] = {"text": subtitle, "font": {"size": SUBTITLE_SIZE}}
    return t


def base_layout(title_text: str, subtitle: str | None = None, height: int = 320,
                **layout: Any) -> dict[str, Any]:
    """The layout every chart starts from; keyword arguments replace its entries.

    Transparent backgrounds (the page's shows through, light or dark), room at
    the top for the title and a horizontal legend, hover labels that list every
    line at the hovered epoch.
    """
    top = 74 if subtitle else 56
    axis = {"automargin": True, "zeroline": False, "tickfont": {"size": TICK_SIZE},
            "title": {"font": {"size": FONT_SIZE}}}
    base: dict[str, Any] = {
        "title": title(title_text, subtitle),
        "height": height,
        "font": {"size": FONT_SIZE},
        "margin": {"l": 56, "r": 16, "t": top, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right",
                   "x": 1.0, "bgcolor": "rgba(0,0,0,0)"},
        "hovermode": "x unified",
        "xaxis": axis,
        "yaxis": axis,
    }
    return _merged(base, layout)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s entries, dicts merged key by key."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out
