"""Which recipe to ship for a ``.tflite``: optimize with every applicable
recipe (one worker each), evaluate each against the float file on the same
inputs, time it, and recommend one by the rule of ``core.pipeline.recommend``
(the same honest rule as the conversion sweep). The float input is a row too,
so "keep the float file" is the answer when no recipe meets the rule.

A failing recipe becomes a row with an ``error``; it never fails the sweep."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import Cancelled, StudioError
from core.options import Preset
from core.pipeline.benchmark import benchmark, headline_latency
from core.pipeline.isolation import RunContext, check_cancel, work_folder
from core.pipeline.optimize import optimize_file, optimized_name
from core.pipeline.recommend import pareto_front, recommend
from core.tasks.optimize import OptimizeResult, RecipeChoice
from core.tasks.recipes import RECIPES
from core.tasks.results import Thresholds
from core.tasks.sweep import SweepModel, SweepReport, SweepRow

__all__ = ["optimize_sweep", "sweep_recipes", "BASELINE_LABEL"]

BASELINE_LABEL = "input (float32)"


def sweep_recipes(calibration: bool, block_sizes: tuple[int, ...] = (0, 32)) -> list[RecipeChoice]:
    """Every recipe id that applies: the static ones only with calibration data."""
    out = []
    for r, info in RECIPES.items():
        if info.needs_calibration and not calibration:
            continue
        sizes = [b for b in block_sizes if b in info.block_sizes] if info.block_sizes else [0]
        out += [RecipeChoice(r.value, block_size=b) for b in sizes or [0]]
    return out


def _baseline(first: dict[str, Any], size: int, latency: float | None, threads: int) -> SweepRow:
    """The float input as a row: identical to itself on every metric."""
    m: dict[str, Any] = {k: None for k in first}
    m.update(cosine=1.0, snr_db=None, max_abs_error=0.0, mean_abs_error=0.0, rmse=0.0)
    m.update(verdict="good", samples=first.get("samples"), data_source=first.get("data_source"))
    m.update(output=first.get("output"), kind=first.get("kind"))
    if first.get("top1_agreement") is not None:
        m.update(top1_agreement=1.0, accuracy_drop=0.0)
        m.update(accuracy=first.get("accuracy_original"))
        m.update(accuracy_original=first.get("accuracy_original"))
    return SweepRow(
        preset=Preset.FLOAT32.value,
        label=BASELINE_LABEL,
        size_bytes=size,
        latency_ms=latency,
        latency_threads=threads if latency is not None else None,
        metrics=m,
        note="the file as given",
    )


def _latency(path: Path, wd: Path, runs: int, ctx: RunContext) -> tuple[float | None, str]:
    try:
        lat = benchmark(path, threads=(1,), runs=runs, workdir=wd, ctx=ctx.quiet())
    except StudioError as e:
        return None, e.message
    return headline_latency(lat, (1,)).p50_ms, ""


def _row(choice: RecipeChoice, res: OptimizeResult, latency: float | None) -> SweepRow:
    acc = res.accuracy
    return SweepRow(
        preset=choice.recipe,
        label=choice.label,
        size_bytes=res.output_size,
        latency_ms=latency,
        latency_threads=1 if latency is not None else None,
        metrics=acc.summary if acc else {},
        note=acc.verdict_text if acc else str((res.accuracy_error or {}).get("message", "")),
        warnings=res.warnings,
        conversion_seconds=res.seconds,
        sha256=res.output_sha256,
        tflite_path=str((res.extra or {}).get("output_path") or ""),
        options={"recipe": choice.to_dict()},
        accuracy=acc.to_dict() if acc else None,
        error=res.accuracy_error,
        failed_step="evaluate" if res.accuracy_error else None,
    )


def optimize_sweep(
    tflite: str | os.PathLike[str],
    *,
    recipes: list[RecipeChoice] | None = None,
    calibration_data: str | os.PathLike[str] | None = None,
    eval_data: str | os.PathLike[str] | None = None,
    runs: int = 30,
    latency: bool = True,
    keep_dir: str | os.PathLike[str] | None = None,
    thresholds: Thresholds | None = None,
    display_name: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> SweepReport:
    """Every applicable recipe on ``tflite``, with the recommendation."""
    ctx = (ctx or RunContext()).without_pool()
    th = thresholds or Thresholds()
    src = Path(os.path.abspath(tflite))
    name = display_name or src.name
    plans = recipes if recipes is not None else sweep_recipes(calibration_data is not None)
    t0 = time.perf_counter()
    with work_folder(workdir, "tflite-optimize-sweep-") as wd:
        keep = Path(keep_dir) if keep_dir else wd / "models"
        rows: list[SweepRow] = []
        for k, choice in enumerate(plans):
            check_cancel(ctx)
            ctx.say(f"Recipe {k + 1} of {len(plans)}: {choice.label}")
            rows.append(
                _try(
                    src,
                    keep,
                    choice,
                    calibration_data,
                    eval_data,
                    th,
                    name,
                    wd,
                    ctx,
                    runs if latency else 0,
                )
            )
        measured = next((r for r in rows if r.measured), None)
        base_ms = _latency(src, wd / "bench-input", runs, ctx)[0] if latency else None
        if measured is not None:
            rows.insert(0, _baseline(measured.metrics, src.stat().st_size, base_ms, 1))
        front = pareto_front(rows)
        rows = [replace(r, pareto=r.label in front) for r in rows]
        synthetic = bool(measured and measured.metrics.get("data_source") == "synthetic")
        rec = recommend(rows, th, synthetic_data=synthetic)
        return SweepReport(
            model=SweepModel(name, src.stat().st_size),
            data={
                k: (measured.metrics.get(k) if measured else None)
                for k in ("data_source", "samples", "output", "kind")
            },
            calibration=Path(calibration_data).name if calibration_data else None,
            rows=tuple(rows),
            recommendation=rec,
            thresholds=th,
            runs=runs,
            seconds=round(time.perf_counter() - t0, 2),
            kind="optimize-sweep",
        )


def _try(
    src: Path,
    keep: Path,
    choice: RecipeChoice,
    calibration: Any,
    eval_data: Any,
    th: Thresholds,
    name: str,
    wd: Path,
    ctx: RunContext,
    runs: int,
) -> SweepRow:
    out = keep / optimized_name(name, choice)
    try:
        res = optimize_file(
            src,
            out,
            choice,
            calibration_data=calibration,
            eval_data=eval_data,
            validate=False,
            thresholds=th,
            display_name=name,
            workdir=wd / choice.slug,
            ctx=ctx.quiet(),
        )
    except Cancelled:
        raise
    except StudioError as e:
        return SweepRow(
            preset=choice.recipe,
            label=choice.label,
            error=e.to_dict(),
            failed_step="optimize",
            note=e.message,
            options={"recipe": choice.to_dict()},
        )
    ms = _latency(out, wd / f"bench-{choice.slug}", runs, ctx)[0] if runs else None
    return _row(choice, res, ms)
