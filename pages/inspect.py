"""Inspect: the report of a job (``?job=<id>``) or of an uploaded ``.tflite``.

Numbers first, then where the model runs, charts, the Netron graph and tables.
"""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.server import jobs
from core.server.settings import load_settings
from ui import job_view
from ui.errors import show_error
from ui.format import md
from ui.identity import current_user
from ui.report_view import show_report
from ui.uploads import store_model, submit_inspection

K = "inspect."
CONVERT_PAGE = "pages/convert.py"

job_id = job_view.job_id_from_url()
job = job_view.load_job(job_id) if job_id else None

if job is None:
    st.title("Inspect a TFLite model")
    st.caption(
        "Upload a `.tflite` file to see its operators, sizes, where it runs and its "
        "graph. To convert a TensorFlow model first, use Convert."
    )
    uploaded = st.file_uploader(
        "A .tflite file",
        type=["tflite"],
        key=f"{K}upload.{st.session_state.get(K + 'uploader_gen', 0)}",
        max_upload_size=load_settings().max_upload_mb,
    )
    st.page_link(CONVERT_PAGE, label="Convert a TensorFlow model", icon=":material/upload_file:")
    if uploaded is None:
        st.stop()
    try:
        with st.spinner(f"Storing {uploaded.name}…"):
            model = store_model(uploaded, uploaded.name)
        if not model.is_tflite:
            st.warning(
                f"{md(model.name)} is a {model.kind_words}, not a .tflite file: convert it first.",
                icon=":material/info:",
            )
            st.page_link(CONVERT_PAGE, label="Go to Convert", icon=":material/upload_file:")
            st.stop()
        new = submit_inspection(model, user=current_user())
    except StudioError as e:
        show_error(e, title=f"{uploaded.name} cannot be inspected.")
        st.stop()
    st.session_state[K + "uploader_gen"] = st.session_state.get(K + "uploader_gen", 0) + 1
    job_view.open_job(new.id)

st.title(md(job.model_name if job.kind is jobs.JobKind.INSPECT else job_view.job_title(job)))
if job.kind is jobs.JobKind.CONVERT:
    st.caption(
        f"Converted with the **{job_view.preset_title(job.preset)}** preset (`{job.preset}`)."
    )

if job_view.show_unfinished(job, key="inspect"):
    if job.status is jobs.JobStatus.FAILED:
        st.page_link(
            CONVERT_PAGE,
            label="Back to Convert",
            icon=":material/upload_file:",
            query_params={"job": job.id},
        )
    st.stop()

show_report(job, key=K + "report")
st.divider()
c1, c2 = st.columns(2)
c1.page_link(
    CONVERT_PAGE,
    label="Convert this model with another preset",
    icon=":material/tune:",
    query_params={"job": job.id} if job.kind is jobs.JobKind.CONVERT else None,
)
if c2.button("Inspect another .tflite", key=K + "another", icon=":material/upload:"):
    st.query_params.clear()
    st.rerun()
