"""Playground: train the network and watch it learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from playground import bundle, export, live_charts
from playground.callbacks import on_train_again
from playground.dataset_cache import dataset_or_error
from playground.deferred import after_paint
from playground.guards import guarded
from playground.jobs import Snapshot
from playground.plotly_live import live_chart
from playground.refresh import EVAL_POLL_SECONDS, POLL_SECONDS, QUEUED_POLL_SECONDS
from playground.resources import get_runner, get_store, store_problem
from playground.run_view import config_from_state, current_view
from playground.runs import RunView, run_snapshot, upload_bytes
from playground.session import Key
from playground.status import ACTIVE, Status
from playground.text import md

_STATUS_ICON = {Status.QUEUED: ":material/hourglass_top:",
                Status.RUNNING: ":material/model_training:",
                Status.PAUSED: ":material/pause_circle:", Status.DONE: ":material/check_circle:",
                Status.STOPPED: ":material/stop_circle:", Status.DIVERGED: ":material/warning:",
                Status.FAILED: ":material/error:", Status.INTERRUPTED: ":material/sync_problem:"}


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def _fmt_loss(value: float) -> str:
    """Four decimals, or four significant digits once the loss is tiny."""
    return f"{value:.4f}" if value >= 0.001 else f"{value:.3g}"


def status_line(snap: Snapshot) -> None:
    icon = _STATUS_ICON.get(snap.status)
    if snap.status == Status.QUEUED:
        ahead = snap.queue_position - 1
        st.info(f"Queued: position {snap.queue_position} in line"
                f"{f' ({ahead} runs ahead)' if ahead else ''}. Training starts as soon as a "
                "worker is free.", icon=icon)
    elif snap.status == Status.RUNNING:
        st.info("Stopping..." if snap.stop_requested else "Training...", icon=icon)
    elif snap.status == Status.PAUSED:
        st.warning(f"Paused after epoch {snap.epoch}. Press Resume to continue; the run is "
                   "stopped if it stays paused for long.", icon=icon)
    elif snap.status == Status.INTERRUPTED:
        st.warning(snap.message, icon=icon)
    elif snap.status == Status.DONE:
        text = snap.message
        if snap.records:
            text += f" Training took {_fmt_seconds(snap.records[-1].elapsed)}"
            if snap.evaluation is not None:
                text += f"; test accuracy {snap.evaluation.accuracy:.1%}"
            text += "."
        st.success(text, icon=icon)
    elif snap.status == Status.STOPPED:
        st.info(snap.message, icon=icon)
    else:  # diverged, failed (the message may quote an error: escaped)
        st.error(md(snap.message), icon=icon)


def progress(snap: Snapshot) -> None:
    last = snap.records[-1] if snap.records else None
    parts = [f"Epoch {snap.epoch}/{snap.epochs_planned}"]
    if last is not None:
        if snap.status == Status.RUNNING:
            state = f"ETA {_fmt_seconds(snap.eta_seconds)}"
        else:
            state = "finished" if snap.status == Status.DONE else str(snap.status)
        parts += [f"elapsed {_fmt_seconds(last.elapsed)}", state,
                  f"{last.samples_per_second:,.0f} samples/s"]
    st.progress(snap.progress, text=" · ".join(parts))


def headline(snap: Snapshot) -> None:
    last = snap.records[-1] if snap.records else None
    ev = snap.evaluation
    cols = st.columns(5)
    cols[0].metric("Test accuracy", f"{ev.accuracy:.1%}" if ev else "-",
                   help=f"On the held-out test set, evaluated at epoch {ev.epoch}"
                        if ev else None)
    cols[1].metric("Macro F1", f"{ev.macro_f1:.3f}" if ev else "-",
                   help="Mean of the per-class F1 scores (every class counts the same)")
    cols[2].metric("Train loss", _fmt_loss(last.train_loss) if last else "-")
    val = last.val_loss if last else None
    cols[3].metric("Validation loss", _fmt_loss(val) if val is not None else "-")
    cols[4].metric("Learning rate", f"{last.learning_rate:.3g}" if last else "-")




def evaluation_view(view: RunView, snap: Snapshot) -> None:
    ev = snap.evaluation
    labels = [str(c) for c in view.prepared.classes]
    left, right = st.columns(2)
    with left:
        normalize = st.toggle("Normalise rows", key="cm_normalize",
                              help="Show each true class's row as shares (recall on the "
                                   "diagonal)")
        if ev is None:
            st.caption("The confusion matrix appears after the first evaluation.")
        else:
            live_chart(live_charts.confusion_figure(ev.confusion_matrix, labels,
                                                    normalize),
                       "confusion_matrix", revision=view.id)
    with right:
        if ev is not None:
            s = ev.summary
            live_chart(live_charts.class_metrics_figure(s, labels), "class_metrics",
                       revision=view.id)
            table = pd.DataFrame({"class": labels, "precision": s["precision"],
                                  "recall": s["recall"], "F1": s["f1"],
                                  "support": s["support"]})
            st.dataframe(table, hide_index=True, key="class_table",
                         column_config={k: st.column_config.NumberColumn(format="%.3f")
                                        for k in ("precision", "recall", "F1")})


def boundary_or_gallery(view: RunView, snap: Snapshot) -> None:
    ev = snap.evaluation
    p = view.prepared
    if ev is None:
        return
    if ev.has_grid and p.grid_x is not None:
        X = view.dataset.X
        live_chart(live_charts.boundary_figure(
            p.grid_x, p.grid_y, ev.grid_pred, ev.grid_confidence,
            [str(c) for c in p.classes],
            [(X[p.train_index], p.y_train, "train"), (X[p.test_index], p.y_test, "test")],
            view.dataset.feature_names), "decision_boundary", revision=view.id)
    elif view.dataset.images is not None:
        wrong = np.flatnonzero(ev.y_pred != p.y_test)
        # most confident mistakes first: the most instructive ones
        order = wrong[np.argsort(-ev.confidence[wrong])][:16]
        images = [view.dataset.images[p.test_index[i]] for i in order]
        captions = [f"{p.classes[p.y_test[i]]} → {p.classes[ev.y_pred[i]]} "
                    f"({ev.confidence[i]:.0%})" for i in order]
        subtitle = (f"{len(wrong)} of {len(p.y_test)} test images at epoch {ev.epoch}; "
                    "label: true → predicted (confidence), most confident first")
        if len(wrong) == 0:
            subtitle = f"every test image is classified correctly at epoch {ev.epoch}"
        live_chart(live_charts.gallery_figure(images, captions, "Misclassified test images",
                                              subtitle), "misclassified", revision=view.id)


def _live(snap: Snapshot) -> bool:
    """Is this snapshot the live state in this server's runner (fast refresh)?"""
    return get_runner().snapshot(snap.job_id, watch=False) is not None


def progress_panel(view: RunView) -> None:
    """What changes every few hundred milliseconds: status, progress, curves.

    When the status changes (the run starts, pauses, finishes), one full rerun
    redraws the buttons and picks the refresh rate for the new status.
    """
    snap = run_snapshot(view)
    if snap is None:
        st.warning("This run is no longer available (it was deleted, or the run store is "
                   "unavailable). Press Train to start again.")
        return
    ss = st.session_state
    drawn = ss.get(Key.DRAWN)
    if drawn is not None and drawn[0] == view.id and drawn[1] != snap.status:
        # Started, paused, finished...: redraw everything once (buttons,
        # downloads, the refresh rate that suits the new status).
        ss[Key.DRAWN] = (view.id, snap.status)
        st.rerun()
    status_line(snap)
    progress(snap)
    headline(snap)
    planned = snap.epochs_planned
    c1, c2 = st.columns(2)
    log_y = st.session_state.get("loss_log", False)
    with c1:
        fig, frozen = live_charts.curves_figure(snap.records, "loss", planned, log_y,
                                                snap.finished)
        live_chart(fig, "loss_chart", revision=view.id, frozen=frozen)
    with c2:
        fig, frozen = live_charts.curves_figure(snap.records, "accuracy", planned,
                                                finished=snap.finished)
        live_chart(fig, "accuracy_chart", revision=view.id, frozen=frozen)


def evaluation_panel(view: RunView) -> None:
    """What changes with each test-set evaluation (refreshed every three seconds)."""
    if st.session_state.get(Key.EVAL_DEFERRED) == view.id:
        # A reload's first run: drawn once the browser has painted the curves
        # (or at the fragment's next refresh, whichever comes first).
        st.session_state.pop(Key.EVAL_DEFERRED)
        after_paint("evaluation_after_paint")
        return
    snap = run_snapshot(view)
    if snap is None:
        return
    evaluation_view(view, snap)
    c1, c2 = st.columns(2)
    with c1:
        boundary_or_gallery(view, snap)
    with c2:
        if snap.records:
            grad, weight = live_charts.norms_figures(snap.records, view.layer_names,
                                                     snap.epochs_planned)
            live_chart(grad, "grad_norms", revision=view.id)
            live_chart(weight, "weight_norms", revision=view.id)
            st.caption("Gradient norms that shrink layer by layer towards the input are "
                       "the vanishing-gradient problem: try sigmoid with 6 layers.")


def settled_progress_panel(view: RunView) -> None:
    """:func:`progress_panel` once the run has stopped moving (see ``page``)."""
    progress_panel(view)


def settled_evaluation_panel(view: RunView) -> None:
    """:func:`evaluation_panel` once the run has stopped moving (see ``page``)."""
    evaluation_panel(view)


def _model_bytes(view: RunView, snap: Snapshot) -> bytes | None:
    """The trained model: from the run store (read on click), or this server's memory."""
    if snap.model is not None:
        return snap.model
    store = get_store()
    return None if store is None else store.model(view.id)


def downloads(view: RunView, snap: Snapshot) -> None:
    if snap.status in ACTIVE or (snap.model is None and not view.run.dataset_hash):
        return
    if snap.model is None and not (view.run.has_model or snap.status != Status.FAILED):
        return
    st.subheader("Export", divider="gray")
    labels = [str(c) for c in view.prepared.classes]
    cols = st.columns(5)
    cols[0].download_button("Model (.npz)", lambda: _model_bytes(view, snap) or b"",
                            "nn_playground_model.npz",
                            "application/octet-stream", key="download_model", width="stretch",
                            help="Load with nn_core.NeuralNetworkClassifier.load(path); apply "
                                 "the stored scaling to new data first")
    if snap.evaluation is not None:
        cols[1].download_button("Metrics (CSV)",
                                export.metrics_csv(snap.evaluation.summary, labels),
                                "metrics.csv", "text/csv", key="download_metrics",
                                width="stretch")
    cols[2].download_button("Training history (CSV)", export.history_csv(snap.records),
                            "history.csv", "text/csv", key="download_history",
                            width="stretch")
    cols[3].download_button("Python script", export.reproduce_script(view.config,
                                                                     view.run.batch_size),
                            "reproduce_run.py", "text/x-python", key="download_script",
                            width="stretch",
                            help="Retrains this run with nn_core and scikit-learn")
    cols[4].download_button("Run bundle (.zip)",
                            lambda: bundle.make_bundle(view, snap, _model_bytes(view, snap),
                                                       upload_bytes(view)),
                            f"run-{view.run.number}.zip", "application/zip",
                            key="download_bundle", width="stretch",
                            help="Model, settings and history in one file: open it again on "
                                 "the Compare page, here or on another server")


def intro() -> None:
    st.markdown(
        "Pick a data set and a network in the sidebar, then press **Train**. The loss and "
        "accuracy curves, the confusion matrix and the per-class scores update while the "
        "network learns.")
    cfg = config_from_state()
    ds = dataset_or_error(cfg)
    if ds is None:
        return
    st.info(f"**{md(ds.name)}**: {md(ds.description)}")
    sizes = (ds.X.shape[1], *cfg.hidden_layer_sizes, ds.n_classes)
    # Drawn like the live charts: the browser has loaded plotly.js before the
    # first Train click, and the diagram changes in place while sliders move.
    live_chart(live_charts.network_figure(sizes, cfg.activation), "network_diagram")
    st.caption("Ideas: train Spiral with 0 hidden layers, then with 3; try sigmoid with 6 "
               "layers and watch the gradient norms; push the learning rate to 1 and see it "
               "diverge.")


def notices() -> None:
    """Messages about this browser's runs: errors, deletions, the store's health."""
    ss = st.session_state
    error = ss.get(Key.TRAIN_ERROR)
    if error:
        st.error(md(error))
    notice = ss.get(Key.RUN_NOTICE)
    if notice:
        st.info(md(notice), icon=":material/info:")
    problem = store_problem()
    if problem:
        st.warning(f"{problem} Training still works, and runs are saved once the store is "
                   "back.", icon=":material/cloud_off:")
    if ss.pop(Key.RECOVERED, False):
        st.success("This browser now uses the recovered workspace: its runs are on the "
                   "Compare page.", icon=":material/key:")
    if ss.pop(Key.RECOVER_ERROR, False):
        st.error("That recover link is not valid. Copy the whole link from the Compare page "
                 "of the browser that has your runs.")


def run_header(view: RunView) -> None:
    cfg = view.config
    run = view.run
    st.caption(f"{md(run.name)}: {md(view.dataset.name)} · hidden {cfg.architecture} · "
               f"{cfg.activation} · {cfg.optimizer} lr {cfg.learning_rate:g} · batch "
               f"{run.batch_size} · {run.n_params:,} parameters · seed {cfg.seed}")
    if not view.owned:
        c1, c2 = st.columns([4, 1], vertical_alignment="center")
        c1.info("A shared result: you are looking at someone else's run (read-only).",
                icon=":material/visibility:")
        c2.button("Train again", key="train_again", on_click=on_train_again,
                  args=(cfg,), icon=":material/content_copy:", width="stretch",
                  help="Copy this run's settings into your sidebar")


@guarded
def page() -> None:
    st.title("Neural Network Playground")
    notices()
    view = current_view()
    if view is None:
        intro()
        return
    run_header(view)
    st.toggle("Log-scale loss", key="loss_log", help="Show the loss curve on a log scale: "
              "late improvements stay visible")
    snap = run_snapshot(view)
    status = snap.status if snap is not None else None
    if status != st.session_state.get(Key.SIDEBAR_STATUS, status):
        st.rerun()  # the status changed while the sidebar was drawn: draw both anew
    st.session_state[Key.DRAWN] = (view.id, status)
    if snap is not None and snap.status in ACTIVE and not _live(snap):
        # Trained by another replica (or waiting there): read from the store.
        st.fragment(run_every=QUEUED_POLL_SECONDS)(guarded(progress_panel))(view)
        st.fragment(run_every=EVAL_POLL_SECONDS)(guarded(evaluation_panel))(view)
    elif snap is not None and snap.status == Status.QUEUED:
        # Only the queue position changes: every page refresh costs the one
        # server process ~20 ms of CPU, and in a class most pages wait in line
        # (a 2-CPU server trains two runs at a time), so waiting pages poll slowly.
        st.fragment(run_every=QUEUED_POLL_SECONDS)(guarded(progress_panel))(view)
    elif snap is not None and snap.status in (Status.RUNNING,):
        # Two refresh rates: the curves move every few hundred milliseconds; the
        # evaluation only changes when the worker re-evaluates the test set, and
        # redrawing heatmaps, tables and images is what costs the browser most.
        st.fragment(run_every=POLL_SECONDS)(guarded(progress_panel))(view)
        if not st.session_state.get(Key.RUNS_COMPLETED):
            # This session's first page run (a reload, a new tab): the curves first.
            st.session_state[Key.EVAL_DEFERRED] = view.id
        st.fragment(run_every=EVAL_POLL_SECONDS)(guarded(evaluation_panel))(view)
    else:
        # Fragments without a refresh: the same page structure as while training,
        # so the charts stay mounted when the run ends (drawn outside a fragment they
        # would be mounted anew and blink). Their own fragment ids: a refresh of the
        # training page still in flight cannot take over (and lose) what they draw.
        st.fragment(guarded(settled_progress_panel))(view)
        st.fragment(guarded(settled_evaluation_panel))(view)
        if snap is not None:
            downloads(view, snap)


page()
