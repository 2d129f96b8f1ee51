"""Pieces of the Convert page: a finished conversion's result, the "Fix the
input shapes" button, what can be done with a ``.tflite``, and the Convert
button that knows when the same conversion is already running.

"Fix the input shapes" fills the page's Input shapes field (and opens
Advanced options) on the next run: it leaves the shapes under ``PREFILL`` and
``take_prefill`` applies them before the field is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import streamlit as st

from core.server import jobs
from ui import job_view
from ui.format import md
from ui.report_view import show_downloads, show_verdict_strip
from ui.uploads import ModelRef
from ui.words import option_words, shape_lines

__all__ = [
    "K",
    "PREFILL",
    "SHAPES",
    "ADVANCED",
    "take_prefill",
    "fix_shapes_button",
    "show_result",
    "show_tflite_choices",
    "optimize_page",
]

K = "convert."  # widget and state keys of the Convert page
PREFILL = K + "prefill_shapes"
SHAPES = K + "input_shapes"  # the Input shapes field
ADVANCED = K + "advanced"  # the Advanced options expander (open or not)
_PAGES = Path(__file__).resolve().parent.parent / "pages"


def optimize_page() -> str | None:
    """The Optimize page, once the app has one."""
    return "pages/optimize.py" if (_PAGES / "optimize.py").is_file() else None


def _prefill(text: str) -> None:
    st.session_state[PREFILL] = text


def take_prefill() -> bool:
    """Apply shapes left by "Fix the input shapes" (before the field is drawn);
    True when it did."""
    text = st.session_state.pop(PREFILL, None)
    if text is None:
        return False
    st.session_state[SHAPES] = text
    st.session_state[ADVANCED] = True
    return True


def fix_shapes_button(
    key: str, shapes: Mapping[str, Sequence[int]], *, label: str = "Fix the input shapes"
) -> None:
    """A button that fills Input shapes with ``shapes`` (one static shape per input)."""
    if not shapes:
        return
    text = shape_lines(shapes)
    st.button(
        label,
        key=key,
        on_click=_prefill,
        args=(text,),
        icon=":material/straighten:",
        help="Fills Advanced options → Input shapes with static shapes (batch 1; "
        "sequences and images at a typical size): "
        + "; ".join(text.splitlines())
        + ". Then press Convert.",
    )


def show_result(job: jobs.Job) -> None:
    """A finished conversion: what it made, its warnings (one per cause), where
    it runs, the downloads and the way to its report."""
    conv = (job.result or {}).get("conversion") or {}
    extra = option_words(job.params.get("options"))
    st.success(
        f"Converted **{md(job.model_name)}** with **{job_view.preset_title(job.preset)}**"
        + (f" ({md(', '.join(extra))})" if extra else "")
        + ".",
        icon=":material/check_circle:",
    )
    job_view.show_conversion_headline(job)
    suggested = conv.get("suggested_shapes") or {}
    job_view.show_warnings(
        list(conv.get("warnings") or []),
        key=K + "result.warnings",
        fix_shapes=lambda key: fix_shapes_button(key, suggested),
    )
    show_verdict_strip(job)
    show_downloads(job, key=K + "dl")
    st.page_link(
        job_view.INSPECT_PAGE,
        label="See inside the model: graph, charts, compatibility",
        icon=":material/query_stats:",
        query_params={"job": job.id},
    )


def show_tflite_choices(model: ModelRef, *, inspect: bool = True) -> bool:
    """What a ``.tflite`` can still go through; True when Inspect was asked for."""
    st.info(
        "This is already a TensorFlow Lite model: it holds the converted graph and "
        "weights but not the TensorFlow program they came from, so it cannot be "
        "converted again with another preset. You can look inside it"
        + (", or optimize it as it is." if optimize_page() else "."),
        icon=":material/info:",
    )
    clicked = False
    with st.container(horizontal=True):
        if inspect:
            clicked = st.button("Inspect this model", type="primary", key=K + "inspect")
        page = optimize_page()
        if page:
            st.page_link(page, label="Optimize this .tflite", icon=":material/tune:")
    return clicked
