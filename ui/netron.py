"""The Netron graph of a stored ``.tflite`` in a same-origin frame (the
viewer and its routes: ``core.server.netron``). The frame takes the window's
height (``ui.layout``'s CSS); a button opens the viewer full screen."""

from __future__ import annotations

import streamlit as st

from core.server.netron import safe_model_name, viewer_url

__all__ = ["show_graph"]


def show_graph(job_id: str, name: str, *, height: int = 640) -> None:
    """The Netron graph of a stored ``.tflite``, in a same-origin frame."""
    url = viewer_url(job_id, name)
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(
            "Drag to move, scroll to zoom, click a node for its details; the toolbar "
            "below the graph zooms and goes back."
        )
        st.link_button("Full screen", url, icon=":material/open_in_full:", type="secondary")
    st.iframe(url, height=height, alt=f"Graph of {safe_model_name(name)} in Netron")
