"""Convert: pick a model (upload or sample), pick a preset, convert, download.

inputs → guard → call core → render. The URL carries the job (``?job=<id>``);
session state holds the chosen model's ids (``convert.model``), never its bytes.
A job's progress (or result) comes first; the form to convert again follows,
its Convert button disabled while the same conversion is already running.
"""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.options import PRESETS, ConversionOptions, Preset, parse_input_shape
from core.server import jobs
from core.server.settings import load_settings
from ui import job_view
from ui import signature as sig_view
from ui.convert_view import (
    ADVANCED,
    SHAPES,
    K,
    fix_shapes_button,
    show_result,
    show_tflite_choices,
    take_prefill,
)
from ui.errors import show_error
from ui.format import human_bytes, md
from ui.identity import current_user
from ui.samples import load_samples
from ui.uploads import (
    FileRef,
    ModelRef,
    identical_conversion,
    model_from_job,
    store_file,
    store_model,
    submit_conversion,
    submit_inspection,
)

MODEL_TYPES = ["zip", "gz", "tgz", "tar", "keras", "h5", "tflite"]


def _model() -> ModelRef | None:
    return ModelRef.from_state(st.session_state.get(K + "model"))


def _set_model(m: ModelRef | None) -> None:
    st.session_state[K + "model"] = m.to_state() if m else None
    # a fresh uploader widget: Streamlit drops its in-memory copy of the old file
    st.session_state[K + "uploader_gen"] = st.session_state.get(K + "uploader_gen", 0) + 1
    st.session_state.pop(K + "calibration", None)
    st.session_state.pop(K + "calibration_id", None)  # a file still in the widget counts again


def _fix_from_signature(key: str) -> None:
    """ "Fix the input shapes" from the model's own signature (a failed conversion)."""
    model = _model()
    chosen = st.session_state.get(K + "signature") or None
    shapes = sig_view.suggested_shapes(sig_view.signature_of(model), chosen)
    if shapes:
        fix_shapes_button(key, shapes)
    elif sig_view.pending(model):
        st.caption("Reading the model's inputs to suggest static shapes…")


# ---------------------------------------------------------------- the job in the URL

st.title("Convert a model to TensorFlow Lite")

job_id = job_view.job_id_from_url()
job = job_view.load_job(job_id) if job_id else None
if job is not None:
    job_view.route(job, job_view.CONVERT_PAGE)
    current = _model()
    if st.session_state.get(K + "seen_job") != job.id:  # a new link: its model is the one
        st.session_state[K + "seen_job"] = job.id
        if current is None or current.sha != job.input_sha:
            _set_model(model_from_job(job))
    if job.kind is jobs.JobKind.SIGNATURE:
        st.query_params.clear()  # not a conversion: only its model is kept
        st.rerun()
    if not job_view.show_unfinished(job, key="convert", fix_shapes=_fix_from_signature):
        show_result(job)
    st.divider()
    st.subheader("Convert again with other settings")
else:
    st.caption(
        "Upload a TensorFlow model, or try a sample, then choose how much to shrink it. "
        "The conversion runs on the server; you get a `.tflite` file and a report."
    )

# ---------------------------------------------------------------- 1. the model

settings = load_settings()
model = _model()
st.markdown("#### 1. Model")
if model is None:
    up_tab, sample_tab = st.tabs(
        [":material/upload: Upload a model", ":material/science: Try a sample"]
    )
    with up_tab:
        uploaded = st.file_uploader(
            "SavedModel as .zip or .tar.gz, a .keras or .h5 file, or a .tflite to inspect",
            type=MODEL_TYPES,
            key=f"{K}upload.{st.session_state.get(K + 'uploader_gen', 0)}",
            max_upload_size=settings.max_upload_mb,
            help="Zip the SavedModel folder itself (see the Guide). Files stay on this server.",
        )
        if uploaded is not None:
            try:
                with st.spinner(f"Storing {uploaded.name}…"):
                    stored = store_model(uploaded, uploaded.name)
                    _set_model(stored)
                    if stored.is_tflite:  # nothing to convert: straight to inspection
                        j = submit_inspection(stored, user=current_user())
                        st.switch_page(job_view.INSPECT_PAGE, query_params={"job": j.id})
            except StudioError as e:
                show_error(e, title=f"{uploaded.name} cannot be used.")
                st.stop()
            st.rerun()
    with sample_tab:
        samples = load_samples()
        if not samples:
            st.info("No sample models are installed on this server.")
        for i, s in enumerate(samples):
            with st.container(border=True):
                c1, c2 = st.columns([4, 1], vertical_alignment="center")
                c1.markdown(f"**{s.title}**  \n{s.description}")
                c1.caption(
                    f"{s.file} · {s.kind_label} · {human_bytes(s.size_bytes)}"
                    + (" · calibration data included" if s.calibration_path else "")
                )
                if c2.button(
                    "Use this sample",
                    key=f"{K}sample.{s.file}",
                    type="primary" if i == 0 else "secondary",
                ):
                    cal = store_file(s.calibration_path) if s.calibration_path else None
                    _set_model(
                        store_model(
                            s.path,
                            s.file,
                            calibration=cal,
                            signature_keys=s.signature_keys,
                            sample=s.file,
                        )
                    )
                    st.rerun()
    job_view.show_recent(key=K + "recent")
    st.stop()

c1, c2 = st.columns([4, 1], vertical_alignment="center")
c1.markdown(
    f":material/deployed_code: **{md(model.name)}** · {model.kind_words} · "
    f"{human_bytes(model.size)}"
    + (f" · calibration: {md(model.calibration.name)}" if model.calibration else "")
)
if c2.button("Change model", key=K + "change", icon=":material/swap_horiz:"):
    _set_model(None)
    st.session_state.pop(K + "seen_job", None)
    st.query_params.clear()
    st.rerun()

if model.is_tflite:
    if show_tflite_choices(model):
        try:
            j = submit_inspection(model, user=current_user())
        except StudioError as e:
            show_error(e)
            st.stop()
        st.switch_page(job_view.INSPECT_PAGE, query_params={"job": j.id})
    st.stop()

signature = sig_view.signature_of(model)
if signature is None and sig_view.pending(model):
    sig_view.rerun_when_read(model)

# ---------------------------------------------------------------- 2. the preset

st.markdown("#### 2. How to optimize")
presets = list(PRESETS)
left, right = st.columns([3, 2], gap="large")
with left:
    preset = st.radio(
        "Preset",
        presets,
        format_func=lambda p: PRESETS[p].title,
        captions=[f"{PRESETS[p].size_effect}" for p in presets],
        index=presets.index(Preset.DYNAMIC),
        key=K + "preset",
        label_visibility="collapsed",
    )
info = PRESETS[preset]
with right, st.container(border=True):
    st.markdown(f"**{info.title}** (`{preset.value}`)")
    st.write(info.summary)
    st.markdown(
        f":material/straighten: **Size:** {info.size_effect}  \n"
        f":material/devices: **Suits:** {info.devices}"
    )

# A calibration file uploaded under Advanced options (the widget's value is in
# session state before the widget is drawn): stored once per uploaded file.
_cal_up = st.session_state.get(K + "calibration_upload")
if _cal_up is not None and st.session_state.get(K + "calibration_id") != _cal_up.file_id:
    st.session_state[K + "calibration"] = store_file(_cal_up, _cal_up.name).__dict__
    st.session_state[K + "calibration_id"] = _cal_up.file_id

calibration: FileRef | None = None
if info.needs_calibration:
    cal_state = st.session_state.get(K + "calibration")
    calibration = FileRef(**cal_state) if cal_state else model.calibration
    if calibration is not None:
        st.caption(
            f":material/dataset: Calibration data: **{md(calibration.name)}** "
            f"({human_bytes(calibration.size)}). Change it under Advanced options."
        )
    else:
        st.warning(
            "This preset needs calibration data: a few hundred typical inputs. Without it, "
            "random numbers are used and the accuracy of the result may collapse. Add a "
            "file under **Advanced options**.",
            icon=":material/warning:",
        )

# ---------------------------------------------------------------- advanced options

prefilled = take_prefill()
with st.expander("Advanced options", icon=":material/tune:", key=ADVANCED, on_change="rerun"):
    a1, a2 = st.columns(2, gap="large")
    with a1:
        select_tf_ops = st.toggle(
            "Select TF ops",
            key=K + "select_tf_ops",
            help="Lets TensorFlow operators that TFLite lacks run with TensorFlow's own "
            "kernels (Flex delegate). Costs several MB in the app on the device.",
        )
        allow_custom_ops = st.toggle(
            "Allow custom ops",
            key=K + "allow_custom_ops",
            help="Keeps unknown operators as custom ops; you must implement them in the app.",
        )
        sig_keys = sig_view.keys_of(signature) or list(model.signature_keys)
        if len(sig_keys) > 1:
            sig_choice = st.selectbox(
                "Signature",
                ["(automatic)", *sig_keys],
                key=K + "signature",
                help="Which entry point of the model to convert. Automatic picks "
                "serving_default, or the only one.",
            )
            signature_key = None if sig_choice == "(automatic)" else sig_choice
        else:
            typed = st.text_input(
                "Signature",
                key=K + "signature_text",
                placeholder=sig_keys[0] if sig_keys else "serving_default",
                help="Which entry point of the model to convert; leave empty for the default.",
            )
            signature_key = typed.strip() or None
        inputs = sig_view.inputs_of(signature, signature_key)
        shapes_text = st.text_area(
            "Input shapes",
            key=SHAPES,
            height=80,
            placeholder=sig_view.placeholder(signature, signature_key),
            help="Fix dynamic dimensions, one input per line as NAME=D1,D2,... "
            "Edge TPU, GPU and microcontrollers need fixed shapes."
            + (
                " This model's inputs (-1 = dynamic): "
                + "; ".join(f"{i['name']} {i['shape']}" for i in inputs)
                if inputs
                else ""
            ),
        )
        if prefilled:
            st.caption(":material/check: Static shapes filled in; press **Convert** below.")
        elif not shapes_text.strip():
            fix_shapes_button(
                K + "fill_shapes",
                sig_view.suggested_shapes(signature, signature_key),
                label="Fill in static shapes",
            )
    with a2:
        st.file_uploader(
            "Calibration data",
            type=["npz", "npy", "zip"],
            key=K + "calibration_upload",
            help=".npz with one array per input (named like the input), .npy for one input, "
            "or a .zip of images. Used by the presets that need calibration.",
        )
        samples_n = st.number_input(
            "Calibration samples",
            1,
            10_000,
            100,
            step=50,
            key=K + "calibration_samples",
            help="How many inputs to calibrate on; 100–500 is typical.",
        )
        r1, r2 = st.columns(2)
        lo = r1.number_input(
            "Image range low",
            value=0.0,
            key=K + "image_lo",
            help="Images are scaled to this range, e.g. 0–1, −1–1 or 0–255.",
        )
        hi = r2.number_input("Image range high", value=1.0, key=K + "image_hi")

# ---------------------------------------------------------------- 3. convert

options: ConversionOptions | None = None
options_error: StudioError | None = None
try:
    options = ConversionOptions(
        preset=preset,
        select_tf_ops=select_tf_ops,
        allow_custom_ops=allow_custom_ops,
        signature_key=signature_key,
        input_shapes=tuple(
            parse_input_shape(line) for line in shapes_text.splitlines() if line.strip()
        ),
        calibration_samples=int(samples_n),
        image_range=(float(lo), float(hi)),
    )
except StudioError as e:
    options_error = e
user = current_user()
same = identical_conversion(model, options, user=user, calibration=calibration) if options else None
clicked = st.button(
    "Converting…" if same else "Convert",
    type="primary",
    key=K + "go",
    icon=":material/progress_activity:" if same else ":material/bolt:",
    disabled=same is not None,
    help="This model is already being converted with these settings." if same else None,
)
if same is not None:
    st.caption(
        "This model is already being converted with exactly these settings"
        + (" (its progress is at the top of the page)." if same.id == job_id else ".")
        + " Change a setting to convert it another way."
    )
    if same.id != job_id:
        st.page_link(
            job_view.CONVERT_PAGE,
            label="Follow that conversion",
            icon=":material/visibility:",
            query_params={"job": same.id},
        )
if clicked:
    if options_error is not None or options is None:
        show_error(options_error or StudioError("The options cannot be read."))
        st.stop()
    try:
        new_job = submit_conversion(model, options, user=user, calibration=calibration)
    except StudioError as e:
        show_error(e)
        st.stop()
    job_view.open_job(new_job.id)
