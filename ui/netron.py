"""The Netron graph of a stored ``.tflite`` in a same-origin frame (the
viewer and its routes: ``core.server.netron``)."""

from __future__ import annotations

import streamlit as st

from core.server.netron import safe_model_name, viewer_url

__all__ = ["show_graph"]


def show_graph(job_id: str, name: str, *, height: int = 640) -> None:
    """The Netron graph of a stored ``.tflite``, in a same-origin frame."""
    url = viewer_url(job_id, name)
    st.iframe(url, height=height, alt=f"Graph of {safe_model_name(name)} in Netron")
    st.caption(
        f"Drag to move, scroll to zoom, click a node for its details. "
        f"[Open the graph full screen]({url})"
    )
