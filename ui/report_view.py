"""A finished job's report on a page: headline numbers, downloads, where the
model runs, charts, the Netron graph, then the tables.

The report is written by the job's sandboxed worker in JSON, Markdown and
HTML, and stored as content-addressed artifacts; the page only reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st

from core.errors import StudioError
from core.server import jobs
from ui import charts
from ui.format import download_name, human_bytes, md
from ui.netron import show_graph
from ui.runs_view import decided_caption, show_runs
from ui.words import DYNAMIC, cause_of, web_md

FixShapes = Callable[[str], None]  # draws the "Fix the input shapes" button under a key

__all__ = [
    "VERDICT_WORDS",
    "load_report",
    "read_report",
    "render_report",
    "show_downloads",
    "show_verdict_strip",
    "show_headline",
    "show_compatibility",
    "show_charts",
    "show_tables",
    "show_report",
]

VERDICT_WORDS = {"supported": "runs", "partial": "partly", "unsupported": "does not run"}
_VERDICT_STYLE = {
    "supported": ("green", ":material/check_circle:"),
    "partial": ("orange", ":material/error:"),
    "unsupported": ("red", ":material/cancel:"),
}
_PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


@st.cache_data(max_entries=64, show_spinner=False)
def read_report(sha: str) -> dict[str, Any]:
    return json.loads(jobs.read_artifact(sha).decode("utf-8"))


def load_report(job: jobs.Job) -> dict[str, Any] | None:
    """The job's JSON report (cached by its content id), or None."""
    sha = job.report_sha
    if not sha:
        return None
    try:
        return read_report(sha)
    except (OSError, ValueError):
        return None


def _preset(job: jobs.Job) -> str | None:
    return job.preset or None if job.kind is jobs.JobKind.CONVERT else None


def _options(job: jobs.Job) -> dict[str, Any] | None:
    return job.params.get("options") if job.kind is jobs.JobKind.CONVERT else None


def _name(job: jobs.Job, what: str) -> str:
    """The download name: model, preset and the options that change the result."""
    return download_name(job.model_name, _preset(job), what, _options(job))


def render_report(job: jobs.Job, fmt: str) -> str:
    """The Markdown / HTML report the job's worker rendered (stored with the
    job: a click reads a file and parses no model)."""
    sha = (job.result or {}).get({"md": "report_md_sha", "html": "report_html_sha"}[fmt])
    if not sha:
        raise StudioError(
            "This job has no rendered report in that format.",
            "Inspect the .tflite again to make one.",
        )
    return jobs.read_artifact(str(sha)).decode("utf-8")


def show_downloads(job: jobs.Job, *, key: str) -> None:
    """The .tflite and the report as JSON, Markdown and HTML."""
    if not job.output_sha:
        return
    tfl_sha = str(job.output_sha)
    c = st.columns(4)
    c[0].download_button(
        "Download .tflite",
        data=lambda: jobs.read_artifact(tfl_sha),
        file_name=_name(job, "tflite"),
        mime="application/octet-stream",
        type="primary",
        icon=":material/download:",
        key=f"{key}.tflite.{job.id}",
        on_click="ignore",
        width="stretch",
    )
    if job.report_sha:
        rep_sha = str(job.report_sha)
        c[1].download_button(
            "Report (HTML)",
            data=lambda: render_report(job, "html"),
            file_name=_name(job, "html"),
            mime="text/html",
            icon=":material/description:",
            key=f"{key}.html.{job.id}",
            on_click="ignore",
            width="stretch",
            help="One self-contained page with charts; opens offline.",
        )
        c[2].download_button(
            "Report (Markdown)",
            data=lambda: render_report(job, "md"),
            file_name=_name(job, "md"),
            mime="text/markdown",
            icon=":material/article:",
            key=f"{key}.md.{job.id}",
            on_click="ignore",
            width="stretch",
            help="For a pull request or an issue.",
        )
        c[3].download_button(
            "Report (JSON)",
            data=lambda: jobs.read_artifact(rep_sha),
            file_name=_name(job, "json"),
            mime="application/json",
            icon=":material/data_object:",
            key=f"{key}.json.{job.id}",
            on_click="ignore",
            width="stretch",
            help="Everything in the report, for scripts and CI.",
        )


def show_verdict_strip(job: jobs.Job) -> None:
    """One coloured badge per target: where the converted model runs."""
    report = load_report(job)
    if not report:
        return
    compat = report.get("compatibility") or {}
    if not compat:
        return
    badges = []
    for t in compat.values():
        color, icon = _VERDICT_STYLE.get(t.get("verdict"), ("gray", ":material/help:"))
        words = VERDICT_WORDS.get(t.get("verdict"), "?")
        badges.append(f":{color}-badge[{icon} {t.get('title')}: {words}]")
    st.markdown("**Where it runs:** " + " ".join(badges))


def _ratio_metric(ratio: float) -> tuple[str, str]:
    """(label, value) for a tflite/source size ratio."""
    return ("Smaller by", f"{1 / ratio:.1f}×") if ratio <= 1 else ("Larger by", f"{ratio:.1f}×")


def show_headline(job: jobs.Job, report: dict[str, Any]) -> None:
    """Size before/after, ratio, ops and weights: the first numbers to see
    (each metric keeps its width and they wrap on a narrow screen)."""
    size = report.get("size") or {}
    file_bytes = size.get("file_bytes") or (report.get("file") or {}).get("size_bytes")
    src = size.get("source") or {}
    model = report.get("model") or {}
    with st.container(horizontal=True, gap="medium"):
        if src.get("size_bytes"):
            st.metric(
                "Uploaded model",
                human_bytes(src.get("size_bytes")),
                help="The archive or Keras file that was converted.",
                width=160,
            )
        delta = f"{src['ratio'] - 1:+.0%}" if src.get("ratio") else None
        if file_bytes:
            st.metric(
                "TFLite file",
                human_bytes(file_bytes),
                delta=delta,
                delta_color="inverse",
                help="Size of the .tflite file" + (" compared with the upload." if src else "."),
                width=160,
            )
        if src.get("ratio"):
            st.metric(
                *_ratio_metric(float(src["ratio"])),
                help="Uploaded size divided by the .tflite size.",
                width=140,
            )
        weights = size.get("weights_bytes") or 0
        st.metric(
            "Weights",
            human_bytes(weights),
            delta=f"{weights / file_bytes:.0%} of the file" if file_bytes else None,
            delta_color="off",
            delta_arrow="off",
            help="Learned numbers stored in the file; the rest is graph structure.",
            width=160,
        )
        n_ops = model.get("num_operators") or len(report.get("operators") or [])
        st.metric(
            "Operators",
            f"{n_ops}",
            delta=f"{len(report.get('op_counts') or {})} kinds",
            delta_color="off",
            delta_arrow="off",
            width=140,
        )


def _shared_causes(compat: dict[str, Any]) -> dict[str, tuple[list[str], list[str]]]:
    """Whole-model reasons by cause: {cause: (target titles, messages)} for the
    causes several targets share, and dynamic shapes (said once, above the
    targets, with the fix)."""
    seen: dict[str, tuple[list[str], list[str]]] = {}
    for t in compat.values():
        for r in t.get("model_reasons") or []:
            cause = cause_of(f"{r.get('message', '')} {r.get('hint', '')}")
            if cause == "other":
                continue
            titles, msgs = seen.setdefault(cause, ([], []))
            title = str(t.get("title") or "")
            if title not in titles:
                titles.append(title)
            if r.get("message") and r["message"] not in msgs:
                msgs.append(str(r["message"]))
    # dynamic shapes have a fix on this page: said up front even for one target
    return {c: v for c, v in seen.items() if len(v[0]) > 1 or c == DYNAMIC}


def _cause_words(cause: str, titles: list[str], msgs: list[str]) -> str:
    where = ", ".join(titles[:-1]) + f" and {titles[-1]}" if len(titles) > 1 else titles[0]
    if cause == DYNAMIC:
        return (
            f"**{md(where)} need{'s' if len(titles) == 1 else ''} fixed input shapes.** "
            "This model has dynamic dimensions "
            f"({web_md(msgs[0]) if msgs else 'sizes known only when it runs'}). Fix the input "
            "shapes and convert again; then they can run it."
        )
    return f"**{md(where)}:** " + "; ".join(web_md(m) for m in msgs[:3])


def show_compatibility(
    report: dict[str, Any], *, key: str = "compat", fix_shapes: FixShapes | None = None
) -> None:
    """Per target: a card with the verdict in colour, then the reasons by
    operator. A cause several targets share is said once, above them, with its
    fix (``fix_shapes`` draws the "Fix the input shapes" button)."""
    compat = report.get("compatibility") or {}
    if not compat:
        st.info("No compatibility check in this report.")
        return
    with st.container(horizontal=True, gap="small"):
        for k, t in compat.items():
            verdict = t.get("verdict", "?")
            color, icon = _VERDICT_STYLE.get(verdict, ("gray", ":material/help:"))
            counts = t.get("counts") or {}
            with st.container(border=True, width=180, key=f"{key}.card.{k}"):
                st.markdown(f"**{md(t.get('title', k))}**")
                st.markdown(
                    f"#### :{color}[{icon} {VERDICT_WORDS.get(verdict, str(verdict)).capitalize()}]"
                )
                if counts:
                    st.caption(
                        f"{counts.get('supported', 0)} of {sum(counts.values())} operators "
                        "fully supported"
                    )
                st.caption(decided_caption(t))
    shared = _shared_causes(compat)
    for cause, (titles, msgs) in shared.items():
        st.warning(_cause_words(cause, titles, msgs), icon=":material/warning:")
        if cause == DYNAMIC and fix_shapes is not None:
            fix_shapes(f"{key}.fix.{cause}")
    tabs = st.tabs(
        [
            f"{_VERDICT_STYLE.get(t.get('verdict'), ('', ':material/help:'))[1]} "
            f"{t.get('title', k)}"
            for k, t in compat.items()
        ],
        key=f"{key}.tabs",
    )
    for tab, (k, t) in zip(tabs, compat.items()):
        with tab:
            _target_reasons(k, t, set(shared))
    show_runs(report, key=f"{key}.runs")


def _target_reasons(key: str, t: dict[str, Any], said: set[str]) -> None:
    st.caption(web_md(t.get("summary") or ""))
    for r in t.get("model_reasons") or []:
        cause = cause_of(f"{r.get('message', '')} {r.get('hint', '')}")
        if cause in said:
            st.caption(f"Whole model: {web_md(r.get('message', ''))} (see above).")
        else:
            _reason(r)
    bad = {op: s for op, s in (t.get("by_op") or {}).items() if s.get("reasons")}
    for op, s in sorted(bad.items(), key=lambda kv: _rank(kv[1].get("verdict"))):
        c, _ = _VERDICT_STYLE.get(s.get("verdict"), ("gray", ""))
        msgs = _unique(r.get("message", "") for r in s.get("reasons") or [])
        hints = _unique(r.get("hint", "") for r in s.get("reasons") or [] if r.get("hint"))
        # op names, tensor names and the messages quoting them come from the model
        st.markdown(
            f":{c}[**{md(op)}**] ×{s.get('count', 1)}: "
            + "; ".join(md(m) for m in msgs[:4])
            + (f" (+{len(msgs) - 4} more)" if len(msgs) > 4 else "")
            + "".join(f"  \n  *Fix:* {web_md(h, hint=True)}" for h in hints[:2])
        )
    details = t.get("details") or {}
    if key == "micro" and details.get("arena_bytes"):
        st.caption(
            f"Loaded and run once in the TFLite Micro interpreter; tensor arena "
            f"{human_bytes(details['arena_bytes'])}."
        )
    if not bad and not t.get("model_reasons"):
        st.markdown(":green[Every operator is supported here.]")
    if t.get("source"):
        st.caption(f"Rules from {md(t['source'])}")


def _rank(v: str | None) -> int:
    return {"unsupported": 0, "partial": 1, "supported": 2}.get(v or "", 3)


def _unique(items: Any) -> list[str]:
    out: list[str] = []
    for i in items:
        if i and i not in out:
            out.append(i)
    return out


def _reason(r: dict[str, Any]) -> None:
    c, _ = _VERDICT_STYLE.get(r.get("severity"), ("gray", ""))
    st.markdown(
        f":{c}[**Whole model:**] {web_md(r.get('message', ''))}"
        + (f"  \n*Fix:* {web_md(r['hint'], hint=True)}" if r.get("hint") else "")
    )


def show_charts(report: dict[str, Any], *, key: str) -> None:
    c1, c2 = st.columns(2)
    c1.plotly_chart(charts.op_histogram(report), key=f"{key}.ops", config=_PLOTLY_CONFIG)
    c2.plotly_chart(charts.quantization_coverage(report), key=f"{key}.quant", config=_PLOTLY_CONFIG)
    c3, c4 = st.columns([2, 1])
    c3.plotly_chart(charts.size_treemap(report), key=f"{key}.treemap", config=_PLOTLY_CONFIG)
    c4.plotly_chart(charts.weights_by_dtype(report), key=f"{key}.dtype", config=_PLOTLY_CONFIG)


def _yes_no(v: Any) -> str:
    return "" if v is None else "yes" if v else "no"


def _shape(s: Any) -> str:
    return "×".join(str(d) for d in s) if s else "scalar"


def _quant(q: dict[str, Any] | None) -> str:
    if not q or not q.get("scales"):
        return ""
    sc, zp = q["scales"], q.get("zero_points") or []
    if len(sc) == 1:
        return f"scale {float(sc[0]):.6g}, zero point {zp[0] if zp else 0}"
    return f"per-channel ({len(sc)} scales, axis {q.get('quantized_dimension', 0)})"


def _io_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "name": t.get("name"),
            "shape": _shape(t.get("shape")),
            "shape (dynamic = -1)": _shape(t.get("shape_signature") or t.get("shape")),
            "type": t.get("dtype"),
            "quantization": _quant(t.get("quantization")),
        }
        for t in items
    ]


def show_tables(report: dict[str, Any], *, key: str) -> None:
    tabs = st.tabs(["Inputs & outputs", "Signatures", "Tensors", "Operators", "Metadata"])
    with tabs[0]:
        st.markdown("**Inputs**")
        st.dataframe(
            _io_rows(report.get("inputs") or []),
            hide_index=True,
            width="stretch",
            key=f"{key}.inputs",
        )
        st.markdown("**Outputs**")
        st.dataframe(
            _io_rows(report.get("outputs") or []),
            hide_index=True,
            width="stretch",
            key=f"{key}.outputs",
        )
    with tabs[1]:
        sigs = report.get("signatures") or []
        if not sigs:
            st.caption("This model has no signatures (older converters did not write them).")
        st.dataframe(
            [
                {
                    "signature": s.get("key"),
                    "subgraph": s.get("subgraph"),
                    "inputs": ", ".join(s.get("inputs") or {}),
                    "outputs": ", ".join(s.get("outputs") or {}),
                }
                for s in sigs
            ],
            hide_index=True,
            width="stretch",
            key=f"{key}.sigs",
        )
    with tabs[2]:
        rows = [
            {
                "subgraph": t["subgraph"],
                "index": t["index"],
                "name": t.get("name"),
                "shape": _shape(t.get("shape")),
                "type": t.get("dtype"),
                "bytes": t.get("bytes") or 0,
                "constant": bool(t.get("constant")),
                "quantization": _quant(t.get("quantization")),
                "sparse": bool(t.get("sparse")),
            }
            for t in report.get("tensors") or []
        ]
        st.dataframe(
            rows,
            hide_index=True,
            width="stretch",
            key=f"{key}.tensors",
            column_config={"bytes": st.column_config.NumberColumn(format="%d")},
        )
    with tabs[3]:
        st.dataframe(
            [
                {
                    "subgraph": o["subgraph"],
                    "index": o["index"],
                    "operator": o["op"],
                    "kind": o.get("kind"),
                    "version": o.get("version"),
                    "fused activation": o.get("fused_activation") or "",
                }
                for o in report.get("operators") or []
            ],
            hide_index=True,
            width="stretch",
            key=f"{key}.operators",
        )
    with tabs[4]:
        meta = report.get("metadata") or {}
        conv = meta.get("conversion") or {}
        rows = [
            {"field": "file", "value": (report.get("file") or {}).get("name", "")},
            {"field": "sha256", "value": (report.get("file") or {}).get("sha256", "")},
            {"field": "minimum runtime version", "value": meta.get("min_runtime_version") or ""},
            {"field": "description", "value": (report.get("model") or {}).get("description") or ""},
        ]
        if conv:
            rows += [
                {"field": "TensorFlow version", "value": conv.get("tensorflow_version") or ""},
                {
                    "field": "optimizations",
                    "value": ", ".join(conv.get("optimization_modes") or []) or "none",
                },
                {"field": "Select TF ops", "value": _yes_no(conv.get("enable_select_tf_ops"))},
                {"field": "custom ops allowed", "value": _yes_no(conv.get("allow_custom_ops"))},
            ]
        rows += [
            {"field": f"metadata: {e.get('name')}", "value": human_bytes(e.get("size_bytes"))}
            for e in meta.get("entries") or []
        ]
        st.dataframe(rows, hide_index=True, width="stretch", key=f"{key}.meta")


def show_report(job: jobs.Job, *, key: str, fix_shapes: FixShapes | None = None) -> None:
    """The whole report of a finished job: numbers, downloads, verdicts, charts,
    graph, tables — in that order. Warnings come once per cause."""
    from ui.job_view import show_warnings

    report = load_report(job)
    if report is None:
        st.warning(
            "This job's report is missing; it may have been cleaned up.", icon=":material/warning:"
        )
        return
    show_headline(job, report)
    warnings = ((job.result or {}).get("conversion") or {}).get("warnings") or []
    # the dynamic-shapes warning is said with the targets it keeps the model from
    dynamic_said = bool(_shared_causes(report.get("compatibility") or {}).get(DYNAMIC))
    show_warnings(
        [w for w in warnings if not (dynamic_said and cause_of(w) == DYNAMIC)],
        key=f"{key}.warnings",
        fix_shapes=fix_shapes,
    )
    show_downloads(job, key=f"{key}.dl")
    st.subheader("Where it runs")
    show_compatibility(report, key=f"{key}.compat", fix_shapes=fix_shapes)
    st.subheader("What is inside")
    show_charts(report, key=f"{key}.charts")
    st.subheader("Graph")
    show_graph(job.id, _name(job, "tflite"))
    st.subheader("Details")
    show_tables(report, key=f"{key}.tables")
