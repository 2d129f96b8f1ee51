"""The Compare page's pieces: submit a sweep, draw its results, re-convert
keeping the worst layers in float, diff two results.

Everything here reads ``core`` results (dicts stored with the job) and
artifacts by their SHA-256; nothing imports TensorFlow. The sweep and the
re-conversion run as jobs (``JobKind.SWEEP`` / ``JobKind.EVALUATE``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from core.errors import StudioError
from core.model.naming import short_layer_name
from core.options import PRESETS, Preset
from core.server import jobs
from ui import compare_charts, job_view
from ui.errors import show_error
from ui.format import code, download_name, human_bytes, md
from ui.identity import current_user

__all__ = [
    "submit_sweep",
    "submit_reconvert",
    "show_recommendation",
    "show_table",
    "show_pareto",
    "show_layers",
    "show_reconvert_result",
    "show_diff",
    "show_downloads",
    "row_label",
]

_VERDICT_WORDS = {"good": "✅ good", "check": "⚠️ check", "bad": "❌ bad"}


# ---------------------------------------------------------------- submitting


@contextmanager
def _named_files(files: dict[str, tuple[str, str]]) -> Iterator[dict[str, Path]]:
    """{key: (sha, name)} -> {key: path named as the person named the file}."""
    d = Path(tempfile.mkdtemp(dir=jobs.store().root))
    try:
        out = {}
        for key, (sha, name) in files.items():
            p = d / key / os.path.basename(name)
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(jobs.artifact_path(sha), p)
            out[key] = p
        yield out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def submit_sweep(
    model: Path, model_name: str, *, files: dict[str, tuple[str, str]], params: dict[str, Any]
) -> jobs.Job:
    """Queue a sweep of ``model`` (a stored artifact or a sample file)."""
    with _named_files(files) as named:
        return jobs.submit(
            jobs.JobKind.SWEEP,
            model,
            model_name=model_name,
            params=params,
            user=current_user(),
            extra_files=named,
        )


def _job_files(job: jobs.Job) -> dict[str, tuple[str, str]]:
    return {
        k: (v["sha"], v["name"])
        for k, v in (job.params.get("files") or {}).items()
        if k in ("calibration", "eval")
    }


def submit_reconvert(sweep_job: jobs.Job, keep: list[str], preset: str) -> jobs.Job:
    """Queue a conversion with ``keep`` layers in float, measured like a sweep row."""
    p = sweep_job.params
    options = {**dict(p.get("options") or {}), "preset": preset, "keep_float_ops": list(keep)}
    params = {
        "options": options,
        "threads": p.get("threads") or [1],
        "runs": p.get("runs", 50),
        "task": p.get("task", "auto"),
        "parent": sweep_job.id,
    }
    with _named_files(_job_files(sweep_job)) as named:
        return jobs.submit(
            jobs.JobKind.EVALUATE,
            jobs.artifact_path(sweep_job.input_sha),
            model_name=sweep_job.model_name,
            params=params,
            user=current_user(),
            extra_files=named,
        )


# ---------------------------------------------------------------- words


def row_label(row: dict[str, Any]) -> str:
    try:
        title = PRESETS[Preset(row["preset"])].title
    except (ValueError, KeyError):
        return row.get("label", "?")
    extra = row["label"][len(row["preset"]) :].strip(", ") if row.get("label") else ""
    return f"{row['label']} — {title}" + (f" ({extra})" if extra else "")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def _snr(v: Any) -> str:
    return "∞" if v is None else f"{v:.1f} dB"


# ---------------------------------------------------------------- results


def show_recommendation(report: dict[str, Any]) -> None:
    rec = report.get("recommendation") or {}
    text = rec.get("text") or "No recommendation."
    if rec.get("preset"):
        st.success(text, icon=":material/recommend:")
    else:
        st.warning(text, icon=":material/help:")
    data = report.get("data") or {}
    src = {
        "user": f"your evaluation data ({data.get('name')})",
        "calibration": f"the calibration data ({data.get('name')})",
        "synthetic": "random inputs",
    }.get(data.get("source"), "–")
    st.caption(
        f"Measured on {data.get('samples', 0)} samples from {src}; latency on this server's "
        f"CPU with the LiteRT runtime, {min(report.get('threads') or [1])} thread(s), "
        f"{report.get('runs')} runs; the sweep took {report.get('seconds', 0):.0f} s."
    )
    for f in report.get("flags") or []:
        {"error": st.error, "warning": st.warning}.get(f.get("severity"), st.info)(
            md(f.get("message", "")),
            icon=":material/warning:" if f.get("severity") != "info" else ":material/info:",
        )


def _table_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rec = (report.get("recommendation") or {}).get("label")
    out = []
    for r in report.get("rows") or []:
        m = r.get("metrics") or {}
        err = r.get("error") or {}
        if m:
            status = _VERDICT_WORDS.get(m.get("verdict"), m.get("verdict", ""))
        elif (err.get("details") or {}).get("cannot_run_here"):
            status = "🚫 can't run here"
        elif err:
            status = "❌ failed"
        else:
            status = "–"
        out.append(
            {
                "preset": ("★ " if r["label"] == rec else "") + r["label"],
                "size": r.get("size_bytes"),
                "latency (ms)": r.get("latency_ms"),
                "top-1 agreement": m.get("top1_agreement"),
                "accuracy": m.get("accuracy"),
                "accuracy drop (pts)": (
                    None if m.get("accuracy_drop") is None else round(m["accuracy_drop"] * 100, 2)
                ),
                "cosine": m.get("cosine"),
                "SNR (dB)": m.get("snr_db"),
                "verdict": status,
                "Pareto": bool(r.get("pareto")),
                "what happened": r.get("note") or "",
            }
        )
    return out


def show_table(report: dict[str, Any], *, key: str) -> None:
    rows = _table_rows(report)
    has_acc = any(r["accuracy"] is not None for r in rows)
    has_top1 = any(r["top-1 agreement"] is not None for r in rows)
    cols = {
        "size": st.column_config.NumberColumn("size (bytes)", format="localized"),
        "latency (ms)": st.column_config.NumberColumn(format="%.4f"),
        "top-1 agreement": st.column_config.ProgressColumn(
            format="percent",
            min_value=0.0,
            max_value=1.0,
            help="How often the converted model's top prediction equals the original's.",
        ),
        "accuracy": st.column_config.NumberColumn(
            format="percent", help="Against the labels in your data."
        ),
        "cosine": st.column_config.NumberColumn(format="%.5f"),
        "SNR (dB)": st.column_config.NumberColumn(
            format="%.1f", help="Signal-to-noise ratio of the outputs; empty = identical."
        ),
        "Pareto": st.column_config.CheckboxColumn(
            help="No other preset is smaller, faster and more accurate at the same time."
        ),
    }
    order = ["preset", "size", "latency (ms)"]
    if has_top1:
        order.append("top-1 agreement")
    if has_acc:
        order += ["accuracy", "accuracy drop (pts)"]
    order += ["cosine", "SNR (dB)", "verdict", "Pareto", "what happened"]
    st.dataframe(
        rows,
        column_config=cols,
        column_order=order,
        hide_index=True,
        width="stretch",
        key=f"{key}.table",
    )
    for r in report.get("rows") or []:
        for w in r.get("warnings") or []:
            if "random synthetic data" in w:
                st.caption(f"{md(r['label'])}: {md(w)}")
                break


def show_pareto(report: dict[str, Any], *, key: str) -> None:
    st.plotly_chart(compare_charts.pareto_chart(report), key=f"{key}.pareto", width="stretch")


def show_downloads(job: jobs.Job, report: dict[str, Any], *, key: str) -> None:
    rows = [r for r in report.get("rows") or [] if r.get("artifact_sha")]
    c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
    if rows:
        labels = [r["label"] for r in rows]
        rec = (report.get("recommendation") or {}).get("label")
        pick = c1.selectbox(
            "Download a converted model",
            labels,
            index=labels.index(rec) if rec in labels else 0,
            key=f"{key}.pick",
        )
        row = rows[labels.index(pick)]
        row_sha = str(row["artifact_sha"])
        c2.download_button(
            "Download .tflite",
            data=lambda: jobs.read_artifact(row_sha),
            file_name=download_name(
                job.model_name, pick.replace(", ", "-").replace(" ", "_"), "tflite"
            ),
            mime="application/octet-stream",
            type="primary",
            icon=":material/download:",
            key=f"{key}.tflite",
            on_click="ignore",
            width="stretch",
        )
    c3.download_button(
        "Sweep report (JSON)",
        data=lambda: json.dumps(report, indent=2),
        file_name=download_name(job.model_name, "sweep", "json"),
        mime="application/json",
        icon=":material/data_object:",
        key=f"{key}.json",
        on_click="ignore",
        width="stretch",
    )


def show_layers(job: jobs.Job, report: dict[str, Any], *, key: str) -> str | None:
    """The per-layer error chart(s) and the re-convert button. Returns the id of
    a re-conversion job submitted now, else None."""
    reports = report.get("layer_errors") or []
    if not reports:
        st.caption("No per-layer error: it is measured when an int8 or int16x8 preset converts.")
        return None
    names = [r["preset"] for r in reports]
    how = {"quantization_debugger": "TensorFlow's debugger", "tensor_compare": "vs float32"}
    tabs = st.tabs([f"{n} ({how.get(r['method'], r['method'])})" for n, r in zip(names, reports)])
    submitted = None
    for tab, le in zip(tabs, reports):
        with tab:
            st.markdown(md(le.get("note", "")))
            layers = le.get("layers") or []
            n_max = max(1, min(10, len([x for x in layers if x.get(le.get("metric")) is not None])))
            default = max(1, min(n_max, len([x for x in layers if x.get("suspect")]) or 1))
            n = (
                st.slider(
                    "Worst layers to keep in float",
                    1,
                    n_max,
                    default,
                    key=f"{key}.n.{le['preset']}",
                    disabled=n_max <= 1,
                )
                if n_max > 1
                else 1
            )
            st.plotly_chart(
                compare_charts.layer_error_chart(le, highlight=n),
                key=f"{key}.chart.{le['preset']}",
                width="stretch",
            )
            metric = le.get("metric", "rmse_over_scale")
            ranked = sorted(
                (x for x in layers if x.get(metric) is not None), key=lambda x: -x[metric]
            )
            worst = ranked[:n]
            st.markdown(
                "**Worst layers:** "
                + "; ".join(
                    f"{code(short_layer_name(x['tensor']))} ({md(x['op'])}, {x[metric]:.3g})"
                    for x in worst
                )
            )
            target = le.get("keep_float_preset")
            if target:
                if st.button(
                    f"Re-convert keeping the worst {n} layer{'s' if n != 1 else ''} "
                    f"in float ({target})",
                    key=f"{key}.reconvert.{le['preset']}",
                    icon=":material/restart_alt:",
                ):
                    try:
                        submitted = submit_reconvert(job, [x["tensor"] for x in worst], target).id
                    except Exception as e:
                        from core.errors import StudioError

                        if isinstance(e, StudioError):
                            show_error(e)
                        else:
                            raise
                st.caption(
                    f"The {target} preset lets chosen layers run in float while the "
                    "rest stays int8; the result is measured like the rows above."
                )
            else:
                st.caption(
                    "TensorFlow's 16x8 quantizer cannot keep chosen layers in float; "
                    "to keep layers in float, use the int8 tab."
                )
    return submitted


def show_reconvert_result(eval_job: jobs.Job, report: dict[str, Any]) -> None:
    """The re-converted model next to the rows it should beat."""
    res = eval_job.result or {}
    row = res.get("row")
    if not row:
        st.info("The re-conversion produced no row.")
        return
    compare = [
        r
        for r in report.get("rows") or []
        if r["preset"] in ("float32", "int8", "int8-float-io") and r.get("metrics")
    ]
    table = []
    for r in [*compare, row]:
        m = r.get("metrics") or {}
        table.append(
            {
                "model": r["label"],
                "size": human_bytes(r.get("size_bytes")),
                "latency (ms)": r.get("latency_ms"),
                "top-1 agreement": _pct(m.get("top1_agreement")),
                "accuracy": _pct(m.get("accuracy")),
                "cosine": m.get("cosine"),
                "SNR": _snr(m.get("snr_db")) if m else "–",
            }
        )
    st.dataframe(table, hide_index=True, width="stretch")
    if row.get("error"):
        show_error(row["error"], title=f"{row['label']}: {row.get('failed_step')} failed.")
    elif row.get("note"):
        st.caption(md(row["note"]))
    for w in row.get("warnings") or []:
        st.warning(md(w), icon=":material/warning:")
    if res.get("output_sha"):
        out_sha = str(res["output_sha"])
        st.download_button(
            "Download this .tflite",
            data=lambda: jobs.read_artifact(out_sha),
            file_name=download_name(
                eval_job.model_name, row["label"].replace(", ", "-").replace(" ", "_"), "tflite"
            ),
            mime="application/octet-stream",
            icon=":material/download:",
            key=f"compare.reconvert.dl.{eval_job.id}",
            on_click="ignore",
        )


_DIFFS = "compare.diff_jobs"


def _diff_job(a: dict[str, Any], b: dict[str, Any], name_a: str, name_b: str) -> jobs.Job:
    """The diff of two stored models, made by a sandboxed worker (a job); one
    job per pair in this session."""
    known: dict[str, str] = st.session_state.setdefault(_DIFFS, {})
    sha_a, sha_b = str(a["artifact_sha"]), str(b["artifact_sha"])
    pair = f"{sha_a}:{sha_b}:{name_a}:{name_b}"
    job = job_view.load_job(known[pair]) if pair in known else None
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
    ra, rb = rows[labels.index(a)], rows[labels.index(b)]
    try:
        job = _diff_job(ra, rb, a, b)
    except StudioError as e:
        show_error(e)
        return
    if job_view.show_unfinished(job, key=f"{key}.job", retry=False):
        return
    d = (job.result or {}).get("diff") or {}
    st.markdown(md(d["summary"]))
    c = st.columns(4)
    c[0].metric("Ops added", len(d["ops_added"]))
    c[1].metric("Ops removed", len(d["ops_removed"]))
    c[2].metric("Ops changed", len(d["ops_changed"]))
    c[3].metric(
        "Tensors quantized",
        len(d["quantized_tensors"]),
        help="Float in the first model, integer with a scale in the second.",
    )
    st.markdown("**Size per op type**")
    st.dataframe(
        [
            {
                "op": s["op"],
                f"count ({a})": s["count_a"],
                f"count ({b})": s["count_b"],
                f"weights ({a})": human_bytes(s["weight_bytes_a"]),
                f"weights ({b})": human_bytes(s["weight_bytes_b"]),
            }
            for s in d["by_op_type"]
        ],
        hide_index=True,
        width="stretch",
    )
    ops = [*d["ops_removed"], *d["ops_added"], *d["ops_changed"]]
    if ops:
        with st.expander(f"Ops that changed ({len(ops)})"):
            st.dataframe(
                [
                    {
                        "change": o["change"],
                        "op": o["op"],
                        "details": "; ".join(o["details"]) or o["output"],
                    }
                    for o in ops
                ],
                hide_index=True,
                width="stretch",
            )
    if d["tensors_changed"]:
        with st.expander(f"Tensors that changed ({len(d['tensors_changed'])})"):
            st.dataframe(
                [
                    {
                        "tensor": short_layer_name(t["name"], 70),
                        "type": f"{t['dtype_a'].lower()} → {t['dtype_b'].lower()}",
                        "shape": (
                            f"{t['shape_a']} → {t['shape_b']}"
                            if "shape" in t["changed"]
                            else str(t["shape_b"])
                        ),
                        "quantization": (t["quant_b"] or "none")
                        if "quantization" in t["changed"]
                        else "",
                        "matched by": t["matched_by"],
                    }
                    for t in d["tensors_changed"]
                ],
                hide_index=True,
                width="stretch",
            )
