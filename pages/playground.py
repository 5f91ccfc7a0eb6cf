"""Playground: train the network and watch it learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from playground import export, live_charts
from playground.jobs import ACTIVE, Snapshot
from playground.ui import (
    EVAL_POLL_SECONDS,
    POLL_SECONDS,
    QUEUED_POLL_SECONDS,
    RunView,
    archive,
    config_from_state,
    dataset_or_error,
    guarded,
    session_jobs,
)

_STATUS_ICON = {"queued": ":material/hourglass_top:", "running": ":material/model_training:",
                "paused": ":material/pause_circle:", "done": ":material/check_circle:",
                "stopped": ":material/stop_circle:", "diverged": ":material/warning:",
                "failed": ":material/error:"}


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
    if snap.status == "queued":
        ahead = snap.queue_position - 1
        st.info(f"Queued: position {snap.queue_position} in line"
                f"{f' ({ahead} runs ahead)' if ahead else ''}. Training starts as soon as a "
                "worker is free.", icon=icon)
    elif snap.status == "running":
        st.info("Stopping..." if snap.stop_requested else "Training...", icon=icon)
    elif snap.status == "paused":
        st.warning(f"Paused after epoch {snap.epoch}. Press Resume to continue.", icon=icon)
    elif snap.status == "done":
        text = snap.message
        if snap.records:
            text += f" Training took {_fmt_seconds(snap.records[-1].elapsed)}"
            if snap.evaluation:
                text += f"; test accuracy {snap.evaluation['summary']['accuracy']:.1%}"
            text += "."
        st.success(text, icon=icon)
    elif snap.status == "stopped":
        st.info(snap.message, icon=icon)
    else:  # diverged, failed
        st.error(snap.message, icon=icon)


def progress(snap: Snapshot) -> None:
    last = snap.records[-1] if snap.records else None
    parts = [f"Epoch {snap.epoch}/{snap.epochs_planned}"]
    if last is not None:
        parts += [f"elapsed {_fmt_seconds(last.elapsed)}",
                  f"ETA {_fmt_seconds(snap.eta_seconds)}" if not snap.finished else "finished",
                  f"{last.samples_per_second:,.0f} samples/s"]
    st.progress(snap.progress, text=" · ".join(parts))


def headline(snap: Snapshot) -> None:
    last = snap.records[-1] if snap.records else None
    ev = snap.evaluation
    cols = st.columns(5)
    cols[0].metric("Test accuracy", f"{ev['summary']['accuracy']:.1%}" if ev else "-",
                   help=f"On the held-out test set, evaluated at epoch {ev['epoch']}"
                        if ev else None)
    cols[1].metric("Macro F1", f"{ev['summary']['macro_f1']:.3f}" if ev else "-",
                   help="Mean of the per-class F1 scores (every class counts the same)")
    cols[2].metric("Train loss", _fmt_loss(last.train_loss) if last else "-")
    val = last.val_loss if last else None
    cols[3].metric("Validation loss", _fmt_loss(val) if val is not None else "-")
    cols[4].metric("Learning rate", f"{last.learning_rate:.3g}" if last else "-")


def vega(chart: tuple, key: str) -> None:
    """Draw a live chart inside a keyed container (``.st-key-<key>`` in the page)."""
    df, spec = chart
    height = spec.pop("height", 300)
    with st.container(key=key):
        st.vega_lite_chart(df, spec, width="stretch", height=height)


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
            vega(live_charts.confusion_chart(ev["summary"]["confusion_matrix"], labels,
                                             normalize), "confusion_matrix")
    with right:
        if ev is not None:
            s = ev["summary"]
            vega(live_charts.class_metrics_chart(s, labels), "class_metrics")
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
    if "grid_pred" in ev and p.grid_x is not None:
        X = view.dataset.X
        vega(live_charts.boundary_chart(
            p.grid_x, p.grid_y, ev["grid_pred"], ev["grid_confidence"],
            [str(c) for c in p.classes],
            [(X[p.train_index], p.y_train, "train"), (X[p.test_index], p.y_test, "test")],
            view.dataset.feature_names), "decision_boundary")
    elif view.dataset.images is not None:
        wrong = np.flatnonzero(ev["y_pred"] != p.y_test)
        # most confident mistakes first: the most instructive ones
        order = wrong[np.argsort(-ev["confidence"][wrong])][:16]
        images = [view.dataset.images[p.test_index[i]] for i in order]
        captions = [f"{p.classes[p.y_test[i]]} → {p.classes[ev['y_pred'][i]]} "
                    f"({ev['confidence'][i]:.0%})" for i in order]
        subtitle = (f"{len(wrong)} of {len(p.y_test)} test images at epoch {ev['epoch']}; "
                    "label: true → predicted (confidence), most confident first")
        if len(wrong) == 0:
            subtitle = f"every test image is classified correctly at epoch {ev['epoch']}"
        vega(live_charts.gallery_chart(images, captions, "Misclassified test images",
                                       subtitle), "misclassified")


def _snapshot(view: RunView) -> Snapshot | None:
    snap = session_jobs().snapshot()
    if snap is None or snap.job_id != view.job_id:
        return None
    return snap


def progress_panel(view: RunView, queued: bool = False) -> None:
    """What changes every few hundred milliseconds: status, progress, curves.

    ``queued``: drawn while the run waits for a worker (polled slowly); once it
    starts, one full rerun switches to the fast refresh.
    """
    snap = _snapshot(view)
    if snap is None:
        st.warning("This run is no longer available (the connection was lost or the server "
                   "restarted). Press Train to start again.")
        return
    if snap.finished and not view.archived:
        archive(view, snap)
        st.session_state["pause_requested"] = False
        st.rerun()  # redraw everything once: buttons, downloads, no more polling
    if queued and snap.status != "queued":
        st.rerun()  # it started: poll at the training pace
    status_line(snap)
    progress(snap)
    headline(snap)
    planned = snap.epochs_planned
    c1, c2 = st.columns(2)
    log_y = st.session_state.get("loss_log", False)
    with c1:
        vega(live_charts.curves_chart(snap.records, "loss", planned, log_y), "loss_chart")
    with c2:
        vega(live_charts.curves_chart(snap.records, "accuracy", planned), "accuracy_chart")


def evaluation_panel(view: RunView) -> None:
    """What changes with each test-set evaluation (refreshed every two seconds)."""
    snap = _snapshot(view)
    if snap is None:
        return
    evaluation_view(view, snap)
    c1, c2 = st.columns(2)
    with c1:
        boundary_or_gallery(view, snap)
    with c2:
        if snap.records:
            grad, weight = live_charts.norms_charts(snap.records, view.layer_names,
                                                    snap.epochs_planned)
            vega(grad, "grad_norms")
            vega(weight, "weight_norms")
            st.caption("Gradient norms that shrink layer by layer towards the input are "
                       "the vanishing-gradient problem: try sigmoid with 6 layers.")


def downloads(view: RunView, snap: Snapshot) -> None:
    if snap.model is None:
        return
    st.subheader("Export", divider="gray")
    labels = [str(c) for c in view.prepared.classes]
    cols = st.columns(4)
    cols[0].download_button("Model (.npz)", snap.model, "nn_playground_model.npz",
                            "application/octet-stream", key="download_model", width="stretch",
                            help="Load with nn_core.NeuralNetworkClassifier.load(path); apply "
                                 "the stored scaling to new data first")
    if snap.evaluation is not None:
        cols[1].download_button("Metrics (CSV)",
                                export.metrics_csv(snap.evaluation["summary"], labels),
                                "metrics.csv", "text/csv", key="download_metrics",
                                width="stretch")
    cols[2].download_button("Training history (CSV)", export.history_csv(snap.records),
                            "history.csv", "text/csv", key="download_history",
                            width="stretch")
    cols[3].download_button("Python script", export.reproduce_script(view.config,
                                                                     view.batch_size),
                            "reproduce_run.py", "text/x-python", key="download_script",
                            width="stretch",
                            help="Retrains this run with nn_core and scikit-learn")


def intro() -> None:
    st.markdown(
        "Pick a data set and a network in the sidebar, then press **Train**. The loss and "
        "accuracy curves, the confusion matrix and the per-class scores update while the "
        "network learns.")
    cfg = config_from_state()
    ds = dataset_or_error(cfg)
    if ds is None:
        return
    st.info(f"**{ds.name}**: {ds.description}")
    sizes = (ds.X.shape[1], *cfg.hidden_layer_sizes, ds.n_classes)
    vega(live_charts.network_chart(sizes, cfg.activation), "network_diagram")
    st.caption("Ideas: train Spiral with 0 hidden layers, then with 3; try sigmoid with 6 "
               "layers and watch the gradient norms; push the learning rate to 1 and see it "
               "diverge.")


@guarded
def page() -> None:
    st.title("Neural Network Playground")
    error = st.session_state.get("train_error")
    if error:
        st.error(error)
    view: RunView | None = st.session_state.get("current")
    if view is None:
        intro()
        return
    cfg = view.config
    st.caption(f"Run {view.number}: {view.dataset.name} · hidden {cfg.architecture} · "
               f"{cfg.activation} · {cfg.optimizer} lr {cfg.learning_rate:g} · batch "
               f"{view.batch_size} · {view.n_params:,} parameters · seed {cfg.seed}")
    st.toggle("Log-scale loss", key="loss_log", help="Show the loss curve on a log scale: "
              "late improvements stay visible")
    snap = _snapshot(view)
    if snap is not None and snap.status == "queued":
        # Only the queue position changes: every page refresh costs the one
        # server process ~20 ms of CPU, and in a class most pages wait in line
        # (a 2-CPU server trains two runs at a time), so waiting pages poll slowly.
        st.fragment(run_every=QUEUED_POLL_SECONDS)(guarded(progress_panel))(view, True)
    elif snap is not None and snap.status in ACTIVE:
        # Two refresh rates: the curves move every few hundred milliseconds; the
        # evaluation only changes when the worker re-evaluates the test set, and
        # redrawing heatmaps, tables and images is what costs the browser most.
        st.fragment(run_every=POLL_SECONDS)(guarded(progress_panel))(view)
        st.fragment(run_every=EVAL_POLL_SECONDS)(guarded(evaluation_panel))(view)
    else:
        guarded(progress_panel)(view)
        guarded(evaluation_panel)(view)
        if snap is not None:
            downloads(view, snap)


page()
