"""Which preset should I ship? Convert with every preset (one worker process
per conversion), evaluate and time each, measure the per-layer error of the
integer presets, find the Pareto front and recommend one preset with its rule.

A failing preset becomes a row with an ``error``; it never fails the sweep.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import Cancelled, StudioError
from core.options import PRESET_IDS, ConversionOptions, Preset
from core.pipeline.convert import convert_model
from core.pipeline.evaluate import base_options, compute_reference
from core.pipeline.isolation import RunContext, WarmPool, check_cancel
from core.pipeline.recommend import pareto_front, recommend
from core.pipeline.sweep_steps import layer_reports, measure_row
from core.tasks.layers import LayerErrorReport
from core.tasks.results import DataSource, Flag, Reference
from core.tasks.sweep import SweepModel, SweepReport, SweepRequest, SweepRow

__all__ = ["SweepRequest", "sweep", "variant_label"]


def variant_label(options: ConversionOptions, base: ConversionOptions | None = None) -> str:
    """A row's name: the preset, plus what a variant changes."""
    parts = [options.preset.value]
    if options.keep_float_ops:
        n = len(options.keep_float_ops)
        parts.append(f"{n} layer{'s' if n != 1 else ''} in float")
    if base is not None and options.select_tf_ops != base.select_tf_ops:
        parts.append("Select TF ops" if options.select_tf_ops else "no Select TF ops")
    if base is not None and options.signature_key != base.signature_key:
        parts.append(f"signature {options.signature_key}")
    return ", ".join(parts)


def _unique(label: str, taken: list[str]) -> str:
    while label in taken:
        label += " (again)"
    return label


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


def _dedupe(flags: list[Flag]) -> list[Flag]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in flags:
        if (f.code, f.message) not in seen:
            seen.add((f.code, f.message))
            out.append(f)
    return out


class _Sweep:
    """The state of one sweep while it runs (rows fill in step by step)."""

    def __init__(self, req: SweepRequest, ctx: RunContext, wd: Path) -> None:
        self.req, self.ctx, self.wd = req, ctx, wd
        self.t0 = time.perf_counter()
        self.model = Path(os.path.abspath(req.model_path))
        self.name = req.display_name or self.model.name
        self.base = base_options(req.options)
        wanted = PRESET_IDS if req.presets is None else req.presets
        self.ids = [p for p in PRESET_IDS if p in wanted]
        self.plans = [replace(self.base, preset=Preset(p), keep_float_ops=()) for p in self.ids]
        for v in req.variants:
            self.plans.append(
                replace(
                    v,
                    calibration_path=self.base.calibration_path,
                    calibration_source=self.base.calibration_source,
                )
            )
        self.labels: list[str] = []
        for opts in self.plans:
            self.labels.append(_unique(variant_label(opts, self.base), self.labels))
        self.out_dir = Path(req.keep_dir).resolve() if req.keep_dir else wd / "models"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.rows: dict[str, SweepRow] = {}
        self.paths: dict[str, Path] = {}
        self.flags: list[Flag] = []
        self.layer_reports: list[dict[str, Any]] = []
        self.ref: Reference | None = None

    def reference(self) -> Reference:
        self.ctx.say("Running the original model on the evaluation data")
        self.ref = compute_reference(
            self.model,
            workdir=self.wd / "ref",
            eval_data=self.req.eval_data,
            options=self.base,
            max_samples=self.req.max_samples,
            task=self.req.task,
            display_name=self.name,
            ctx=self.ctx,
        )
        self.flags.extend(self.ref.flags)
        return self.ref

    def convert(self, k: int, opts: ConversionOptions, label: str, total: int) -> None:
        check_cancel(self.ctx)
        self.ctx.say(f"Converting with {label} ({k}/{total})")
        stem = label.replace(", ", "-").replace(" ", "_")
        out = self.out_dir / f"{Path(self.name).stem}-{stem}.tflite"
        try:
            res = convert_model(
                self.model,
                out,
                opts,
                workdir=self.wd / "convert" / f"{k}",
                display_name=self.name,
                ctx=self.ctx.quiet(),
            )
        except Cancelled:
            raise
        except StudioError as e:
            self.rows[label] = SweepRow(
                preset=opts.preset.value,
                label=label,
                error=e.to_dict(),
                failed_step="convert",
                note="Did not convert: " + e.message,
                options=opts.to_dict(),
            )
            return
        self.paths[label] = out
        self.rows[label] = SweepRow(
            preset=opts.preset.value,
            label=label,
            size_bytes=res.output_size,
            warnings=res.warnings,
            conversion_seconds=res.seconds,
            sha256=res.output_sha256,
            tflite_path=str(out),
            options=opts.to_dict(),
        )

    def convert_all(self) -> None:
        extra = 1 if self.req.keep_worst > 0 and self.req.layer_errors else 0
        total = len(self.plans) + extra
        for k, opts in enumerate(self.plans, 1):
            self.convert(k, opts, self.labels[k - 1], total)

    def mixed_precision(self) -> None:
        """The worst int8 layers kept in float (needs the debugger's ranking)."""
        debugged = next(
            (le for le in self.layer_reports if le.get("method") == "quantization_debugger"), None
        )
        if self.req.keep_worst <= 0 or debugged is None:
            return
        keep = LayerErrorReport.from_dict(debugged).worst_n(self.req.keep_worst)
        if not keep:
            return
        opts = replace(self.base, preset=Preset.INT8_FLOAT_IO, keep_float_ops=keep)
        label = _unique(variant_label(opts, self.base), self.labels)
        self.plans.append(opts)
        self.labels.append(label)
        self.convert(len(self.plans), opts, label, len(self.plans))

    def measure_all(self) -> None:
        assert self.ref is not None
        for label, out in self.paths.items():
            check_cancel(self.ctx)
            self.rows[label] = measure_row(
                self.rows[label], out, self.ref, self.req, self.wd / _safe(label), self.ctx
            )

    def report(self) -> SweepReport:
        ordered = [self.rows[lab] for lab in self.labels if lab in self.rows]
        front = pareto_front(ordered)
        ordered = [replace(r, pareto=r.label in front) for r in ordered]
        ref = self.ref
        synthetic = ref is not None and ref.data_source is DataSource.SYNTHETIC
        rec = recommend(ordered, self.req.thresholds, synthetic_data=synthetic)
        if not self.base.calibration_path and any(Preset(p).needs_calibration for p in self.ids):
            self.flags.append(
                Flag(
                    "synthetic_calibration",
                    "warning",
                    "No calibration data was given: the int8 and 16x8 presets were calibrated on "
                    "random data and their accuracy is likely far worse than with real samples.",
                )
            )
        size = self.model.stat().st_size if self.model.is_file() else _dir_size(self.model)
        return SweepReport(
            model=SweepModel(self.name, size, ref.signature_key if ref else None),
            data={
                "source": ref.data_source.value if ref else None,
                "name": ref.data_name if ref else None,
                "samples": ref.samples if ref else 0,
                "has_labels": ref.has_labels if ref else False,
                "outputs": ref.outputs if ref else {},
            },
            calibration=(
                Path(self.base.calibration_path).name if self.base.calibration_path else None
            ),
            rows=tuple(ordered),
            recommendation=rec,
            thresholds=self.req.thresholds,
            flags=tuple(_dedupe(self.flags)),
            layer_errors=tuple(self.layer_reports),
            threads=tuple(self.req.threads),
            runs=self.req.runs,
            seconds=round(time.perf_counter() - self.t0, 2),
            tf_version=ref.tf_version if ref else "",
        )


def sweep(request: SweepRequest, ctx: RunContext | None = None) -> SweepReport:
    """Run the sweep ``request`` describes (see the module doc)."""
    ctx = ctx or RunContext()
    own_wd = request.workdir is None
    wd = Path(request.workdir or tempfile.mkdtemp(prefix="tflite-sweep-")).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    pool = None
    if ctx.pool is None:
        # two warm workers: the next conversion's TensorFlow import overlaps this one
        pool = WarmPool(
            size=min(2, os.cpu_count() or 1),
            limits=ctx.limits,
            log_dir=wd / "logs",
            sandbox=ctx.sandbox,
            scratch_root=ctx.scratch_root,
        )
        pool.fill()
        ctx = replace(ctx, pool=pool)
    try:
        s = _Sweep(request, ctx, wd)
        ref = s.reference()
        s.convert_all()
        if request.layer_errors:
            s.layer_reports.extend(
                layer_reports(s.model, s.name, s.plans, s.paths, ref, s.base, wd, ctx, s.flags)
            )
        s.mixed_precision()
        if pool is not None:
            pool.close()  # nothing of ours competes with the timing below
        s.measure_all()
        report = s.report()
    except BaseException:
        if own_wd:  # a failed or cancelled sweep leaves no files behind
            shutil.rmtree(wd, ignore_errors=True)
        raise
    finally:
        if pool is not None:
            pool.close()
    if own_wd:
        shutil.rmtree(wd, ignore_errors=True)
        if request.keep_dir is None:  # the files went with the work folder
            report = replace(report, rows=tuple(replace(r, tflite_path=None) for r in report.rows))
    return report
