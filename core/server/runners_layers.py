"""Runners of the job kinds added after the first five: ``LAYERS`` (the
per-layer quantization error of one int8 conversion) and ``SIGNATURE`` (an
upload's signatures and input shapes, for the Convert form). Registered in
``core.server.runners.RUNNERS``."""

from __future__ import annotations

import json
from typing import Any

from core.pipeline.layers import DEFAULT_DEBUG_SAMPLES, debug_layers
from core.pipeline.signature import read_signature
from core.server.context import JobContext

__all__ = ["run_layers", "run_signature"]


def run_layers(ctx: JobContext) -> dict[str, Any]:
    """JobKind.LAYERS: params ``options`` (preset int8 or int8-float-io) and
    ``max_samples``; files ``calibration`` and ``eval`` (the inputs measured;
    without it the calibration samples)."""
    p = ctx.job.params
    eval_file = ctx.file("eval")
    report = debug_layers(
        ctx.input_path,
        ctx.options(),
        debug_data=eval_file,
        max_samples=int(p.get("max_samples") or DEFAULT_DEBUG_SAMPLES),
        workdir=ctx.workdir / "layers",
        display_name=ctx.job.model_name,
        ctx=ctx.run_context,
    )
    ctx.progress("Saving the report")
    data = report.to_dict()
    report_sha, _ = ctx.store.put_artifact(json.dumps(data, indent=2).encode())
    return {"layers": data, "report_sha": report_sha}


def run_signature(ctx: JobContext) -> dict[str, Any]:
    """JobKind.SIGNATURE: the upload's signatures, inputs and suggested static shapes."""
    result = read_signature(
        ctx.input_path,
        display_name=ctx.job.model_name,
        workdir=ctx.workdir / "signature",
        ctx=ctx.run_context,
    )
    return {"signature": result.to_dict()}
