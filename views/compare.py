"""Compare runs: every stored run of this workspace, side by side."""

from __future__ import annotations

import math
import urllib.parse

import pandas as pd
import streamlit as st

from playground import charts
from playground.bundle import BundleError, read_bundle
from playground.config import RunConfig
from playground.datasets import DatasetError
from playground.guards import callback, guarded
from playground.resources import get_settings, get_store
from playground.run_view import clear_run, show_run
from playground.runs import import_bundle
from playground.session import Key
from playground.store import RunRow, RunStore
from playground.text import md, plain_html
from playground.workspace import absolute_link, known_workspace, recover_link

PAGE_SIZE = 20


def _row(run: RunRow) -> dict:
    cfg = RunConfig.from_dict(run.config)
    return {
        "pinned": run.pinned, "run": run.name, "status": run.status,
        "dataset": cfg.dataset, "hidden layers": cfg.architecture,
        "activation": cfg.activation, "optimizer": cfg.optimizer,
        "learning rate": cfg.learning_rate, "batch": run.batch_size,
        "epochs": run.epochs_done, "L2": cfg.alpha, "dropout": cfg.dropout,
        "test accuracy": run.test_accuracy, "macro F1": run.macro_f1,
        "train loss": run.train_loss, "val loss": run.val_loss,
        "seconds": round(run.train_seconds, 2) if run.train_seconds else None,
        "parameters": run.n_params,
        "result": "/?" + urllib.parse.urlencode({"run": run.id}),
        "set-up": "/?" + urllib.parse.urlencode(cfg.share_query()),
        "notes": run.notes,
    }


@callback
def _open(run_id: str) -> None:
    from playground.runs import open_run

    view = open_run(run_id, known_workspace())
    if view is not None:
        show_run(view)
        st.session_state[Key.GO_PLAYGROUND] = True


@callback
def _delete(ids: list[str]) -> None:
    store, ws = get_store(), known_workspace()
    if store is None or ws is None:
        return
    n = store.delete_runs(ws, ids)
    st.session_state[Key.COMPARE_NOTICE] = f"Deleted {n} run{'s' if n != 1 else ''}."
    st.session_state["delete_select"] = []
    view = st.session_state.get(Key.VIEW)
    if view is not None and view.id in ids:
        clear_run()


@callback
def _save_edit(run_id: str) -> None:
    store, ws = get_store(), known_workspace()
    if store is None or ws is None:
        return
    ss = st.session_state
    store.update_run(run_id, ws, name=ss.get("edit_name", ""), notes=ss.get("edit_notes", ""),
                     pinned=bool(ss.get("edit_pinned", False)))
    ss["compare_notice"] = "Saved."


@callback
def _import(store: RunStore, ws: str) -> None:
    upload = st.session_state.get("bundle_file")
    if upload is None:
        return
    settings = get_settings()
    try:
        bundle = read_bundle(upload.getvalue(), settings.max_upload_mb * 2**20 * 2)
        run = import_bundle(bundle, ws)
    except (BundleError, DatasetError) as exc:
        st.session_state[Key.BUNDLE_ERROR] = str(exc)
        return
    st.session_state.pop(Key.BUNDLE_ERROR, None)
    st.session_state[Key.COMPARE_NOTICE] = f"Opened the bundle as {run.name}."


def editor(runs: list[RunRow]) -> None:
    by_name = {f"{r.name} · {r.id[:6]}": r for r in runs}
    with st.expander("Rename, notes, pin, open", icon=":material/edit:"):
        label = st.selectbox("Run", list(by_name), key="edit_run")
        run = by_name[label]
        if st.session_state.get("_edit_loaded") != run.id:
            st.session_state.update(edit_name=run.name, edit_notes=run.notes,
                                    edit_pinned=run.pinned, _edit_loaded=run.id)
        st.text_input("Name", key="edit_name", max_chars=200)
        st.text_area("Notes", key="edit_notes", max_chars=5000, height=90)
        st.checkbox("Pinned (never dropped to make room for new runs)", key="edit_pinned")
        c1, c2 = st.columns(2)
        c1.button("Save", key="edit_save", on_click=_save_edit, args=(run.id,),
                  icon=":material/save:", width="stretch")
        c2.button("Open in the Playground", key="open_run", on_click=_open, args=(run.id,),
                  icon=":material/open_in_new:", width="stretch")


@guarded
def page() -> None:
    st.title("Compare runs")
    if st.session_state.pop(Key.GO_PLAYGROUND, False):
        st.switch_page("views/playground.py")
    store, ws = get_store(), known_workspace()
    if store is None or ws is None:
        st.warning("The run store is unavailable right now, so stored runs cannot be listed. "
                   "Training still works; try again in a moment.", icon=":material/cloud_off:")
        return
    error = st.session_state.pop(Key.TRAIN_ERROR, None)
    if error:
        st.error(md(error))
    notice = st.session_state.pop(Key.COMPARE_NOTICE, None)
    if notice:
        st.success(md(notice), icon=":material/check:")
    _, total = store.list_runs(ws, 0, 1)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if not total:
        st.info("No runs yet. Train a few networks on the Playground page: every run is kept "
                "here with its settings, curves and final scores, across reloads and days.")
    else:
        number = st.number_input(f"Page (of {pages}, newest runs first)", 1, pages, 1,
                                 key="runs_page") if pages > 1 else 1
        runs, total = store.list_runs(ws, (int(number) - 1) * PAGE_SIZE, PAGE_SIZE)
        st.caption(f"{total} stored run{'s' if total != 1 else ''}. Click a column header to "
                   "sort; 'result' opens a run read-only for anyone with the link, 'set-up' "
                   "its settings.")
        st.dataframe(
            pd.DataFrame([_row(r) for r in runs]), hide_index=True, key="runs_table",
            column_config={
                "pinned": st.column_config.CheckboxColumn(width="small"),
                "test accuracy": st.column_config.NumberColumn(format="percent"),
                "macro F1": st.column_config.NumberColumn(format="%.3f"),
                "train loss": st.column_config.NumberColumn(format="%.4g"),
                "val loss": st.column_config.NumberColumn(format="%.4g"),
                "learning rate": st.column_config.NumberColumn(format="%g"),
                "result": st.column_config.LinkColumn(display_text="open"),
                "set-up": st.column_config.LinkColumn(display_text="open"),
            })
        names = {r.id: r.name for r in runs}
        c1, c2 = st.columns([3, 2])
        chosen = c1.multiselect("Runs to overlay", list(names), format_func=names.get,
                                default=list(names)[:5], key="compare_select")
        metric = c2.segmented_control("Curve", ["loss", "accuracy"], default="loss",
                                      key="compare_metric") or "loss"
        split = c2.segmented_control("Split", ["validation", "train"], default="validation",
                                     key="compare_split") or "validation"
        picked = [(plain_html(names[i]), store.records(i)) for i in chosen]
        if picked:
            st.plotly_chart(charts.compare_figure(picked, metric,
                                                  "val" if split == "validation" else "train"),
                            key="compare_chart", config=charts.PLOTLY_CONFIG)
        editor(runs)
        with st.expander("Delete runs", icon=":material/delete:"):
            doomed = st.multiselect("Runs to delete", list(names), format_func=names.get,
                                    key="delete_select")
            st.caption("Deleting removes the run's curves, checkpoints and model for good.")
            st.button("Delete selected", key="delete_runs", on_click=_delete, args=(doomed,),
                      disabled=not doomed)
    with st.expander("Open a run bundle", icon=":material/upload_file:"):
        st.file_uploader("Run bundle (.zip) downloaded from the Playground page",
                         type=["zip"], key="bundle_file", on_change=_import, args=(store, ws))
        error = st.session_state.get(Key.BUNDLE_ERROR)
        if error:
            st.error(md(error))
    with st.expander("Recover my runs in another browser", icon=":material/key:"):
        st.markdown("Open this link in another browser (or after clearing cookies) to use "
                    "**this workspace** there. Anyone with the link can see and change your "
                    "runs: keep it private.")
        st.code(absolute_link(recover_link()), language=None)
    size = store.size_bytes()
    warn = get_settings().db_warn_mb
    if size is not None and size > warn * 2**20:
        st.warning(f"The run store holds {size / 2**20:,.0f} MB (warning level "
                   f"{warn:,} MB). Delete runs you no longer need, or ask the operator to "
                   "raise NNPG_DB_WARN_MB.")


page()
