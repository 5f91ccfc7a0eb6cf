"""Data: look at the chosen data set before training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from playground import charts
from playground.dataset_cache import dataset_or_error
from playground.guards import guarded
from playground.images import upscale
from playground.run_view import config_from_state
from playground.text import md


@guarded
def page() -> None:
    st.title("Data")
    cfg = config_from_state()
    ds = dataset_or_error(cfg)
    if ds is None:
        return
    st.markdown(f"**{md(ds.name)}**: {md(ds.description)}")
    classes, y_idx, counts = np.unique(ds.y, return_inverse=True, return_counts=True)
    labels = [str(c) for c in classes]
    cols = st.columns(4)
    cols[0].metric("Samples", f"{len(ds.y):,}")
    cols[1].metric("Features", ds.X.shape[1])
    cols[2].metric("Classes", len(classes))
    cols[3].metric("Smallest class", f"{counts.min()} ({labels[int(np.argmin(counts))]})")

    left, right = st.columns(2)
    left.plotly_chart(charts.class_balance_figure(labels, counts), key="class_balance",
                      config=charts.PLOTLY_CONFIG)
    if ds.X.shape[1] == 2:
        X2, axes, title = ds.X, ds.feature_names, "The samples"
    else:
        from sklearn.decomposition import PCA

        Xs = (ds.X - ds.X.mean(axis=0)) / np.where(ds.X.std(axis=0) > 0, ds.X.std(axis=0), 1)
        pca = PCA(n_components=2, random_state=0).fit(Xs)
        X2 = pca.transform(Xs)
        share = pca.explained_variance_ratio_
        axes = (f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%})")
        title = "Principal-component projection (standardised features)"
    right.plotly_chart(charts.scatter_figure(X2, y_idx, labels, axes, title),
                       key="data_scatter", config=charts.PLOTLY_CONFIG)

    if ds.images is not None:
        st.subheader("Sample images", divider="gray")
        picks = [i for c in range(len(classes)) for i in np.flatnonzero(y_idx == c)[:3]]
        st.image([upscale(ds.images[i]) for i in picks],
                 caption=[labels[y_idx[i]] for i in picks], width=72, clamp=True)

    st.subheader("Features", divider="gray")
    stats = pd.DataFrame({"feature": ds.feature_names, "mean": ds.X.mean(axis=0),
                          "std": ds.X.std(axis=0), "min": ds.X.min(axis=0),
                          "max": ds.X.max(axis=0)})
    st.dataframe(stats, hide_index=True, key="feature_stats", height=260)
    st.caption("Features on very different scales slow gradient descent down: keep "
               "“Standardise features” on unless you want to see that happen.")
    with st.expander("First rows"):
        head = pd.DataFrame(ds.X[:100], columns=list(ds.feature_names))
        head.insert(0, ds.label_name, ds.y[:100])
        st.dataframe(head, hide_index=True, key="data_head")


page()
