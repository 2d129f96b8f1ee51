"""Compare's per-layer error (the chart, in plain words, and the
"re-convert keeping the worst layers in float" button) and the diff of two
converted models; also the pages of a single per-layer error job and of a
single diff job (as the HTTP API submits them).

Everything here reads job results (dicts) and artifacts by their SHA-256;
the re-conversion and the diff run as jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.errors import StudioError
from core.model.naming import short_layer_name
from core.server import jobs
from ui import compare_charts, job_view
from ui.compare_table import size_unit
from ui.errors import show_error
from ui.format import code, md
from ui.identity import current_user

__all__ = ["LAYER_WORDS", "show_layers", "show_diff", "show_diff_result", "show_layers_job"]

Submit = Callable[[jobs.Job, list[str], str], jobs.Job]  # (job, layers to keep, preset)

LAYER_WORDS = (
    "Each bar is one layer, in the order the model runs them. Its height is how far "
    "the layer's integer output is from the float one, measured in the layer's "
    "smallest integer step: about 0.3 is plain rounding, above the dashed line the "
    "layer loses noticeably. Keeping the worst layers in float often wins the "
    "accuracy back for a few KB."
)
_HOW = {"quantization_debugger": "TensorFlow's debugger", "tensor_compare": "against float32"}


def _worst(le: dict[str, Any], n: int) -> list[dict[str, Any]]:
    metric = le.get("metric", "rmse_over_scale")
    layers = [x for x in le.get("layers") or [] if x.get(metric) is not None]
    return sorted(layers, key=lambda x: -float(x[metric]))[:n]


def _one_report(job: jobs.Job, le: dict[str, Any], *, key: str, submit: Submit) -> str | None:
    metric = le.get("metric", "rmse_over_scale")
    layers = [x for x in le.get("layers") or [] if x.get(metric) is not None]
    if le.get("note"):
        st.markdown(md(le["note"]))
    st.caption(LAYER_WORDS)
    n_max = max(1, min(10, len(layers)))
    default = max(1, min(n_max, len([x for x in layers if x.get("suspect")]) or 1))
    n = (
        st.slider("Worst layers to keep in float", 1, n_max, default, key=f"{key}.n")
        if n_max > 1
        else 1
    )
    st.plotly_chart(
        compare_charts.layer_error_chart(le, highlight=n), key=f"{key}.chart", width="stretch"
    )
    worst = _worst(le, n)
    if worst:
        st.markdown(
            "**Worst layers:** "
            + "; ".join(
                f"{code(short_layer_name(x['tensor']))} ({md(x.get('op', ''))}, "
                f"{float(x[metric]):.3g})"
                for x in worst
            )
        )
    target = le.get("keep_float_preset")
    if not target:
        st.caption(
            "TensorFlow's 16x8 quantizer cannot keep chosen layers in float; "
            "to keep layers in float, use the int8 tab."
        )
        return None
    label = f"Re-convert keeping the worst {n} layer{'s' if n != 1 else ''} in float ({target})"
    submitted = None
    if st.button(label, key=f"{key}.reconvert", icon=":material/restart_alt:"):
        try:
            submitted = submit(job, [x["tensor"] for x in worst], str(target)).id
        except StudioError as e:
            show_error(e)
    st.caption(
        f"The {target} preset lets chosen layers run in float while the rest stays int8; "
        "the result is measured like the rows above."
    )
    return submitted


def show_layers(
    job: jobs.Job, reports: list[dict[str, Any]], *, key: str, submit: Submit
) -> str | None:
    """The per-layer error chart(s) and the re-convert button. Returns the id
    of a re-conversion job submitted now, else None."""
    reports = [r for r in reports if isinstance(r, dict)]
    if not reports:
        st.caption(
            "Not measured: every integer preset kept the accuracy, or the comparison was asked "
            'not to. Choose "For every integer preset" under Per-layer quantization error '
            "and compare again to see it."
        )
        return None
    tabs = st.tabs(
        [f"{r.get('preset')} ({_HOW.get(r.get('method', ''), 'measured')})" for r in reports]
    )
    submitted = None
    seen: set[str] = set()
    for i, (tab, le) in enumerate(zip(tabs, reports)):
        name = str(le.get("preset"))
        sub = name if name not in seen else f"{name}.{i}"  # two reports of one preset
        seen.add(name)
        with tab:
            submitted = _one_report(job, le, key=f"{key}.{sub}", submit=submit) or submitted
    return submitted


def show_layers_job(job: jobs.Job, *, key: str, submit: Submit) -> str | None:
    """A per-layer error job (``JobKind.LAYERS``) on its own."""
    le = (job.result or {}).get("layers") or {}
    st.success(
        f"Per-layer quantization error of **{md(job.model_name)}** with "
        f"**{md(le.get('preset') or job.preset)}**, on {int(le.get('samples') or 0)} samples.",
        icon=":material/check_circle:",
    )
    return show_layers(job, [le], key=key, submit=submit)


_DIFFS = "compare.diff_jobs"


def _diff_job(a: dict[str, Any], b: dict[str, Any], name_a: str, name_b: str) -> jobs.Job:
    """The diff of two stored models, made by a sandboxed worker (a job); one
    job per pair in this session."""
    known: dict[str, str] = st.session_state.setdefault(_DIFFS, {})
    sha_a, sha_b = str(a["artifact_sha"]), str(b["artifact_sha"])
    pair = f"{sha_a}:{sha_b}:{name_a}:{name_b}"
    job = job_view.load_job(known[pair], current=False) if pair in known else None
    if job is None:
        job = jobs.submit(
            jobs.JobKind.DIFF,
            jobs.ArtifactRef(sha_a, int(a.get("size_bytes") or 0), f"{name_a}.tflite"),
            model_name=f"{name_a}.tflite",
            params={"name_a": name_a, "name_b": name_b},
            user=current_user(),
            extra_files={
                "b": jobs.ArtifactRef(sha_b, int(b.get("size_bytes") or 0), f"{name_b}.tflite")
            },
        )
        known[pair] = job.id
    return job


def show_diff(
    report: dict[str, Any], *, key: str, extra: list[dict[str, Any]] | None = None
) -> None:
    """Pick two converted results; show what changed between them."""
    rows = [r for r in [*(report.get("rows") or []), *(extra or [])] if r.get("artifact_sha")]
    if len(rows) < 2:
        st.caption("Two converted models are needed for a diff.")
        return
    labels = [r["label"] for r in rows]
    c1, c2 = st.columns(2)
    a = c1.selectbox("Before", labels, index=0, key=f"{key}.a")
    b_default = (
        labels.index("int8")
        if "int8" in labels and labels[0] != "int8"
        else min(1, len(labels) - 1)
    )
    b = c2.selectbox("After", labels, index=b_default, key=f"{key}.b")
    if a == b:
        st.info("Pick two different models.")
        return
    try:
        job = _diff_job(rows[labels.index(a)], rows[labels.index(b)], a, b)
    except StudioError as e:
        show_error(e)
        return
    if job_view.show_unfinished(job, key=f"{key}.job", retry=False):
        return
    show_diff_result(job, a, b)


def show_diff_result(job: jobs.Job, a: str, b: str) -> None:
    """A finished diff: counts, size per op type, the ops and tensors that changed."""
    d = (job.result or {}).get("diff") or {}
    st.markdown(md(d.get("summary", "")))
    with st.container(horizontal=True, gap="medium"):
        st.metric("Ops added", len(d.get("ops_added") or []), width=130)
        st.metric("Ops removed", len(d.get("ops_removed") or []), width=130)
        st.metric("Ops changed", len(d.get("ops_changed") or []), width=130)
        st.metric(
            "Tensors quantized",
            len(d.get("quantized_tensors") or []),
            help="Float in the first model, integer with a scale in the second.",
            width=160,
        )
    by_op = d.get("by_op_type") or []
    unit = size_unit(
        [x.get("weight_bytes_a") for x in by_op] + [x.get("weight_bytes_b") for x in by_op]
    )
    st.markdown("**Size per op type**")
    st.dataframe(
        [
            {
                "op": x.get("op", ""),
                f"count ({a})": x.get("count_a", 0),
                f"count ({b})": x.get("count_b", 0),
                f"weights ({a}, {unit[0]})": round((x.get("weight_bytes_a") or 0) / unit[1], 2),
                f"weights ({b}, {unit[0]})": round((x.get("weight_bytes_b") or 0) / unit[1], 2),
            }
            for x in by_op
        ],
        hide_index=True,
        width="stretch",
    )
    ops = [
        *(d.get("ops_removed") or []),
        *(d.get("ops_added") or []),
        *(d.get("ops_changed") or []),
    ]
    if ops:
        with st.expander(f"Ops that changed ({len(ops)})"):
            st.dataframe(
                [
                    {
                        "change": o.get("change", ""),
                        "op": o.get("op", ""),
                        "details": "; ".join(o.get("details") or []) or o.get("output", ""),
                    }
                    for o in ops
                ],
                hide_index=True,
                width="stretch",
            )
    changed = d.get("tensors_changed") or []
    if changed:
        with st.expander(f"Tensors that changed ({len(changed)})"):
            st.dataframe([_tensor_row(t) for t in changed], hide_index=True, width="stretch")


def _tensor_row(t: dict[str, Any]) -> dict[str, Any]:
    what = t.get("changed") or []
    return {
        "tensor": short_layer_name(t.get("name", ""), 70),
        "type": f"{str(t.get('dtype_a', '')).lower()} → {str(t.get('dtype_b', '')).lower()}",
        "shape": (
            f"{t.get('shape_a')} → {t.get('shape_b')}" if "shape" in what else str(t.get("shape_b"))
        ),
        "quantization": (t.get("quant_b") or "none") if "quantization" in what else "",
        "matched by": t.get("matched_by", ""),
    }
