"""The Compare page's pieces: submit a sweep, draw its results
(``ui.compare_table``: the recommendation, the table, the failures), the
Pareto chart and the downloads, re-convert keeping the worst layers in float
(``ui.compare_layers``), diff two results, and a single check of a converted
model.

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

from core.options import PRESETS, Preset
from core.server import jobs
from ui import compare_charts, compare_layers
from ui.compare_layers import show_diff, show_diff_result
from ui.compare_table import (
    METRIC_HELP,
    in_unit,
    show_failures,
    show_recommendation,
    show_table,
    size_unit,
)
from ui.errors import show_error
from ui.format import download_name, md
from ui.identity import current_user
from ui.words import web_md

__all__ = [
    "submit_sweep",
    "submit_reconvert",
    "show_recommendation",
    "show_table",
    "show_failures",
    "show_pareto",
    "show_layers",
    "show_layers_job",
    "show_reconvert_result",
    "show_evaluation",
    "show_diff",
    "show_diff_result",
    "show_downloads",
    "row_label",
    "row_file_name",
]


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
        return _admit(jobs.JobKind.SWEEP, model, model_name, params, dict(named))


def _admit(
    kind: jobs.JobKind, model: Path, name: str, params: dict[str, Any], files: dict[str, Any]
) -> jobs.Job:
    """Queue a job; the identical one still queued or running is the answer."""
    st_ = jobs.store()
    admitted = st_.intake.admit(
        kind,
        model,
        model_name=name,
        params=params,
        user=current_user(),
        extra_files=files,
        dedupe=True,
    )
    return st_.get(admitted.job_id)


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
        return _admit(
            jobs.JobKind.EVALUATE,
            jobs.artifact_path(sweep_job.input_sha),
            sweep_job.model_name,
            params,
            dict(named),
        )


# ---------------------------------------------------------------- words


def row_label(row: dict[str, Any]) -> str:
    try:
        title = PRESETS[Preset(row["preset"])].title
    except (ValueError, KeyError):
        return str(row.get("label", "?"))
    extra = row["label"][len(row["preset"]) :].strip(", ") if row.get("label") else ""
    return f"{row['label']} — {title}" + (f" ({extra})" if extra else "")


def row_file_name(model_name: str, row: dict[str, Any]) -> str:
    """``digits-int8-float-io-keepfloat3.tflite``: the preset and the options that
    change the result, as every download is named."""
    preset = row.get("preset") if row.get("preset") != "given" else None
    if preset is None:
        return str(row.get("label") or "model.tflite")
    return download_name(model_name, str(preset), "tflite", row.get("options"))


# ---------------------------------------------------------------- results


def show_pareto(report: dict[str, Any], *, key: str) -> None:
    st.plotly_chart(compare_charts.pareto_chart(report), key=f"{key}.pareto", width="stretch")
    st.caption(
        "Each dot is one preset: further left is smaller, lower is faster, greener agrees "
        "more with the original. Ringed dots are the best trade-offs: no other preset is "
        "smaller, faster and at least as accurate at once. The star is the recommendation."
    )


def show_downloads(job: jobs.Job, report: dict[str, Any], *, key: str) -> None:
    rows = [r for r in report.get("rows") or [] if r.get("artifact_sha")]
    with st.container(horizontal=True, vertical_alignment="bottom"):
        if rows:
            labels = [r["label"] for r in rows]
            rec = (report.get("recommendation") or {}).get("label")
            pick = st.selectbox(
                "Download a converted model",
                labels,
                index=labels.index(rec) if rec in labels else 0,
                key=f"{key}.pick",
                width=320,
            )
            row = rows[labels.index(pick)]
            row_sha = str(row["artifact_sha"])
            st.download_button(
                "Download .tflite",
                data=lambda: jobs.read_artifact(row_sha),
                file_name=row_file_name(job.model_name, row),
                mime="application/octet-stream",
                type="primary",
                icon=":material/download:",
                key=f"{key}.tflite",
                on_click="ignore",
            )
        st.download_button(
            "Comparison report (JSON)",
            data=lambda: json.dumps(report, indent=2),
            file_name=download_name(job.model_name, "sweep", "json"),
            mime="application/json",
            icon=":material/data_object:",
            key=f"{key}.json",
            on_click="ignore",
        )


def show_layers(job: jobs.Job, report: dict[str, Any], *, key: str) -> str | None:
    """The sweep's per-layer error; the id of a re-conversion submitted now, else None."""
    return compare_layers.show_layers(
        job, list(report.get("layer_errors") or []), key=key, submit=submit_reconvert
    )


def show_layers_job(job: jobs.Job, *, key: str) -> str | None:
    return compare_layers.show_layers_job(job, key=key, submit=submit_reconvert)


def _pct(v: Any) -> str:
    return f"{v:.1%}" if isinstance(v, (int, float)) else "not measured"


def _row_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as words, sizes in one unit, nothing shown as None."""
    unit = size_unit([r.get("size_bytes") for r in rows])
    table = []
    for r in rows:
        m = r.get("metrics") or {}
        snr = m.get("snr_db")
        lat = r.get("latency_ms")
        table.append(
            {
                "model": r.get("label", ""),
                f"size ({unit[0]})": in_unit(r["size_bytes"], unit).rsplit(" ", 1)[0]
                if isinstance(r.get("size_bytes"), (int, float))
                else "not converted",
                "latency (ms)": f"{lat:.3g}" if isinstance(lat, (int, float)) else "not timed",
                "same answer as original": _pct(m.get("top1_agreement")),
                "accuracy": _pct(m.get("accuracy")),
                "output similarity": f"{m['cosine']:.4f}"
                if isinstance(m.get("cosine"), (int, float))
                else "not measured",
                "signal-to-noise (dB)": f"{snr:.1f}"
                if isinstance(snr, (int, float))
                else ("identical" if m else "not measured"),
            }
        )
    return table


def _row_columns() -> dict[str, Any]:
    return {
        "same answer as original": st.column_config.TextColumn(help=METRIC_HELP["agreement"]),
        "accuracy": st.column_config.TextColumn(help=METRIC_HELP["accuracy"]),
        "output similarity": st.column_config.TextColumn(help=METRIC_HELP["similarity"]),
        "signal-to-noise (dB)": st.column_config.TextColumn(help=METRIC_HELP["snr"]),
        "latency (ms)": st.column_config.TextColumn(help=METRIC_HELP["latency"]),
    }


def _row_details(job: jobs.Job, row: dict[str, Any], res: dict[str, Any], key: str) -> None:
    if row.get("error"):
        show_error(row["error"], title=f"{row.get('label', '')}: {row.get('failed_step')} failed.")
    elif row.get("note"):
        st.caption(web_md(row["note"]))
    for w in row.get("warnings") or []:
        st.warning(web_md(w), icon=":material/warning:")
    sha = res.get("output_sha") or row.get("artifact_sha")
    if sha:
        st.download_button(
            "Download this .tflite",
            data=lambda: jobs.read_artifact(str(sha)),
            file_name=row_file_name(job.model_name, row),
            mime="application/octet-stream",
            icon=":material/download:",
            key=f"{key}.dl.{job.id}",
            on_click="ignore",
        )


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
        if r.get("preset") in ("float32", "int8", "int8-float-io") and r.get("metrics")
    ]
    st.dataframe(
        _row_table([*compare, row]), hide_index=True, width="stretch", column_config=_row_columns()
    )
    _row_details(eval_job, row, res, "compare.reconvert")


def show_evaluation(job: jobs.Job) -> None:
    """A single check (``JobKind.EVALUATE``): a converted model against the original."""
    res = job.result or {}
    row = res.get("row") or {}
    m = row.get("metrics") or {}
    verdict = {"good": "✅ good", "check": "⚠️ check", "bad": "❌ bad"}.get(str(m.get("verdict")))
    st.success(
        f"Checked **{md(row.get('label') or job.model_name)}** against **{md(job.model_name)}**"
        + (f" on {int(m['samples'])} samples" if isinstance(m.get("samples"), int) else "")
        + (f": {verdict}." if verdict else "."),
        icon=":material/check_circle:",
    )
    st.dataframe(_row_table([row]), hide_index=True, width="stretch", column_config=_row_columns())
    _row_details(job, row, res, "compare.evaluation")
