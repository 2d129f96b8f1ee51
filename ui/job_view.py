"""A job on a page: progress while it runs, a plain failure with its fix, the
headline of a finished conversion.

The page holds only the job id (in the URL, ``?job=<id>``, so the link works for
anyone); everything else is read from ``core.server.jobs`` on each run. Progress is a
fragment that polls once a second, so the rest of the page stays responsive.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from core.errors import JobError, StudioError
from core.options import PRESETS, Preset
from core.server import jobs
from ui.errors import PHASE_WORDS, guard, show_error
from ui.format import code, human_bytes, human_seconds, md
from ui.identity import current_user
from ui.uploads import resubmit

__all__ = [
    "JOB_PARAM",
    "job_id_from_url",
    "open_job",
    "load_job",
    "preset_title",
    "show_progress",
    "show_failure",
    "show_cancelled",
    "show_conversion_headline",
    "job_title",
]

JOB_PARAM = "job"
_STEPS_KEY = "ui.job_steps"  # {job_id: [progress messages seen]}, this tab only


def job_id_from_url() -> str | None:
    v = st.query_params.get(JOB_PARAM)
    return str(v) if v else None


def open_job(job_id: str) -> None:
    """Point this page's URL at a job (shareable) and run the page again."""
    st.query_params[JOB_PARAM] = job_id
    st.rerun()


def load_job(job_id: str) -> jobs.Job | None:
    """The job, or a plain message when the link points at nothing."""
    try:
        return jobs.get(job_id)
    except JobError:
        st.warning(
            f"There is no job `{job_id[:40]}` on this server. The link may be mistyped, "
            "or the job was removed after its retention period.",
            icon=":material/link_off:",
        )
        return None


def preset_title(preset: str) -> str:
    try:
        return PRESETS[Preset(preset)].title
    except ValueError:
        return preset or "–"


def job_title(job: jobs.Job) -> str:
    if job.kind is jobs.JobKind.CONVERT:
        return f"{job.model_name} → {preset_title(job.preset)}"
    if job.kind is jobs.JobKind.INSPECT:
        return f"Inspect {job.model_name}"
    return f"{job.kind.value.title()} {job.model_name}"


def _queue_ahead(job: jobs.Job) -> int:
    return max((jobs.store().queue_position(job) or 1) - 1, 0)


def _steps(job: jobs.Job) -> list[str]:
    seen: dict[str, list[str]] = st.session_state.setdefault(_STEPS_KEY, {})
    steps = seen.setdefault(job.id, [])
    msg = (job.progress or "").strip()
    if msg and (not steps or steps[-1] != msg):
        steps.append(msg)
    del steps[:-12]
    return steps


def show_progress(job_id: str, *, key: str, every: float = 1.0) -> None:
    """Live progress of a queued or running job; reruns the page when it ends."""

    @st.fragment(run_every=every)
    @guard
    def _poll() -> None:
        job = jobs.get(job_id)
        if job.status.finished:
            st.rerun(scope="app")
        queued = job.status is jobs.JobStatus.QUEUED
        label = ("Waiting in the queue: " if queued else "Working on ") + md(job_title(job))
        # not a `with` block: leaving one marks the status "complete"
        box = st.status(label, state="running", expanded=True)
        if queued:
            ahead = _queue_ahead(job)
            box.markdown(
                f"{ahead} job{'s' if ahead != 1 else ''} ahead of this one."
                if ahead
                else "Starting as soon as a worker is free."
            )
        else:
            steps = _steps(job)
            for s in steps[:-1]:
                box.markdown(f":material/check_circle: {md(s)}")
            if steps:
                box.markdown(f":material/progress_activity: **{md(steps[-1])}…**")
            if job.started_at:
                elapsed = time.time() - job.started_at
                box.caption(
                    "Just started." if elapsed < 1 else f"Running for {human_seconds(elapsed)}."
                )
        box.caption(
            "You can close this tab: the job keeps running, and this page's link "
            "brings you back to it."
        )
        if st.button("Cancel this job", key=f"{key}.cancel.{job_id}", icon=":material/cancel:"):
            jobs.cancel(job_id)
            st.rerun(scope="app")

    _poll()


def _retry(job: jobs.Job, label: str, key: str, *, primary: bool = True, **changes: Any) -> None:
    if st.button(label, key=key, type="primary" if primary else "secondary"):
        try:
            new = resubmit(job, user=current_user(), **changes)
        except StudioError as e:
            show_error(e)
            return
        open_job(new.id)


def show_failure(job: jobs.Job, *, key: str) -> None:
    """What went wrong, in words, and one click for the fix when there is one."""
    err = job.error_obj or StudioError(
        "The job failed without a message.", "Try again; if it repeats, tell the server's admin."
    )
    phase = PHASE_WORDS.get(err.phase.value, err.phase.value)
    show_error(err, title=f"{job_title(job)} failed while {phase}.")
    details = err.details or {}
    fix = details.get("fix")
    options = dict(job.params.get("options") or {})
    if job.kind is not jobs.JobKind.CONVERT:
        return
    if fix == "select_tf_ops":
        ops = details.get("select_tf_ops") or []
        if ops:
            st.markdown(
                "Operators TFLite has no built-in version of: " + ", ".join(code(o) for o in ops)
            )
        _retry(job, "Retry with Select TF ops", f"{key}.fix.select", select_tf_ops=True)
        st.caption(
            "The converted model will then need the Flex delegate on the device "
            "(several MB more in the app). See the Guide."
        )
    elif fix == "allow_custom_ops":
        ops = details.get("custom_ops") or []
        if ops:
            st.markdown(
                "Operators with no TFLite or TensorFlow kernel: " + ", ".join(code(o) for o in ops)
            )
        _retry(job, "Retry allowing custom ops", f"{key}.fix.custom", allow_custom_ops=True)
        st.caption("You will then have to implement and register these ops in your app.")
    keys = details.get("signature_keys") or []
    if keys:
        c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
        sig = c1.selectbox(
            "Choose a signature",
            keys,
            key=f"{key}.fix.sig_choice",
            help="A signature is one entry point of the model.",
        )
        with c2:
            _retry(job, "Convert this signature", f"{key}.fix.sig", signature_key=sig)
    if err.phase.value == "quantize" and options.get("preset") == Preset.INT8.value:
        _retry(
            job,
            "Retry with int8-float-io (float fallback)",
            f"{key}.fix.fallback",
            primary=not fix,
            preset=Preset.INT8_FLOAT_IO.value,
        )
    if err.phase.value == "calibrate" and job.params.get("files", {}).get("calibration"):
        st.caption("Check the calibration file under Advanced options on the Convert page.")


def show_cancelled(job: jobs.Job, *, key: str, retry: bool = True) -> None:
    st.info(f"{md(job_title(job))} was cancelled.", icon=":material/cancel:")
    if retry:
        _retry(job, "Run it again", f"{key}.again", primary=False)


def show_unfinished(job: jobs.Job, *, key: str, retry: bool = True) -> bool:
    """Progress, failure or cancellation of a job that has no result to show;
    False when it is done (the page shows its result)."""
    if not job.status.finished:
        show_progress(job.id, key=f"{key}.progress")
    elif job.status is jobs.JobStatus.FAILED:
        show_failure(job, key=f"{key}.failure")
    elif job.status is jobs.JobStatus.CANCELLED:
        show_cancelled(job, key=f"{key}.cancelled", retry=retry)
    else:
        return False
    return True


def show_conversion_headline(job: jobs.Job) -> None:
    """Size before / after, ratio and time: the first thing to see."""
    result = job.result or {}
    conv = result.get("conversion") or {}
    out_size = conv.get("output_size") or result.get("output_size")
    in_size = conv.get("input_size") or job.input_size
    c = st.columns(4)
    c[0].metric(
        "Uploaded model",
        human_bytes(in_size),
        help="Size of what was uploaded (the archive or Keras file).",
    )
    delta = None
    if in_size and out_size:
        delta = f"{(out_size - in_size) / in_size:+.0%}"
    c[1].metric(
        "TFLite file",
        human_bytes(out_size),
        delta=delta,
        delta_color="inverse",
        help="Size of the converted .tflite file.",
    )
    if in_size and out_size:
        ratio = in_size / out_size
        c[2].metric(
            "Smaller by" if ratio >= 1 else "Larger by",
            f"{ratio:.1f}×" if ratio >= 1 else f"{1 / ratio:.1f}×",
            help="Uploaded size divided by the .tflite size.",
        )
    else:
        c[2].metric("Smaller by", "–")
    c[3].metric(
        "Conversion time",
        human_seconds(conv.get("seconds")),
        help="Loading and converting in the worker (queue time not included).",
    )
    for w in conv.get("warnings") or []:
        st.warning(md(w), icon=":material/warning:")
