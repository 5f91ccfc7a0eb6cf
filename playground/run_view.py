"""The run on screen and the configuration in the sidebar, as session state holds them.

The run on screen is ``st.session_state[Key.VIEW]`` (a :class:`RunView`) and
``run=<id>`` in the address bar, so a reload or a shared link opens the same
run; the configuration is the sidebar widgets' state (one key per
:class:`RunConfig` field).
"""

from __future__ import annotations

import streamlit as st

from .config import MAX_HIDDEN_LAYERS, WIDGET_FIELDS, RunConfig
from .datasets import DatasetError
from .jobs import Snapshot
from .resources import get_settings
from .runs import RunView, open_run, run_snapshot
from .session import Key
from .text import md
from .workspace import known_workspace

__all__ = ["apply_config", "clear_run", "config_from_state", "current_snapshot",
           "current_view", "show_run"]

_DEFAULT = RunConfig()


def current_view() -> RunView | None:
    """The run on screen: this session's, or the one the address bar names (``run=``)."""
    ss = st.session_state
    view: RunView | None = ss.get(Key.VIEW)
    wanted = st.query_params.get("run")
    if view is not None and (wanted is None or wanted == view.id):
        if wanted is None:
            st.query_params["run"] = view.id
        return view
    if wanted is None:
        return None
    try:
        view = open_run(wanted, known_workspace())
    except DatasetError as exc:
        st.warning(f"This run's data cannot be loaded: {md(exc)}")
        view = None
    if view is None:
        del st.query_params["run"]
        ss.pop(Key.VIEW, None)
        ss[Key.TRAIN_ERROR] = ("That run does not exist (any more). Its owner may have "
                             "deleted it.")
        return None
    ss[Key.VIEW] = view
    return view


def show_run(view: RunView) -> None:
    st.session_state[Key.VIEW] = view
    st.query_params["run"] = view.id


def clear_run() -> None:
    st.session_state.pop(Key.VIEW, None)
    if "run" in st.query_params:
        del st.query_params["run"]


def current_snapshot() -> Snapshot | None:
    view = st.session_state.get(Key.VIEW)
    return None if view is None else run_snapshot(view)


def config_from_state() -> RunConfig:
    """Read the configuration from the sidebar widgets' state."""
    ss = st.session_state
    d = _DEFAULT
    # each value cast to the type of its default, so the config holds plain
    # Python ints, floats, bools and strings whatever the widget returned
    # controls a lesson step hides are not drawn: their values come from the step
    hidden = ss.get(Key.HIDDEN_VALUES, {})
    values = {name: type(getattr(d, name))(hidden.get(name, ss.get(name, getattr(d, name))))
              for name in WIDGET_FIELDS}
    units = tuple(int(hidden.get(f"units_{i + 1}", ss.get(f"units_{i + 1}", d.units[i])))
                  for i in range(MAX_HIDDEN_LAYERS))
    return RunConfig(**values, units=units, label_column=ss.get("label_column"))


def apply_config(cfg: RunConfig) -> None:
    """Set the sidebar widgets to ``cfg`` (Train again, Reset). Call from a callback."""
    values = {name: getattr(cfg, name) for name in WIDGET_FIELDS}
    max_units = get_settings().max_units
    for i, u in enumerate(cfg.units, start=1):
        values[f"units_{i}"] = min(u, max_units)
    st.session_state.update(values)
