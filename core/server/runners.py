"""What each kind of job does: a runner per ``JobKind`` that calls the
pipeline with the job's files and options, stores what it made as artifacts
and returns the job's result record."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import JobError, StudioError
from core.options import ConversionOptions
from core.pipeline.benchmark import benchmark, headline_latency
from core.pipeline.convert import convert_model
from core.pipeline.diff import diff_files
from core.pipeline.evaluate import compute_reference, evaluate_tflite
from core.pipeline.inspect import inspect_file
from core.pipeline.sweep import sweep
from core.server.context import JobContext, Runner
from core.server.records import JobKind
from core.server.runners_layers import run_layers, run_signature
from core.server.runners_optimize import run_deploy, run_optimize
from core.tasks.sweep import SweepReport, SweepRequest, SweepRow

__all__ = ["JobContext", "RUNNERS", "Runner"]

log = logging.getLogger("tflite_studio.jobs")


# ---------------------------------------------------------------- convert, inspect


def _run_convert(ctx: JobContext) -> dict[str, Any]:
    options = ctx.options()
    out = ctx.workdir / ctx.job.output_name  # the report names the file
    result = convert_model(
        ctx.input_path,
        out,
        options,
        workdir=ctx.workdir / "convert",
        display_name=ctx.job.model_name,
        ctx=ctx.run_context,
    )
    out_sha, out_size = ctx.store.put_artifact(out)
    ctx.progress("Building the report")
    res: dict[str, Any] = {
        "conversion": result.to_dict(),
        "output_sha": out_sha,
        "output_size": out_size,
        "report_sha": None,
    }
    try:
        res.update(_store_report(ctx, out, out_sha, result.input_kind, result.input_size))
    except StudioError as e:  # the .tflite is still good; say why there is no report
        log.warning("job %s: report failed: %s", ctx.job.id, e)
        res["report_error"] = e.to_dict()
    return res


def _store_report(
    ctx: JobContext, tflite: Path, sha: str, kind: str | None, size: int | None
) -> dict[str, str]:
    """The report, built and rendered by sandboxed workers, stored in each format."""
    done = inspect_file(
        tflite,
        out_dir=ctx.workdir / "report",
        source_kind=kind,
        source_size=size,
        sha256=sha,
        ctx=ctx.run_context.quiet(),
    )
    shas = {}
    for fmt, key in (("json", "report_sha"), ("md", "report_md_sha"), ("html", "report_html_sha")):
        shas[key], _ = ctx.store.put_artifact(done.path(fmt))
    return shas


def _run_inspect(ctx: JobContext) -> dict[str, Any]:
    ctx.progress("Reading the FlatBuffer")
    shas = _store_report(ctx, ctx.input_path, ctx.job.input_sha, None, None)
    return {
        "output_sha": ctx.job.input_sha,
        "output_size": ctx.job.input_size,
        **shas,
    }


# ---------------------------------------------------------------- sweep, evaluate


def _store_rows(ctx: JobContext, report: SweepReport) -> SweepReport:
    rows = []
    for r in report.rows:
        if r.tflite_path and Path(r.tflite_path).is_file():
            sha, _ = ctx.store.put_artifact(r.tflite_path)
            r = replace(r, artifact_sha=sha, tflite_path=None)
        else:
            r = replace(r, tflite_path=None)
        rows.append(r)
    return replace(report, rows=tuple(rows))


def _sweep_request(ctx: JobContext, **changes: Any) -> SweepRequest:
    p = ctx.job.params
    eval_file = ctx.file("eval")
    req = SweepRequest(
        model_path=str(ctx.input_path),
        presets=tuple(p["presets"]) if p.get("presets") else None,
        variants=tuple(ConversionOptions.from_dict(v) for v in p.get("variants") or ()),
        options=ctx.options(),
        eval_data=str(eval_file) if eval_file else None,
        threads=tuple(p.get("threads") or (1,)),
        runs=int(p.get("runs", 50)),
        task=str(p.get("task") or "auto"),
        layer_errors=bool(p.get("layer_errors", True)),
        layers=str(p.get("layers") or "auto"),
        keep_worst=int(p.get("keep_worst") or 0),
        workdir=str(ctx.workdir / "sweep"),
        keep_dir=str(ctx.workdir / "models"),
        display_name=ctx.job.model_name,
    )
    return replace(req, **changes)


def _run_sweep(ctx: JobContext) -> dict[str, Any]:
    """JobKind.SWEEP: params ``presets``, ``variants``, ``options``, ``threads``,
    ``runs``, ``task``, ``layer_errors``, ``keep_worst``; files ``calibration``,
    ``eval``."""
    report = _store_rows(ctx, sweep(_sweep_request(ctx), ctx.run_context))
    ctx.progress("Saving the report")
    data = report.to_dict()
    report_sha, _ = ctx.store.put_artifact(json.dumps(data, indent=2).encode())
    rec = report.row(report.recommendation.label) if report.recommendation.label else None
    return {
        "sweep": data,
        "report_sha": report_sha,
        "output_sha": rec.artifact_sha if rec else None,
        "output_size": rec.size_bytes if rec else None,
    }


def _run_evaluate(ctx: JobContext) -> dict[str, Any]:
    """JobKind.EVALUATE: one conversion (``options``), or a given ``tflite``
    file, checked against the original: a single sweep row. Used by the
    "re-convert keeping the worst layers in float" button."""
    p = ctx.job.params
    given = ctx.file("tflite")
    if given is None:
        variant = ConversionOptions.from_dict(dict(p.get("options") or {}))
        req = _sweep_request(ctx, presets=(), variants=(variant,), layer_errors=False, keep_worst=0)
        report = _store_rows(ctx, sweep(req, ctx.run_context))
        row = report.rows[0] if report.rows else None
        return {
            "row": row.to_dict() if row else None,
            "sweep": report.to_dict(),
            "output_sha": row.artifact_sha if row else None,
            "output_size": row.size_bytes if row else None,
        }
    rc = ctx.run_context
    eval_file = ctx.file("eval")
    ref = compute_reference(
        ctx.input_path,
        workdir=ctx.workdir / "ref",
        eval_data=eval_file,
        options=ctx.options(),
        task=str(p.get("task") or "auto"),
        display_name=ctx.job.model_name,
        ctx=rc,
    )
    ctx.progress(f"Measuring accuracy of {given.name}")
    acc = evaluate_tflite(given, ref, workdir=ctx.workdir / "eval", ctx=rc.quiet())
    ctx.progress(f"Timing {given.name}")
    threads = tuple(p.get("threads") or (1,))
    lat = benchmark(
        given,
        threads=threads,
        runs=int(p.get("runs", 50)),
        sample_npz=ref.npz_path,
        workdir=ctx.workdir / "bench",
        ctx=rc.quiet(),
    )
    first = headline_latency(lat, threads)  # comparable with the sweep's rows
    row = SweepRow(
        preset="given",
        label=given.name,
        size_bytes=given.stat().st_size,
        latency_ms=first.p50_ms,
        latency_threads=first.threads,
        metrics=acc.summary,
        accuracy=acc.to_dict(),
        latency=lat.to_dict(),
        note=acc.verdict_text,
        artifact_sha=p["files"]["tflite"]["sha"],
    )
    return {"row": row.to_dict(), "accuracy": acc.to_dict(), "latency": lat.to_dict()}


def _run_diff(ctx: JobContext) -> dict[str, Any]:
    """JobKind.DIFF: the job's input (A) against its file ``b``; ``params``
    may give display names ``name_a`` / ``name_b``."""
    p = ctx.job.params
    b = ctx.file("b")
    if b is None:
        raise JobError("A diff needs a second .tflite file.", "Send it as the 'b' file.")
    res = diff_files(
        ctx.input_path,
        b,
        name_a=str(p.get("name_a") or ctx.job.model_name),
        name_b=str(p.get("name_b") or b.name),
        workdir=ctx.workdir / "diff",
        ctx=ctx.run_context,
    )
    report_sha, _ = ctx.store.put_artifact(json.dumps(res.diff, indent=2).encode())
    return {"diff": res.diff, "text": res.text, "md": res.md, "report_sha": report_sha}


RUNNERS: dict[JobKind, Runner] = {
    JobKind.CONVERT: _run_convert,
    JobKind.INSPECT: _run_inspect,
    JobKind.SWEEP: _run_sweep,
    JobKind.EVALUATE: _run_evaluate,
    JobKind.DIFF: _run_diff,
    JobKind.LAYERS: run_layers,
    JobKind.SIGNATURE: run_signature,
    JobKind.OPTIMIZE: run_optimize,
    JobKind.DEPLOY: run_deploy,
}
