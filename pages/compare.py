"""Compare runs: every run of this session, side by side."""

from __future__ import annotations

import urllib.parse

import pandas as pd
import streamlit as st

from playground import charts
from playground.ui import RunRecord, guarded, runs

_PLOTLY = {"displaylogo": False}


def _row(run: RunRecord) -> dict:
    cfg = run.config
    last = run.records[-1] if run.records else None
    s = run.summary or {}
    return {
        "run": run.name, "dataset": cfg.dataset, "hidden layers": cfg.architecture,
        "activation": cfg.activation, "optimizer": cfg.optimizer,
        "learning rate": cfg.learning_rate, "batch": run.batch_size,
        "epochs": last.epoch if last else 0, "L2": cfg.alpha, "dropout": cfg.dropout,
        "status": run.status, "test accuracy": s.get("accuracy"),
        "macro F1": s.get("macro_f1"), "train loss": last.train_loss if last else None,
        "val loss": last.val_loss if last else None,
        "seconds": round(last.elapsed, 2) if last else None, "parameters": run.n_params,
        "set-up": "/?" + urllib.parse.urlencode(cfg.share_query()),
    }


def _delete(names: list[str]) -> None:
    keep = [r for r in runs() if r.name not in set(names)]
    st.session_state["runs"] = keep
    st.session_state["delete_select"] = []


@guarded
def page() -> None:
    st.title("Compare runs")
    history = runs()
    if not history:
        st.info("No runs yet. Train a few networks on the Playground page: every run of this "
                "session is kept here with its settings, curves and final scores.")
        return
    table = pd.DataFrame([_row(r) for r in history])
    st.caption("Click a column header to sort. The set-up link opens that configuration in "
               "a new tab.")
    st.dataframe(
        table, hide_index=True, key="runs_table",
        column_config={
            "test accuracy": st.column_config.NumberColumn(format="percent"),
            "macro F1": st.column_config.NumberColumn(format="%.3f"),
            "train loss": st.column_config.NumberColumn(format="%.4g"),
            "val loss": st.column_config.NumberColumn(format="%.4g"),
            "learning rate": st.column_config.NumberColumn(format="%g"),
            "set-up": st.column_config.LinkColumn(display_text="open"),
        })
    names = [r.name for r in history]
    c1, c2 = st.columns([3, 2])
    chosen = c1.multiselect("Runs to overlay", names, default=names[-5:], key="compare_select")
    metric = c2.segmented_control("Curve", ["loss", "accuracy"], default="loss",
                                  key="compare_metric") or "loss"
    split = c2.segmented_control("Split", ["validation", "train"], default="validation",
                                 key="compare_split") or "validation"
    picked = [(r.name, r.records) for r in history if r.name in chosen]
    if picked:
        st.plotly_chart(charts.compare_figure(picked, metric,
                                              "val" if split == "validation" else "train"),
                        key="compare_chart", config=_PLOTLY)
    with st.expander("Delete runs"):
        doomed = st.multiselect("Runs to delete", names, key="delete_select")
        st.button("Delete selected", key="delete_runs", on_click=_delete, args=(doomed,),
                  disabled=not doomed)


page()
