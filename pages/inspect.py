"""Inspect: the report of a job (``?job=<id>``) or of an uploaded ``.tflite``.

Numbers first, then where the model runs, charts, the Netron graph and tables.
Opened from the sidebar, it shows this session's current conversion or
inspection; a comparison's link goes to Compare.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.server import jobs
from ui import job_view
from ui.convert_view import PREFILL, optimize_page
from ui.format import md
from ui.report_view import show_report
from ui.uploads import ModelRef
from ui.words import shape_lines

K = "inspect."
SHOWN = (jobs.JobKind.CONVERT, jobs.JobKind.INSPECT)


def _fix_on_convert(job: jobs.Job) -> Callable[[str], None] | None:
    """ "Fix the input shapes" for a conversion: the Convert page, shapes filled in."""
    shapes = ((job.result or {}).get("conversion") or {}).get("suggested_shapes") or {}
    if job.kind is not jobs.JobKind.CONVERT or not shapes:
        return None

    def button(key: str) -> None:
        if st.button("Fix the input shapes", key=key, icon=":material/straighten:"):
            st.session_state[PREFILL] = shape_lines(shapes)
            st.switch_page(job_view.CONVERT_PAGE, query_params={"job": job.id})

    return button


job_id = job_view.job_id_from_url()
job = job_view.load_job(job_id) if job_id else None
if job is None and not job_id:  # from the sidebar: this session's current job
    job = job_view.current_job(SHOWN)
    if job is not None and job.id != st.session_state.get(K + "dismissed"):
        st.query_params["job"] = job.id  # the URL says what is shown
    else:
        job = None
if job is not None:
    job_view.route(job, job_view.INSPECT_PAGE, also=(jobs.JobKind.CONVERT,))

if job is None:
    st.title("Inspect a TFLite model")
    st.caption(
        "Upload a `.tflite` file to see its operators, sizes, where it runs and its "
        "graph. To convert a TensorFlow model first, use Convert."
    )
    uploaded = job_view.tflite_uploader(K)
    st.page_link(
        job_view.CONVERT_PAGE, label="Convert a TensorFlow model", icon=":material/upload_file:"
    )
    job_view.show_recent(key=K + "recent", kinds=SHOWN)
    if uploaded is None:
        st.stop()

    def _not_tflite(model: ModelRef) -> None:
        st.session_state["convert.model"] = model.to_state()
        st.warning(
            f"{md(model.name)} is a {model.kind_words}, not a .tflite file: convert it "
            "first; the Convert page has it ready.",
            icon=":material/info:",
        )
        st.page_link(job_view.CONVERT_PAGE, label="Convert it", icon=":material/upload_file:")

    job_view.inspect_upload(uploaded, K, not_tflite=_not_tflite, failed="cannot be inspected")

st.title(md(job.model_name if job.kind is jobs.JobKind.INSPECT else job_view.job_title(job)))
if job.kind is jobs.JobKind.CONVERT:
    st.caption(
        f"Converted with the **{md(job_view.preset_title(job.preset))}** preset (`{job.preset}`)."
    )

if job_view.show_unfinished(job, key="inspect"):
    if job.status is jobs.JobStatus.FAILED:
        st.page_link(
            job_view.CONVERT_PAGE,
            label="Back to Convert",
            icon=":material/upload_file:",
            query_params={"job": job.id},
        )
    st.stop()

show_report(job, key=K + "report", fix_shapes=_fix_on_convert(job))
st.divider()
if job.kind is jobs.JobKind.CONVERT:
    st.page_link(
        job_view.CONVERT_PAGE,
        label="Convert this model with another preset",
        icon=":material/tune:",
        query_params={"job": job.id},
    )
else:
    page = optimize_page()
    st.info(
        "This .tflite was uploaded as it is: it holds the converted graph and weights, "
        "not the TensorFlow program, so it cannot be converted again with another "
        "preset. To get another preset, convert the original SavedModel or Keras file"
        + ("; or optimize this file as it is." if page else "."),
        icon=":material/info:",
    )
    if page:
        st.page_link(
            page,
            label="Optimize this .tflite",
            icon=":material/tune:",
            query_params={"job": job.id},
        )
if st.button("Inspect another .tflite", key=K + "another", icon=":material/upload:"):
    st.session_state[K + "dismissed"] = job.id
    st.query_params.clear()
    st.rerun()
