"""Compare: which preset should I ship? (first version; the full page follows.)"""

from __future__ import annotations

import streamlit as st

st.title("Compare presets")
st.caption(
    "Convert one model with every preset, measure what each one costs (accuracy against "
    "the original, speed on this server, size) and get a recommendation."
)
st.info("This page is being built.", icon=":material/construction:")
