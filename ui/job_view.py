"""A job on a page: which page shows it, progress while it runs (in view), a
plain failure with its fix, the headline of a finished conversion, and this
person's recent jobs.

The page holds only the job id (in the URL, ``?job=<id>``, so the link works for
anyone); everything else is read from ``core.server.jobs`` on each run. The
session remembers its *current* job (the last one opened or submitted), so
Inspect and Compare opened from the sidebar show it. Progress is a fragment
that polls once a second, so the rest of the page stays responsive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from core.errors import JobError, StudioError
from core.options import PRESETS, Preset
from core.server import jobs
from ui import layout
from ui.errors import PHASE_WORDS, guard, show_error
from ui.format import ago, code, human_bytes, human_seconds, md
from ui.identity import current_user
from ui.uploads import ModelRef, resubmit, store_model, submit_inspection
from ui.words import DYNAMIC, cause_of, option_words, web_md

__all__ = [
    "JOB_PARAM",
    "CONVERT_PAGE",
    "INSPECT_PAGE",
    "COMPARE_PAGE",
    "job_id_from_url",
    "open_job",
    "load_job",
    "current_job",
    "page_of",
    "route",
    "preset_title",
    "show_progress",
    "show_failure",
    "show_cancelled",
    "show_unfinished",
    "show_conversion_headline",
    "show_warnings",
    "show_recent",
    "job_title",
    "STATUS_WORDS",
]

JOB_PARAM = "job"
CONVERT_PAGE = "pages/convert.py"
INSPECT_PAGE = "pages/inspect.py"
COMPARE_PAGE = "pages/compare.py"
_STEPS_KEY = "ui.job_steps"  # {job_id: [progress messages seen]}, this tab only
_CURRENT = "ui.current_job"  # the job this session opened or submitted last
_SCROLL = "ui.scroll_to_job"  # bring this job's progress into view on the next run
_HIDDEN_KINDS = (jobs.JobKind.SIGNATURE,)  # a form's helper, not a person's job
PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"
_OWN_PAGE_KINDS = ("optimize", "deploy")

STATUS_WORDS = {
    jobs.JobStatus.QUEUED: "⏳ queued",
    jobs.JobStatus.RUNNING: "⚙️ running",
    jobs.JobStatus.DONE: "✅ done",
    jobs.JobStatus.FAILED: "❌ failed",
    jobs.JobStatus.CANCELLED: "⏹️ cancelled",
}


def job_id_from_url() -> str | None:
    v = st.query_params.get(JOB_PARAM)
    return str(v) if v else None


def open_job(job_id: str) -> None:
    """Point this page's URL at a job (shareable), bring its progress into view
    and run the page again."""
    st.session_state[_CURRENT] = job_id
    st.session_state[_SCROLL] = job_id
    st.query_params[JOB_PARAM] = job_id
    st.rerun()


def load_job(job_id: str, *, current: bool = True) -> jobs.Job | None:
    """The job (with ``current``: now this session's current one), or a plain
    message when the link points at nothing."""
    try:
        job = jobs.get(job_id)
    except JobError:
        st.warning(
            f"There is no job {code(job_id[:40])} on this server. The link may be mistyped, "
            "or the job was removed after its retention period.",
            icon=":material/link_off:",
        )
        return None
    if current:
        st.session_state[_CURRENT] = job.id
    return job


def current_job(kinds: tuple[jobs.JobKind, ...]) -> jobs.Job | None:
    """This session's current job, if it is one of ``kinds``."""
    job_id = st.session_state.get(_CURRENT)
    if not job_id:
        return None
    try:
        job = jobs.get(str(job_id))
    except StudioError:
        return None
    return job if job.kind in kinds else None


def page_of(job: jobs.Job) -> tuple[str, dict[str, str]]:
    """(page, query) that shows this job: conversions on Convert or Inspect,
    inspections on Inspect, comparisons, checks, per-layer errors and diffs on
    Compare (a re-conversion on its sweep's page)."""
    own = f"pages/{job.kind.value}.py"  # a later kind's own page (optimize, deploy)
    if job.kind.value in _OWN_PAGE_KINDS and (PAGES_DIR / f"{job.kind.value}.py").is_file():
        return own, {JOB_PARAM: job.id}
    if job.kind is jobs.JobKind.INSPECT:
        return INSPECT_PAGE, {JOB_PARAM: job.id}
    if job.kind in (jobs.JobKind.CONVERT, jobs.JobKind.SIGNATURE):
        return CONVERT_PAGE, {JOB_PARAM: job.id}
    parent = job.params.get("parent")
    if job.kind is jobs.JobKind.EVALUATE and parent:
        return COMPARE_PAGE, {JOB_PARAM: str(parent), "reconvert": job.id}
    return COMPARE_PAGE, {JOB_PARAM: job.id}


def route(job: jobs.Job, here: str, also: tuple[jobs.JobKind, ...] = ()) -> None:
    """Open the job on its own page unless ``here`` shows it (or shows ``also``)."""
    page, query = page_of(job)
    if job.kind in also:
        return
    if page != here:
        st.switch_page(page, query_params=query)
    if query.get(JOB_PARAM) != job.id:  # shown as part of another job (its sweep)
        st.query_params.from_dict(query)
        st.rerun()


def preset_title(preset: str) -> str:
    try:
        return PRESETS[Preset(preset)].title
    except ValueError:
        return preset or "no preset"


def job_title(job: jobs.Job) -> str:
    """The job in a few words: ``digits.zip → Dynamic range (int8 weights), Select TF ops``."""
    name = job.model_name
    if job.kind is jobs.JobKind.CONVERT:
        extra = option_words(job.params.get("options"))
        return f"{name} → {preset_title(job.preset)}" + (f", {', '.join(extra)}" if extra else "")
    if job.kind is jobs.JobKind.INSPECT:
        return f"Inspect {name}"
    if job.kind is jobs.JobKind.SWEEP:
        return f"Compare presets of {name}"
    if job.kind is jobs.JobKind.EVALUATE:
        given = (job.params.get("files") or {}).get("tflite")
        what = given["name"] if given else preset_title(job.preset)
        return f"Check {what} against {name}"
    if job.kind is jobs.JobKind.LAYERS:
        return f"Per-layer error of {name} ({job.preset or 'int8'})"
    if job.kind is jobs.JobKind.DIFF:
        b = (job.params.get("files") or {}).get("b") or {}
        return f"Diff {name} → {b.get('name', 'another model')}"
    if job.kind is jobs.JobKind.SIGNATURE:
        return f"Read the inputs of {name}"
    return f"{job.kind.value.capitalize()} {name}"


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
    """Live progress of a queued or running job; reruns the page when it ends.
    Just after a submit the page scrolls to it."""
    scroll = st.session_state.get(_SCROLL) == job_id
    if scroll:
        del st.session_state[_SCROLL]
    layout.progress_anchor(job_id, scroll=scroll)

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


def show_failure(
    job: jobs.Job, *, key: str, fix_shapes: Callable[[str], None] | None = None
) -> None:
    """What went wrong, in words, and one click for the fix when there is one.
    ``fix_shapes(key)`` draws the page's "Fix the input shapes" button."""
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
    elif fix == "input_shape" and fix_shapes is not None:
        fix_shapes(f"{key}.fix.shapes")
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


def show_unfinished(
    job: jobs.Job,
    *,
    key: str,
    retry: bool = True,
    fix_shapes: Callable[[str], None] | None = None,
) -> bool:
    """Progress, failure or cancellation of a job that has no result to show;
    False when it is done (the page shows its result)."""
    if not job.status.finished:
        show_progress(job.id, key=f"{key}.progress")
    elif job.status is jobs.JobStatus.FAILED:
        show_failure(job, key=f"{key}.failure", fix_shapes=fix_shapes)
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
    with st.container(horizontal=True, gap="medium"):
        if in_size:
            st.metric(
                "Uploaded model",
                human_bytes(in_size),
                help="Size of what was uploaded (the archive or Keras file).",
                width=170,
            )
        if out_size:
            delta = f"{(out_size - in_size) / in_size:+.0%}" if in_size else None
            st.metric(
                "TFLite file",
                human_bytes(out_size),
                delta=delta,
                delta_color="inverse",
                help="Size of the converted .tflite file.",
                width=170,
            )
        if in_size and out_size:
            ratio = in_size / out_size
            st.metric(
                "Smaller by" if ratio >= 1 else "Larger by",
                f"{ratio:.1f}×" if ratio >= 1 else f"{1 / ratio:.1f}×",
                help="Uploaded size divided by the .tflite size.",
                width=150,
            )
        if conv.get("seconds") is not None:
            st.metric(
                "Conversion time",
                human_seconds(conv.get("seconds")),
                help="Loading and converting in the worker (queue time not included).",
                width=170,
            )


def show_warnings(
    warnings: list[str], *, fix_shapes: Callable[[str], None] | None = None, key: str
) -> None:
    """One warning per cause, in the app's words; the dynamic-shapes one with
    the "Fix the input shapes" button when the page can apply it."""
    by_cause: dict[str, list[str]] = {}
    for w in warnings:
        by_cause.setdefault(cause_of(w), []).append(w)
    for cause, texts in by_cause.items():
        groups = [texts] if cause != "other" else [[t] for t in texts]
        for group in groups:
            st.warning("  \n".join(web_md(t) for t in group), icon=":material/warning:")
            if cause == DYNAMIC and fix_shapes is not None:
                fix_shapes(f"{key}.fix")


def show_recent(*, key: str, kinds: tuple[jobs.JobKind, ...] | None = None, n: int = 5) -> None:
    """This person's last ``n`` jobs, each a link to the page that shows it."""
    user = current_user()
    listed = [
        j
        for j in jobs.store().list(limit=4 * n + 10, user=user)
        if j.kind not in _HIDDEN_KINDS and (kinds is None or j.kind in kinds)
    ][:n]
    if not listed:
        return
    st.markdown("**Your recent jobs**")
    for j in listed:
        page, query = page_of(j)
        st.page_link(
            page,
            label=f"{md(job_title(j))} · {STATUS_WORDS[j.status]} · {ago(j.created_at)}",
            query_params=query,
            icon=":material/history:",
        )


def tflite_uploader(key: str) -> Any:
    """A ``.tflite`` uploader, cleared after each upload (its key's generation)."""
    from core.server.settings import load_settings

    return st.file_uploader(
        "A .tflite file",
        type=["tflite"],
        key=f"{key}upload.{st.session_state.get(key + 'gen', 0)}",
        max_upload_size=load_settings().max_upload_mb,
    )


def inspect_upload(
    uploaded: Any, key: str, *, not_tflite: Callable[[ModelRef], None], failed: str
) -> None:
    """Store an uploaded ``.tflite``, queue its inspection and open that job;
    anything else goes to ``not_tflite`` (which stops the page)."""
    try:
        with st.spinner(f"Storing {uploaded.name}…"):
            model = store_model(uploaded, uploaded.name)
        if not model.is_tflite:
            not_tflite(model)
            st.stop()
        new = submit_inspection(model, user=current_user())
    except StudioError as e:
        show_error(e, title=f"{uploaded.name} {failed}.")
        st.stop()
    st.session_state[key + "gen"] = st.session_state.get(key + "gen", 0) + 1
    open_job(new.id)
