"""App-side code of the Neural Network Playground that is not a page.

``jobs`` (background training), ``worker`` (the training process), ``datasets``
(loading and validating data), ``charts`` (Plotly figures from records),
``config`` (typed run configuration), ``settings`` (operator limits) and ``ui``
(thin Streamlit helpers).
"""
