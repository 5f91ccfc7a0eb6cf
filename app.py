"""Neural Network Playground (placeholder until the app lands)."""

import streamlit as st

st.set_page_config(page_title="Neural Network Playground", page_icon="🧠")
st.title("Neural Network Playground")
st.write("The engine `nn_core` is ready; the interactive playground is coming.")
