"""Optimize and deploy: a ``.tflite`` (uploaded, or the result of a job in
``?job=<id>``) quantized with LiteRT's quantizer (recipe cards, or a small
table of scopes), the result with its validation chart, the size drop, the
downloads, a diff against the input, and the deploy kit.

inputs → guard → submit a job → render. Session state holds ids only."""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.server import jobs
from core.server.optimize_jobs import optimize_params, submit_optimize, tflite_of
from core.tasks.optimize import CUSTOM, RecipeChoice
from core.tasks.recipes import (
    BLOCK_SIZES,
    PRECISIONS,
    QUANTIZER_OPS,
    RECIPES,
    Recipe,
    entry_for,
    parse_recipe_json,
)
from ui import job_view
from ui.deploy_view import show_deploy, show_kit
from ui.errors import show_error
from ui.format import human_bytes, md
from ui.identity import current_user
from ui.optimize_view import show_optimize_result, show_optimize_sweep
from ui.uploads import FileRef, ModelRef, store_file

K = "optimize."
DIFF_PARAM = "diff"

st.title("Optimize and deploy a TFLite model")
job_id = job_view.job_id_from_url()
job = job_view.load_job(job_id) if job_id else None

# ---------------------------------------------------------------- no job: upload a .tflite

if job is None:
    st.caption(
        "Upload a float `.tflite` to make it smaller with LiteRT's quantizer, check what that "
        "cost, and get code to run it on Android, iOS, C++, Python or a microcontroller."
    )
    uploaded = job_view.tflite_uploader(K)
    if uploaded is None:
        st.stop()

    def _not_tflite(model: ModelRef) -> None:
        st.warning(f"{md(model.name)} is a {model.kind_words}: convert it first.")
        st.page_link("pages/convert.py", label="Go to Convert", icon=":material/upload_file:")

    job_view.inspect_upload(uploaded, K, not_tflite=_not_tflite, failed="cannot be used")

assert job is not None
if job.kind is jobs.JobKind.DEPLOY:
    if not job_view.show_unfinished(job, key="optimize.kit", retry=False):
        show_kit(job, key=K + "kit")
    st.stop()
if job_view.show_unfinished(job, key="optimize"):
    st.stop()


def _diff(a: tuple[str, int, str], b: tuple[str, int, str]) -> None:
    """What changed between the input and the optimized file (a DIFF job)."""
    diff_id = st.query_params.get(DIFF_PARAM)
    diff = job_view.load_job(str(diff_id)) if diff_id else None
    if diff is None:
        if st.button("Compare with the input (ops and tensors that changed)", key=K + "diff"):
            new = jobs.submit(
                jobs.JobKind.DIFF,
                jobs.ArtifactRef(*a),
                model_name=a[2],
                params={"name_a": a[2], "name_b": b[2]},
                user=current_user(),
                extra_files={"b": jobs.ArtifactRef(*b)},
            )
            st.query_params[DIFF_PARAM] = new.id
            st.rerun()
        return
    if not job_view.show_unfinished(diff, key="optimize.diff", retry=False):
        st.code(str((diff.result or {}).get("text") or ""), language="text")


# ---------------------------------------------------------------- an optimize job's result

source = job
if job.kind is jobs.JobKind.OPTIMIZE:
    if (job.result or {}).get("sweep"):
        st.subheader(f"Every recipe on {md(job.model_name)}")
        show_optimize_sweep(job, key=K + "sweep")
    else:
        show_optimize_result(job, key=K + "result")
        with st.expander("Diff against the input", icon=":material/difference:"):
            out = tflite_of(job)
            if out is not None:
                _diff((job.input_sha, job.input_size, job.model_name), out)
        st.subheader("Deploy")
        show_deploy(job, key=K + "deploy")
    st.divider()
    st.subheader("Optimize the input again")
    found: tuple[str, int, str] | None = (job.input_sha, job.input_size, job.model_name)
else:
    found = tflite_of(job)
    if found is None:
        st.info("This job has no .tflite; convert a model first.", icon=":material/info:")
        st.stop()
    st.markdown(
        f":material/deployed_code: **{md(found[2])}** · TFLite model · {human_bytes(found[1])}"
    )

assert found is not None

# ---------------------------------------------------------------- the recipe cards


def _card(recipe: str, title: str, body: str, foot: str, col: object) -> None:
    chosen = st.session_state.get(K + "recipe", Recipe.WEIGHT_ONLY_INT4.value) == recipe
    with col.container(border=True):  # type: ignore[attr-defined]
        st.markdown(f"**{title}**" + (" :green-badge[chosen]" if chosen else ""))
        st.caption(body)
        st.markdown(foot)
        if st.button("Choose", key=f"{K}card.{recipe}", disabled=chosen, width="stretch"):
            st.session_state[K + "recipe"] = recipe
            st.rerun()


st.markdown("#### 1. Recipe")
cards = [
    (
        r.value,
        i.title,
        i.summary,
        f":material/straighten: {i.size_effect}  \n"
        f":material/devices: {i.suits}"
        + ("  \n:material/dataset: needs calibration data" if i.needs_calibration else ""),
    )
    for r, i in RECIPES.items()
]
cards.append(
    (
        CUSTOM,
        "Custom recipe",
        "Choose the precision per layer: a regex over layer names, an "
        "op type, a precision. Later rows win.",
        ":material/tune: e.g. attention int8, feed-forward int4, the rest float",
    )
)
grid = st.columns(4)
for k, card in enumerate(cards):
    _card(*card, grid[k % 4])
recipe_id = st.session_state.get(K + "recipe", Recipe.WEIGHT_ONLY_INT4.value)

choice: RecipeChoice | None = None
if recipe_id == CUSTOM:
    st.caption(
        "Each row selects the ops whose output names match the regex (Python syntax, searched "
        "anywhere in the name) and whose type is the operation (* = any)."
    )
    rows = st.data_editor(
        [
            {"scope (regex)": ".*attention.*", "operation": "*", "precision": "int8"},
            {"scope (regex)": ".*", "operation": "FULLY_CONNECTED", "precision": "int4"},
        ],
        num_rows="dynamic",
        key=K + "custom",
        column_config={
            "operation": st.column_config.SelectboxColumn(options=list(QUANTIZER_OPS)),
            "precision": st.column_config.SelectboxColumn(options=list(PRECISIONS)),
        },
        width="stretch",
    )
    recipe_file = st.file_uploader(
        "…or a recipe JSON (the quantizer's format)", type=["json"], key=K + "recipe_file"
    )
    try:
        if recipe_file is not None:
            entries = parse_recipe_json(recipe_file.getvalue())
            name = recipe_file.name
        else:
            entries = [
                entry_for(
                    str(r.get("scope (regex)") or ""),
                    str(r.get("operation") or "*"),
                    str(r.get("precision") or "int8"),
                )
                for r in rows
                if str(r.get("scope (regex)") or "").strip()
            ]
            entries = parse_recipe_json(entries) if entries else []
            name = "table"
        choice = RecipeChoice(CUSTOM, entries=tuple(entries), name=name) if entries else None
    except StudioError as e:
        show_error(e, title="The custom recipe cannot be used.")
else:
    block = 0
    if RECIPES[Recipe(recipe_id)].block_sizes:
        block = st.selectbox(
            "Scales",
            list(BLOCK_SIZES),
            format_func=lambda b: "channel-wise" if not b else f"block-wise, {b} weights per scale",
            key=K + "block",
            help="Block-wise applies to fully connected and embedding layers; convolutions "
            "keep channel-wise scales.",
        )
    choice = RecipeChoice(recipe_id, block_size=int(block))

# ---------------------------------------------------------------- data, then go

st.markdown("#### 2. Data (optional)")
d1, d2 = st.columns(2)
cal_up = d1.file_uploader(
    "Calibration data (.npz, .npy, .zip of images)",
    type=["npz", "npy", "zip"],
    key=K + "cal",
    help="Needed by the static recipes; also the comparison's inputs.",
)
eval_up = d2.file_uploader(
    "Evaluation data (.npz with labels, .npy)",
    type=["npz", "npy"],
    key=K + "eval",
    help="The inputs the optimized file is judged on.",
)
if choice is not None and choice.needs_calibration and cal_up is None:
    st.warning(
        "This recipe needs calibration data: without it, random numbers are used and the "
        "accuracy may collapse.",
        icon=":material/warning:",
    )


def _ref(up: object) -> jobs.ArtifactRef | None:
    if up is None:
        return None
    f: FileRef = store_file(up, up.name)  # type: ignore[arg-type, attr-defined]
    return jobs.ArtifactRef(f.sha, f.size, f.name)


def _submit(mode: str) -> None:
    assert choice is not None and found is not None
    try:
        new = submit_optimize(
            jobs.store(),
            jobs.ArtifactRef(*found),
            model_name=found[2],
            params=optimize_params(choice, mode=mode),
            user=current_user(),
            calibration=_ref(cal_up),
            eval_data=_ref(eval_up),
        )
    except StudioError as e:
        show_error(e)
        return
    st.query_params.clear()
    job_view.open_job(new.id)


b1, b2 = st.columns(2)
if b1.button(
    "Optimize",
    type="primary",
    key=K + "go",
    icon=":material/compress:",
    disabled=choice is None,
    width="stretch",
):
    _submit("recipe")
if b2.button(
    "Try every recipe and recommend one", key=K + "sweep", icon=":material/rule:", width="stretch"
):
    choice = choice or RecipeChoice(Recipe.WEIGHT_ONLY_INT4.value)
    _submit("sweep")

if job.kind is not jobs.JobKind.OPTIMIZE:
    st.divider()
    st.subheader("Deploy this model as it is")
    show_deploy(job, key=K + "deploy")
