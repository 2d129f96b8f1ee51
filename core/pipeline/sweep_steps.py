"""Two steps of a sweep, each a worker task per row: measuring one converted
row (accuracy, then latency), and the per-layer error of the integer presets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import Cancelled, StudioError
from core.options import ConversionOptions, Preset
from core.pipeline.benchmark import benchmark, headline_latency
from core.pipeline.evaluate import evaluate_tflite
from core.pipeline.isolation import RunContext, check_cancel
from core.pipeline.layers import compare_layers, debug_layers
from core.tasks.results import Flag, Reference
from core.tasks.sweep import SweepRequest, SweepRow

__all__ = ["measure_row", "layer_reports"]


def measure_row(
    row: SweepRow, tflite: Path, ref: Reference, req: SweepRequest, wd: Path, ctx: RunContext
) -> SweepRow:
    """The row with its accuracy and latency, or the error of the step that failed."""
    quiet = ctx.quiet()
    ctx.say(f"Measuring accuracy of {row.label}")
    try:
        acc = evaluate_tflite(
            tflite,
            ref,
            workdir=wd / "eval",
            preset=row.preset,
            thresholds=req.thresholds,
            ctx=quiet,
        )
    except Cancelled:
        raise
    except StudioError as e:
        note = (
            "Cannot run here: " if e.details.get("cannot_run_here") else "Could not be measured: "
        ) + e.message
        return replace(row, error=e.to_dict(), failed_step="evaluate", note=note)
    row = replace(row, metrics=acc.summary, accuracy=acc.to_dict(), note=acc.verdict_text)
    ctx.say(f"Timing {row.label}")
    try:
        lat = benchmark(
            tflite,
            threads=req.threads,
            runs=req.runs,
            warmup=req.warmup,
            sample_npz=ref.npz_path,
            workdir=wd / "bench",
            ctx=quiet,
        )
    except Cancelled:
        raise
    except StudioError as e:
        return replace(
            row,
            error=e.to_dict(),
            failed_step="benchmark",
            note=row.note + " Latency could not be measured: " + e.message,
        )
    first = headline_latency(lat, req.threads)
    return replace(
        row, latency_ms=first.p50_ms, latency_threads=first.threads, latency=lat.to_dict()
    )


def layer_reports(
    model: Path,
    name: str,
    plans: list[ConversionOptions],
    paths: dict[str, Path],
    ref: Reference,
    base: ConversionOptions,
    wd: Path,
    ctx: RunContext,
    flags: list[Flag],
) -> list[dict[str, Any]]:
    """int8 (the debugger; it also stands for int8-float-io) and int16x8
    (tensor by tensor against float32). A failure is a flag, not a failed sweep."""
    out: list[dict[str, Any]] = []
    plain = {p.preset.value for p in plans if not p.keep_float_ops}
    int8 = next(
        (p for p in (Preset.INT8_FLOAT_IO.value, Preset.INT8.value) if p in plain and p in paths),
        None,
    )
    quiet = ctx.quiet()
    if int8 is not None:
        check_cancel(ctx)
        ctx.say("Measuring the quantization error of each layer (int8)")
        try:
            rep = debug_layers(
                model,
                replace(base, preset=Preset(int8)),
                debug_npz=ref.npz_path,
                workdir=wd / "layers-int8",
                display_name=name,
                ctx=quiet,
            )
            out.append(rep.to_dict())
        except Cancelled:
            raise
        except StudioError as e:
            flags.append(
                Flag(
                    "layer_errors_failed",
                    "warning",
                    "The per-layer error of int8 could not be measured: " + e.message,
                )
            )
    f32 = paths.get(Preset.FLOAT32.value)
    i16 = paths.get(Preset.INT16X8.value)
    if f32 is not None and i16 is not None and Preset.INT16X8.value in plain:
        check_cancel(ctx)
        ctx.say("Measuring the quantization error of each layer (int16x8)")
        try:
            rep = compare_layers(
                f32, i16, ref, preset=Preset.INT16X8.value, workdir=wd / "layers-int16", ctx=quiet
            )
            out.append(rep.to_dict())
        except Cancelled:
            raise
        except StudioError as e:
            if not e.details.get("cannot_run_here"):
                flags.append(
                    Flag(
                        "layer_errors_failed",
                        "warning",
                        "The per-layer error of int16x8 could not be measured: " + e.message,
                    )
                )
    return out
