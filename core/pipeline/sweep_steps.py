"""Steps of a sweep for one row: measuring it alone (accuracy, then latency;
when the measuring batch could not), putting a batch's measurement into its
row, and the int8 quantization debugger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import Cancelled, StudioError
from core.options import ConversionOptions, Preset
from core.pipeline.benchmark import benchmark, headline_latency
from core.pipeline.evaluate import evaluate_tflite
from core.pipeline.isolation import RunContext, check_cancel
from core.pipeline.layers import compare_layers, debug_layers
from core.tasks.batch import MeasuredItem
from core.tasks.layers import LayerErrorReport
from core.tasks.results import AccuracyResult, Flag, LatencyResult, Reference
from core.tasks.sweep import SweepRequest, SweepRow

__all__ = ["measure_row", "apply_measured", "debug_int8"]


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


def apply_measured(row: SweepRow, m: MeasuredItem, threads: tuple[int, ...]) -> SweepRow:
    """The row with what the measuring batch found (or the step that failed)."""
    if m.accuracy is None:
        err = m.error or {}
        note = (
            "Cannot run here: "
            if err.get("details", {}).get("cannot_run_here")
            else "Could not be measured: "
        ) + str(err.get("message", ""))
        return replace(row, error=err, failed_step=m.failed_step or "evaluate", note=note)
    acc = AccuracyResult.from_dict(m.accuracy)
    row = replace(row, metrics=acc.summary, accuracy=m.accuracy, note=acc.verdict_text)
    if m.latency is None:
        err = m.error or {}
        return replace(
            row,
            error=err,
            failed_step="benchmark",
            note=row.note + " Latency could not be measured: " + str(err.get("message", "")),
        )
    lat = LatencyResult.from_dict(m.latency)
    first = headline_latency(lat, threads)
    return replace(row, latency_ms=first.p50_ms, latency_threads=first.threads, latency=m.latency)


def _layers_or_flag(
    what: str, flags: list[Flag], ctx: RunContext, run: Callable[[], LayerErrorReport]
) -> dict[str, Any] | None:
    """One per-layer measurement; a failure is a flag, not a failed sweep."""
    check_cancel(ctx)
    ctx.say(f"Measuring the quantization error of each layer ({what})")
    try:
        return run().to_dict()
    except Cancelled:
        raise
    except StudioError as e:
        flags.append(
            Flag(
                "layer_errors_failed",
                "warning",
                f"The per-layer error of {what} could not be measured: " + e.message,
            )
        )
        return None


def debug_int8(
    model: Path,
    name: str,
    preset: str,
    base: ConversionOptions,
    ref: Reference | None,
    wd: Path,
    ctx: RunContext,
    flags: list[Flag],
) -> dict[str, Any] | None:
    """TensorFlow's quantization debugger on the int8 build (it also stands
    for int8-float-io)."""
    if ref is None:
        return None
    return _layers_or_flag(
        "int8",
        flags,
        ctx,
        lambda: debug_layers(
            model,
            replace(base, preset=Preset(preset)),
            debug_npz=ref.npz_path,
            workdir=wd / "layers-int8",
            display_name=name,
            ctx=ctx.quiet(),
        ),
    )


def compare_int16(
    f32: Path, i16: Path, ref: Reference | None, wd: Path, ctx: RunContext, flags: list[Flag]
) -> dict[str, Any] | None:
    """int16x8 tensor by tensor against float32 (LiteRT only)."""
    if ref is None:
        return None
    return _layers_or_flag(
        "int16x8",
        flags,
        ctx,
        lambda: compare_layers(
            f32, i16, ref, preset=Preset.INT16X8.value, workdir=wd / "layers-int16", ctx=ctx.quiet()
        ),
    )
