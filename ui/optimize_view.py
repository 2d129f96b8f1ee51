"""The result of an optimize job on a page: the size drop, the verdict of our
evaluation against the float file, the quantizer's tensor comparison as a
chart (worst tensors named and highlighted), the downloads, and a sweep's
table with its recommendation. Model strings are shown as text."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from core.model.naming import short_layer_name
from core.server import jobs
from core.tasks.optimize import OptimizeResult, TensorComparison, worst_tensors
from ui.format import code, human_bytes, human_seconds, md

__all__ = ["validation_chart", "show_optimize_result", "show_optimize_sweep", "VERDICT_STYLE"]

VERDICT_STYLE = {
    "good": ("green", ":material/check_circle:"),
    "check": ("orange", ":material/warning:"),
    "bad": ("red", ":material/error:"),
}
_LOW_SNR_DB = 20.0  # below: highlighted (the recommendation's rule for outputs)
_CHART_ROWS = 30


def _text(name: str) -> str:
    """A model name as plotly text (plotly reads a subset of HTML)."""
    return html.escape(str(name), quote=False)


def validation_chart(rows: tuple[TensorComparison, ...], n: int = _CHART_ROWS) -> go.Figure:
    """SNR per tensor (the quantizer's comparison), worst at the top; outputs
    and the tensors below 20 dB in red."""
    shown = [r for r in rows if r.role != "input"][:n]
    fig = go.Figure()
    if not shown:
        fig.add_annotation(text="The quantizer compared no tensor", showarrow=False)
        return fig
    cap = 200.0
    values = [cap if r.snr_db is None else max(min(r.snr_db, cap), -50.0) for r in shown]
    worst = {r.name for r in worst_tensors(rows, 3)}
    colors = [
        "#C62828"
        if (r.snr_db is not None and r.snr_db < _LOW_SNR_DB) or r.name in worst
        else "#6A1B9A"
        if r.role == "output"
        else "#1565C0"
        for r in shown
    ]
    labels = [
        _text(f"{'★ ' if r.name in worst else ''}{short_layer_name(r.name, 40)} ({r.role})")
        for r in shown
    ]
    hover = [
        f"{_text(short_layer_name(r.name, 90))}<br>{r.role}<br>SNR "
        f"{'identical' if r.snr_db is None else f'{r.snr_db:.1f} dB'}<br>cosine "
        f"{'–' if r.cosine is None else f'{r.cosine:.5f}'}<br>MSE {r.mse:.3g}"
        for r in shown
    ]
    fig.add_trace(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker=dict(color=colors),
            hovertext=hover,
            hoverinfo="text",
            showlegend=False,
        )
    )
    fig.add_vline(
        x=_LOW_SNR_DB,
        line_dash="dash",
        line_color="#C62828",
        annotation_text="20 dB",
        annotation_position="top",
    )
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(title="SNR against the float model (dB, higher is closer)")
    fig.update_layout(
        title=dict(text="Tensor by tensor: optimized vs float (worst first)", font=dict(size=15)),
        height=max(280, 22 * len(shown) + 110),
        margin=dict(l=8, r=8, t=48, b=8),
    )
    return fig


def _headline(res: OptimizeResult) -> None:
    c = st.columns(4)
    c[0].metric("Float .tflite", human_bytes(res.input_size))
    c[1].metric(
        "Optimized",
        human_bytes(res.output_size),
        delta=f"{(res.output_size - res.input_size) / res.input_size:+.0%}",
        delta_color="inverse",
    )
    c[2].metric("Smaller by", f"{res.input_size / max(res.output_size, 1):.1f}×")
    c[3].metric("Quantizing took", human_seconds(res.seconds))


def _verdict(res: OptimizeResult) -> None:
    acc = res.accuracy
    if acc is None:
        err = res.accuracy_error or {}
        st.info(
            "Accuracy was not measured: " + md(err.get("message", "no run was possible here")),
            icon=":material/info:",
        )
        return
    color, icon = VERDICT_STYLE.get(acc.verdict, ("gray", ":material/help:"))
    st.markdown(
        f":{color}-badge[{icon} {acc.verdict}] **Against the float file** on {acc.samples} "
        f"samples ({md(acc.data_name)}): {md(acc.verdict_text)}"
    )
    for f in acc.flags:
        if f.message.strip() == acc.verdict_text.strip():
            continue  # the verdict line above says it already
        (st.error if f.severity == "error" else st.warning)(md(f.message), icon=":material/flag:")


def _downloads(job: jobs.Job, res: OptimizeResult, key: str) -> None:
    from core.model.naming import download_name

    c = st.columns(3)
    sha = str(job.output_sha)
    c[0].download_button(
        "Download optimized .tflite",
        data=lambda: jobs.read_artifact(sha),
        file_name=download_name(job.model_name, job.preset or None, "tflite"),
        mime="application/octet-stream",
        type="primary",
        icon=":material/download:",
        key=f"{key}.tflite.{job.id}",
        on_click="ignore",
        width="stretch",
    )
    c[1].download_button(
        "Optimization report (JSON)",
        data=lambda: json.dumps(res.to_dict(), indent=2, default=str),  # on click only
        file_name=download_name(job.model_name, f"{job.preset}-optimize", "json"),
        mime="application/json",
        icon=":material/data_object:",
        key=f"{key}.report.{job.id}",
        on_click="ignore",
        width="stretch",
    )
    c[2].download_button(
        "Recipe (quantizer JSON)",
        data=lambda: json.dumps(list(res.recipe_entries), indent=2),
        file_name=download_name(job.model_name, f"{job.preset}-recipe", "json"),
        mime="application/json",
        icon=":material/receipt_long:",
        key=f"{key}.recipe.{job.id}",
        on_click="ignore",
        width="stretch",
    )


def _db(snr: float | None) -> str:
    return "identical" if snr is None else f"{snr:.1f} dB"


def show_optimize_result(job: jobs.Job, *, key: str) -> OptimizeResult:
    res = OptimizeResult.from_dict((job.result or {})["optimize"])
    bad = res.accuracy is not None and res.accuracy.verdict == "bad"
    (st.warning if bad else st.success)(
        f"Optimized **{md(job.model_name)}** with **{md(res.recipe.label)}**: "
        f"{res.size_ratio:.0%} of the float file, {res.quantized_tensors} quantized tensors"
        + (", but its outputs are far from the float file's (below)." if bad else "."),
        icon=":material/warning:" if bad else ":material/check_circle:",
    )
    _headline(res)
    _verdict(res)
    for w in res.warnings:
        st.warning(md(w), icon=":material/warning:")
    if res.validation:
        st.plotly_chart(validation_chart(res.validation), key=f"{key}.chart", width="stretch")
        worst = worst_tensors(res.validation, 5)
        st.markdown(
            "**Worst tensors:** "
            + ", ".join(f"{code(short_layer_name(w.name, 60))} ({_db(w.snr_db)})" for w in worst)
        )
        st.caption(
            f"The quantizer's own comparison on {res.validation_samples} samples "
            f"({md(res.validation_data)}): every tensor of the optimized model against the float "
            "model's, by signal-to-noise ratio; cosine and MSE in the tooltip."
        )
    _downloads(job, res, key)
    return res


def _metric_words(m: dict[str, Any]) -> str:
    if m.get("top1_agreement") is not None:
        return f"top-1 {m['top1_agreement']:.1%}"
    if m.get("cosine") is not None:
        snr = m.get("snr_db")
        return f"cosine {m['cosine']:.4f}, SNR {'∞' if snr is None else f'{snr:.1f} dB'}"
    return "–"


def show_optimize_sweep(job: jobs.Job, *, key: str) -> None:
    sweep = (job.result or {}).get("sweep") or {}
    rec = sweep.get("recommendation") or {}
    st.markdown(md(str(rec.get("text", ""))).replace("\\*\\*", "**"))
    rows = sweep.get("rows") or []
    table = [
        {
            "recipe": r.get("label"),
            "size": human_bytes(r.get("size_bytes")) if r.get("size_bytes") else "–",
            "latency": f"{r['latency_ms']:.3f} ms" if r.get("latency_ms") else "–",
            "accuracy": _metric_words(r.get("metrics") or {}),
            "verdict": (r.get("metrics") or {}).get("verdict") or "–",
            "note": str((r.get("error") or {}).get("message") or r.get("note") or "")[:160],
            "recommended": "★" if r.get("label") == rec.get("label") else "",
        }
        for r in rows
    ]
    st.dataframe(table, hide_index=True, width="stretch", key=f"{key}.table")
    for r in rows:
        sha = r.get("artifact_sha")
        if not sha or r.get("preset") == "float32":
            continue
        size = r.get("size_bytes") or 0
        slug = re.sub(r"[^A-Za-z0-9.-]+", "-", str(r.get("label"))).strip("-")
        st.download_button(
            f"Download {r.get('label')} ({human_bytes(size)})",
            data=lambda s=sha: jobs.read_artifact(str(s)),
            file_name=f"{job.stem}-{slug}.tflite",
            mime="application/octet-stream",
            key=f"{key}.dl.{r.get('label')}",
            on_click="ignore",
            icon=":material/download:",
        )
