"""Runners of ``OPTIMIZE`` (a ``.tflite`` quantized with a recipe, or a sweep
over every recipe) and ``DEPLOY`` (its deploy kit). Registered in
``core.server.runners.RUNNERS``."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import StudioError
from core.pipeline.deploy import build_deploy_kit, kit_name
from core.pipeline.inspect import inspect_file
from core.pipeline.optimize import optimize_file, optimized_name
from core.pipeline.optimize_sweep import BASELINE_LABEL, optimize_sweep
from core.server.context import JobContext
from core.server.optimize_jobs import recipe_of
from core.tasks.deploy import TARGETS
from core.tasks.sweep import SweepReport

__all__ = ["run_optimize", "run_deploy"]

log = logging.getLogger("tflite_studio.jobs")


def _reports(ctx: JobContext, tflite: Path, sha: str) -> dict[str, Any]:
    """The optimized file's report (every format), as for a conversion."""
    try:
        done = inspect_file(
            tflite, out_dir=ctx.workdir / "report", sha256=sha, ctx=ctx.run_context.quiet()
        )
    except StudioError as e:  # the .tflite is still good; say why there is no report
        log.warning("job %s: report failed: %s", ctx.job.id, e)
        return {"report_error": e.to_dict()}
    shas = {}
    for fmt, key in (("json", "report_sha"), ("md", "report_md_sha"), ("html", "report_html_sha")):
        shas[key], _ = ctx.store.put_artifact(done.path(fmt))
    return shas


def _run_sweep(ctx: JobContext) -> dict[str, Any]:
    p = ctx.job.params
    cal = ctx.file("calibration")
    report = optimize_sweep(
        ctx.input_path,
        calibration_data=cal,
        eval_data=ctx.file("eval"),
        keep_dir=ctx.workdir / "models",
        display_name=ctx.job.model_name,
        workdir=ctx.workdir / "sweep",
        ctx=ctx.run_context,
        runs=int(p.get("runs") or 30),
    )
    rows = []
    for r in report.rows:
        if r.tflite_path and Path(r.tflite_path).is_file():
            sha, _ = ctx.store.put_artifact(r.tflite_path)
            r = replace(r, artifact_sha=sha, tflite_path=None)
        elif r.label == BASELINE_LABEL:
            r = replace(r, artifact_sha=ctx.job.input_sha)  # the input itself
        rows.append(r)
    report = replace(report, rows=tuple(rows))
    data = report.to_dict()
    ctx.progress("Saving the report")
    report_sha, _ = ctx.store.put_artifact(json.dumps(data, indent=2).encode())
    rec = _recommended(report)
    return {
        "sweep": data,
        "report_sha": report_sha,
        "output_sha": rec.artifact_sha if rec else None,
        "output_size": rec.size_bytes if rec else None,
    }


def _recommended(report: SweepReport) -> Any:
    label = report.recommendation.label
    return report.row(label) if label else None


def run_optimize(ctx: JobContext) -> dict[str, Any]:
    """JobKind.OPTIMIZE: params ``recipe`` (a ``RecipeChoice`` dict), ``mode``
    (recipe | sweep), ``calibration_samples``, ``image_range``, ``signature``;
    files ``calibration`` and ``eval``."""
    p = ctx.job.params
    if p.get("mode") == "sweep":
        return _run_sweep(ctx)
    choice = recipe_of(p)
    out = ctx.workdir / optimized_name(ctx.job.model_name, choice)
    lo, hi = (p.get("image_range") or [0.0, 1.0])[:2]
    result = optimize_file(
        ctx.input_path,
        out,
        choice,
        calibration_data=ctx.file("calibration"),
        calibration_samples=int(p.get("calibration_samples") or 100),
        image_range=(float(lo), float(hi)),
        eval_data=ctx.file("eval"),
        signature_key=p.get("signature") or None,
        display_name=ctx.job.model_name,
        workdir=ctx.workdir / "optimize",
        ctx=ctx.run_context,
    )
    out_sha, out_size = ctx.store.put_artifact(out)
    ctx.progress("Building the report")
    data = result.to_dict()
    data.get("extra", {}).pop("output_path", None)
    return {
        "optimize": data,
        "output_sha": out_sha,
        "output_size": out_size,
        **_reports(ctx, out, out_sha),
    }


def run_deploy(ctx: JobContext) -> dict[str, Any]:
    """JobKind.DEPLOY: params ``targets`` and ``origin`` (how the model was
    made, for the kit's README); the job's input is the ``.tflite``."""
    p = ctx.job.params
    targets = tuple(t for t in TARGETS if t in (p.get("targets") or TARGETS))
    out = ctx.workdir / kit_name(ctx.job.model_name)
    result = build_deploy_kit(
        ctx.input_path,
        out,
        targets=targets,
        origin=str(p.get("origin") or ""),
        display_name=ctx.job.model_name,
        workdir=ctx.workdir / "deploy",
        ctx=ctx.run_context,
    )
    kit_sha, kit_size = ctx.store.put_artifact(out)
    return {
        "deploy": result.to_dict(),
        "kit_sha": kit_sha,
        "kit_size": kit_size,
        "kit_name": out.name,
        "output_sha": ctx.job.input_sha,
        "output_size": ctx.job.input_size,
    }
