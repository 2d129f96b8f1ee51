"""Compare: which preset should I ship?

Pick a model (the one on the Convert page, a sample or an upload) and its data
→ run a sweep as a job → the recommendation in one sentence, the table (every
metric explained), the Pareto chart, the per-layer error with a "re-convert
keeping the worst layers in float" button, and a diff of two results. The URL
carries the job (``?job=<id>``) and a re-conversion (``&reconvert=<id>``);
opened from the sidebar it shows this session's current comparison. Checks,
per-layer errors and diffs submitted on their own (the HTTP API) show here too.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import StudioError
from core.options import PRESET_IDS, PRESETS, Preset
from core.server import jobs
from ui import compare_view as view
from ui import job_view
from ui.errors import show_error
from ui.format import human_bytes, md
from ui.samples import find_sample, load_samples
from ui.uploads import ModelRef, store_file, store_model

K = "compare."
RECONVERT = "reconvert"
MODEL_TYPES = ["zip", "gz", "tgz", "tar", "keras", "h5"]
DATA_TYPES = ["npz", "npy", "zip"]
SHOWN = (jobs.JobKind.SWEEP, jobs.JobKind.EVALUATE, jobs.JobKind.LAYERS, jobs.JobKind.DIFF)
CURRENT, SAMPLE, OWN = "The model on the Convert page", "A sample model", "My own model"
LAYER_WORDS = {
    "auto": "Where a preset loses accuracy",
    "always": "For every integer preset",
    "never": "Don't measure",
}


def _convert_model() -> ModelRef | None:
    m = ModelRef.from_state(st.session_state.get("convert.model"))
    return m if m is not None and not m.is_tflite else None


def _source() -> tuple[
    Path | None, str | None, Path | None, Path | None, dict[str, tuple[str, str]]
]:
    """The chosen model: (path, name, calibration path, evaluation path, stored files)."""
    current = _convert_model()
    samples = [s for s in load_samples() if s.kind != "tflite"]
    choices = ([CURRENT] if current else []) + ([SAMPLE] if samples else []) + [OWN]
    src = st.radio("Model", choices, horizontal=True, key=K + "source")
    stored: dict[str, tuple[str, str]] = {}
    if src == CURRENT and current is not None:
        st.caption(f":material/deployed_code: **{md(current.name)}** ({human_bytes(current.size)})")
        sample = find_sample(current.sample) if current.sample else None
        if current.calibration:
            stored["calibration"] = (current.calibration.sha, current.calibration.name)
        cal = sample.calibration_path if sample and not current.calibration else None
        return (
            jobs.artifact_path(current.sha),
            current.name,
            cal,
            (sample.eval_path if sample else None),
            stored,
        )
    if src == SAMPLE and samples:
        titles = [f"{s.title} ({s.file})" for s in samples]
        pick = st.selectbox("Sample", titles, key=K + "sample")
        sample = samples[titles.index(pick)]
        st.caption(sample.description)
        bits = [f"calibration `{p.name}`" for p in [sample.calibration_path] if p]
        bits += [f"evaluation `{p.name}`" for p in [sample.eval_path] if p]
        if bits:
            st.caption("Uses the sample's " + " and ".join(bits) + " unless you upload others.")
        return sample.path, sample.file, sample.calibration_path, sample.eval_path, stored
    upload = st.file_uploader(
        "SavedModel (zipped or .tar.gz) or Keras file (.keras, .h5)",
        type=MODEL_TYPES,
        key=K + "upload",
        help="The original model: every preset is converted from it.",
    )
    if upload is None:
        return None, None, None, None, stored
    ref = store_model(upload)
    if ref.is_tflite:
        st.warning(
            "A .tflite is already converted; Compare needs the original SavedModel or "
            "Keras file. Open the .tflite in Inspect.",
            icon=":material/warning:",
        )
        st.stop()
    return jobs.artifact_path(ref.sha), ref.name, None, None, stored


def _form() -> None:
    try:
        model_path, model_name, cal_path, eval_path, files = _source()
    except StudioError as e:
        show_error(e)
        st.stop()
    c1, c2 = st.columns(2)
    cal_up = c1.file_uploader(
        "Calibration data (for the int8 and 16x8 presets)",
        type=DATA_TYPES,
        key=K + "cal",
        help="A .npz with one array per input (keyed by input name), a .npy for one input, "
        "or a .zip of images. Without it the integer presets calibrate on random data.",
    )
    eval_up = c2.file_uploader(
        "Evaluation data (held-out samples)",
        type=DATA_TYPES,
        key=K + "eval",
        help="Same format as the calibration data; add a `labels` array to the .npz to get "
        "accuracy. Without it the calibration data is used, else random inputs.",
    )
    presets = st.multiselect(
        "Presets to compare",
        list(PRESET_IDS),
        default=list(PRESET_IDS),
        key=K + "presets",
        format_func=lambda p: f"{p} — {PRESETS[Preset(p)].title}",
    )
    with st.expander("Advanced options"):
        a1, a2, a3 = st.columns(3)
        threads = a1.select_slider(
            "Threads for the latency",
            options=[1, 2, 4, 8],
            value=1,
            key=K + "threads",
            help="The table shows the latency at this thread count.",
        )
        runs = a2.number_input("Timed runs per model", 10, 1000, 50, step=10, key=K + "runs")
        task = a3.selectbox(
            "Outputs are",
            ["auto", "classification", "regression"],
            key=K + "task",
            help="auto: a classifier when outputs are probabilities or the "
            "evaluation data has labels.",
        )
        b1, b2, b3 = st.columns(3)
        select_tf = b1.checkbox(
            "Allow Select TF ops",
            key=K + "select_tf_ops",
            help="For models with TensorFlow ops that have no TFLite "
            "builtin; such models cannot be timed on this server.",
        )
        # a sample is small and there to show every picture; an upload measures
        # the layers only where they explain a loss (the debugger is slow)
        layers = b2.selectbox(
            "Per-layer quantization error",
            list(LAYER_WORDS),
            index=1 if st.session_state.get(K + "source") == SAMPLE else 0,
            format_func=LAYER_WORDS.__getitem__,
            key=K + "layers",
            help="Which layers lose the most when quantized. Measuring it takes a while on "
            "large models.",
        )
        keep_worst = b3.number_input(
            "Also try int8 with the N worst layers in float",
            0,
            10,
            0,
            key=K + "keep_worst",
            help="Mixed precision: after measuring each layer's int8 error, convert once more "
            "(int8-float-io) with the worst N layers left in float. 0: don't.",
        )
        signature = st.text_input("Signature (empty: serving_default)", key=K + "signature")
    if not st.button(
        "Compare presets", type="primary", icon=":material/compare_arrows:", key=K + "go"
    ):
        job_view.show_recent(key=K + "recent", kinds=SHOWN)
        return
    if not presets:
        st.info("Pick at least one preset.", icon=":material/info:")
        st.stop()
    if model_path is None:
        st.info("Upload a model or pick a sample first.", icon=":material/info:")
        st.stop()
    try:
        with st.spinner("Storing the files"):
            for key, up, default in (
                ("calibration", cal_up, cal_path),
                ("eval", eval_up, eval_path),
            ):
                src = up if up is not None else default
                if src is not None:
                    f = store_file(src)
                    files[key] = (f.sha, f.name)
            job = view.submit_sweep(
                Path(model_path),
                str(model_name),
                files=files,
                params={
                    "presets": presets,
                    "options": {
                        "select_tf_ops": bool(select_tf),
                        "signature_key": signature.strip() or None,
                    },
                    "threads": [int(threads)],
                    "runs": int(runs),
                    "task": task,
                    "layer_errors": layers != "never",
                    "layers": layers,
                    "keep_worst": int(keep_worst) if layers != "never" else 0,
                },
            )
    except StudioError as e:
        show_error(e)
        st.stop()
    job_view.open_job(job.id)


def _reconvert(job: jobs.Job, report: dict) -> None:
    rid = st.query_params.get(RECONVERT)
    if not rid:
        return
    ej = job_view.load_job(str(rid), current=False)
    if ej is None:
        return
    st.subheader("Re-converted with layers kept in float")
    if not job_view.show_unfinished(ej, key=K + "reconvert", retry=False):
        view.show_reconvert_result(ej, report)


def _reconverted_row() -> list[dict]:
    rid = st.query_params.get(RECONVERT)
    if not rid:
        return []
    try:
        row = (jobs.get(str(rid)).result or {}).get("row")
    except StudioError:
        return []
    return [row] if row and row.get("artifact_sha") else []


def _sweep(job: jobs.Job) -> None:
    report = (job.result or {}).get("sweep")
    if not report:
        st.warning("This job has no comparison results.")
        return
    st.caption(
        f"Compared {len(report.get('rows') or [])} presets of **{md(job.model_name)}** "
        f"({human_bytes(job.input_size)})."
    )
    view.show_recommendation(report)
    st.subheader("Every preset")
    view.show_table(report, key=K + "rows")
    view.show_failures(report)
    view.show_pareto(report, key=K + "rows")
    view.show_downloads(job, report, key=K + "dl")
    st.subheader("Which layers lose the most when quantized")
    new = view.show_layers(job, report, key=K + "layers")
    if new:
        st.query_params[RECONVERT] = new
        st.rerun()
    _reconvert(job, report)
    st.subheader("What changed between two results")
    view.show_diff(report, key=K + "diff", extra=_reconverted_row())


def _one(job: jobs.Job) -> None:
    """A finished job of any kind Compare shows."""
    if job.kind is jobs.JobKind.SWEEP:
        _sweep(job)
    elif job.kind is jobs.JobKind.EVALUATE:
        view.show_evaluation(job)
    elif job.kind is jobs.JobKind.LAYERS:
        new = view.show_layers_job(job, key=K + "layers")
        if new:
            st.query_params[RECONVERT] = new
            st.rerun()
        _reconvert(job, {"rows": []})
    elif job.kind is jobs.JobKind.DIFF:
        p = job.params
        b = (p.get("files") or {}).get("b") or {}
        view.show_diff_result(
            job, str(p.get("name_a") or job.model_name), str(p.get("name_b") or b.get("name", "B"))
        )


st.title("Which preset should I ship?")
st.caption(
    "Convert one model with every preset, then see what each one costs: accuracy against "
    "the original on the same inputs, speed on this server's CPU, file size — and one "
    "recommendation in plain words."
)

job_id = job_view.job_id_from_url()
job = job_view.load_job(job_id) if job_id else None
if job is None and not job_id:  # from the sidebar: this session's current comparison
    job = job_view.current_job(SHOWN)
    if job is not None and job.id != st.session_state.get(K + "dismissed"):
        st.query_params["job"] = job.id
    else:
        job = None
if job is not None:
    job_view.route(job, job_view.COMPARE_PAGE)
if job is None:
    _form()
else:
    if job.kind is not jobs.JobKind.SWEEP:
        st.subheader(md(job_view.job_title(job)))
    if not job_view.show_unfinished(job, key="compare", retry=False):
        _one(job)
    if st.button("Start another comparison", key=K + "new", icon=":material/add:"):
        st.session_state[K + "dismissed"] = job.id
        st.query_params.clear()
        st.rerun()
