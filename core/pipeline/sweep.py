"""Which preset should I ship? Convert with every preset (in parallel, warm
TensorFlow workers, the model loaded once per worker: ``sweep_batches``),
measure each file's accuracy and latency (one LiteRT worker for them all),
measure the per-layer error where it explains something, find the Pareto
front and recommend one preset with its rule.

A failing preset becomes a row with an ``error``; it never fails the sweep.
While it runs, each preset's state is said in one progress line.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.errors import OptionsError
from core.options import PRESET_IDS, ConversionOptions, Preset
from core.pipeline.evaluate import base_options, compute_reference
from core.pipeline.isolation import RunContext, WarmPool, check_cancel
from core.pipeline.recommend import pareto_front, recommend
from core.pipeline.sweep_batches import Status, convert_all, measure_all, workers_for
from core.pipeline.sweep_steps import apply_measured, compare_int16, debug_int8, measure_row
from core.tasks.batch import MeasureBatchRequest
from core.tasks.layers import LayerErrorReport
from core.tasks.requests import ReferenceRequest
from core.tasks.results import DataSource, Flag, Reference
from core.tasks.sweep import SweepModel, SweepReport, SweepRequest, SweepRow

__all__ = ["SweepRequest", "sweep", "variant_label", "LAYER_MODES"]

LAYER_MODES = ("auto", "always", "never")  # auto: for integer presets that are not good


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
        self.timings: dict[str, float] = {}
        self.status = Status(list(self.labels), ctx)
        self.mode = req.layers if req.layer_errors else "never"
        if self.mode not in LAYER_MODES:
            raise OptionsError(
                f"Unknown per-layer mode {self.mode!r}.", "Use auto, always or never."
            )

    def _out(self, label: str) -> Path:
        stem = label.replace(", ", "-").replace(" ", "_")
        return self.out_dir / f"{Path(self.name).stem}-{stem}.tflite"

    def reference_request(self) -> ReferenceRequest:
        return ReferenceRequest(
            model_path=str(self.model),
            display_name=self.name,
            options=self.base,
            eval_path=os.path.abspath(self.req.eval_data) if self.req.eval_data else None,
            max_samples=int(self.req.max_samples),
            task=self.req.task,
        )

    def convert(self, on_first_done: Any = None) -> None:
        """Every plan, in parallel batches; the reference comes with the first."""
        t = time.perf_counter()
        self.ctx.say(f"Converting with {len(self.plans)} presets")
        done = convert_all(
            self.model,
            self.name,
            self.plans,
            self.labels,
            [self._out(label) for label in self.labels],
            self.reference_request(),
            self.wd / "convert",
            self.ctx,
            self.status,
            workers_for(),
            on_first_done,
        )
        self.timings.update(done.timings)
        self.timings["conversions (wall)"] = round(time.perf_counter() - t, 3)
        for k, (opts, label) in enumerate(zip(self.plans, self.labels)):
            self._add_row(k, opts, label, done)
        self.ref = done.reference or self._reference_alone()
        self.flags.extend(self.ref.flags)

    def _add_row(self, k: int, opts: ConversionOptions, label: str, done: Any) -> None:
        res = done.results.get(k)
        if res is None:
            err = done.errors.get(k) or {"message": "The conversion did not finish."}
            self.rows[label] = SweepRow(
                preset=opts.preset.value,
                label=label,
                error=err,
                failed_step="convert",
                note="Did not convert: " + str(err.get("message", "")),
                options=opts.to_dict(),
            )
            return
        self.paths[label] = Path(res.output_path)
        self.rows[label] = SweepRow(
            preset=opts.preset.value,
            label=label,
            size_bytes=res.output_size,
            warnings=res.warnings,
            conversion_seconds=res.seconds,
            sha256=res.output_sha256,
            tflite_path=res.output_path,
            options=opts.to_dict(),
        )

    def _reference_alone(self) -> Reference:
        """The reference when its batch died before making it."""
        t = time.perf_counter()
        ref = compute_reference(
            self.model,
            workdir=self.wd / "ref",
            eval_data=self.req.eval_data,
            options=self.base,
            max_samples=self.req.max_samples,
            task=self.req.task,
            display_name=self.name,
            ctx=self.ctx.quiet().without_pool(),
        )
        self.timings["reference"] = round(time.perf_counter() - t, 3)
        return ref

    def measure(self, pool: WarmPool | None) -> None:
        """Accuracy and latency of every converted row, one LiteRT worker."""
        assert self.ref is not None
        check_cancel(self.ctx)
        t = time.perf_counter()
        labels = [lab for lab in self.labels if lab in self.paths]
        req = MeasureBatchRequest(
            items=(),
            reference=self.ref,
            thresholds=self.req.thresholds,
            threads=tuple(self.req.threads),
            runs=self.req.runs,
            warmup=self.req.warmup,
        )
        rows = [(lab, self.paths[lab], self.rows[lab].preset) for lab in labels]
        res = measure_all(rows, self.ref, req, self.wd / "measure", self.ctx, self.status, pool)
        got = {m.label: m for m in res.items}
        for lab in labels:
            if lab in got:
                self.rows[lab] = apply_measured(self.rows[lab], got[lab], self.req.threads)
                self.timings.update({f"{k} {lab}": v for k, v in got[lab].seconds.items()})
                self.status.set(lab, "done" if self.rows[lab].measured else "failed")
            else:  # the batch died before it: alone, so a crash fails only this row
                self._measure_alone(lab)
        self.timings["measuring (wall)"] = round(time.perf_counter() - t, 3)

    def _needs_layers(self, presets: tuple[str, ...]) -> bool:
        """Asked for, or one of ``presets`` measured and not good."""
        return self.mode == "always" or any(
            self.rows[p].metrics.get("verdict") != "good"
            for p in presets
            if p in self.rows and self.rows[p].measured
        )

    def layers(self) -> None:
        """The per-layer error where it explains something (asked for, needed
        by ``keep_worst``, or an integer row that is not good): the int8
        quantization debugger (TensorFlow) and int16x8 tensor by tensor against
        float32 (LiteRT), side by side: all timing is done by now."""
        if self.mode == "never":
            return
        int8s = (Preset.INT8_FLOAT_IO.value, Preset.INT8.value)
        int8 = next((p for p in int8s if p in self.rows and self.rows[p].converted), None)
        plain = {
            self.rows[lab].preset: lab
            for lab in self.labels
            if lab in self.paths and not self.plans[self.labels.index(lab)].keep_float_ops
        }
        jobs: dict[str, Callable[[], dict[str, Any] | None]] = {}
        if int8 is not None and (self.req.keep_worst > 0 or self._needs_layers(int8s)):
            jobs["int8"] = lambda: debug_int8(
                self.model, self.name, int8, self.base, self.ref, self.wd, self.ctx, self.flags
            )
        i16, f32 = plain.get(Preset.INT16X8.value), plain.get(Preset.FLOAT32.value)
        if i16 and f32 and self._needs_layers((Preset.INT16X8.value,)):
            jobs["int16x8"] = lambda: compare_int16(
                self.paths[f32], self.paths[i16], self.ref, self.wd, self.ctx, self.flags
            )
        if not jobs:
            return
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(jobs)) as ex:
            futures = {name: ex.submit(fn) for name, fn in jobs.items()}
            done = {name: f.result() for name, f in futures.items()}
        self.layer_reports[:0] = [rep for rep in done.values() if rep is not None]
        self.timings[f"per-layer error ({' + '.join(jobs)})"] = round(time.perf_counter() - t, 3)

    def mixed_precision(self) -> None:
        """The worst int8 layers kept in float (needs the debugger's ranking)."""
        debugged = next(
            (le for le in self.layer_reports if le.get("method") == "quantization_debugger"), None
        )
        if self.req.keep_worst <= 0 or debugged is None or self.ref is None:
            return
        keep = LayerErrorReport.from_dict(debugged).worst_n(self.req.keep_worst)
        if not keep:
            return
        opts = replace(self.base, preset=Preset.INT8_FLOAT_IO, keep_float_ops=keep)
        label = _unique(variant_label(opts, self.base), self.labels)
        self.plans.append(opts)
        self.labels.append(label)
        self.status.state[label] = "converting"
        done = convert_all(
            self.model,
            self.name,
            [opts],
            [label],
            [self._out(label)],
            None,
            self.wd / "convert-mixed",
            self.ctx,
            self.status,
            1,
        )
        self._add_row(0, opts, label, done)
        if label in self.paths:
            self._measure_alone(label)
        else:
            self.status.set(label, "failed")

    def _measure_alone(self, label: str) -> None:
        """One row measured in its own LiteRT process."""
        assert self.ref is not None  # measuring follows the reference
        self.rows[label] = measure_row(
            self.rows[label],
            self.paths[label],
            self.ref,
            self.req,
            self.wd / _safe(label),
            self.ctx,
        )
        self.status.set(label, "done" if self.rows[label].measured else "failed")

    def report(self) -> SweepReport:
        t = time.perf_counter()
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
        self.timings["report"] = round(time.perf_counter() - t, 4)
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
            timings={k: round(v, 4) for k, v in self.timings.items()},
        )


def _pools(ctx: RunContext, wd: Path) -> tuple[WarmPool | None, WarmPool]:
    """A sweep's own warm TensorFlow workers (when the caller has none), which
    are not replaced once taken, and one LiteRT worker warmed up later."""

    def pool(size: int, warm: str) -> WarmPool:
        return WarmPool(
            size=size,
            limits=ctx.limits,
            log_dir=wd / "logs",
            sandbox=ctx.sandbox,
            scratch_root=ctx.scratch_root,
            warm=warm,
            refill=False,
        )

    tf_pool = None
    if ctx.pool is None:
        tf_pool = pool(workers_for(), "tf")
        tf_pool.fill()
    return tf_pool, pool(1, "litert")


def sweep(request: SweepRequest, ctx: RunContext | None = None) -> SweepReport:
    """Run the sweep ``request`` describes (see the module doc)."""
    ctx = ctx or RunContext()
    own_wd = request.workdir is None
    wd = Path(request.workdir or tempfile.mkdtemp(prefix="tflite-sweep-")).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tf_pool, litert = _pools(ctx, wd)
    run_ctx = replace(ctx, pool=tf_pool) if tf_pool is not None else ctx
    try:
        s = _Sweep(request, run_ctx, wd)
        s.convert(on_first_done=litert.fill)
        if tf_pool is not None:
            tf_pool.close()  # nothing of ours competes with the timing below
        s.measure(litert)
        s.layers()
        s.mixed_precision()
        report = s.report()
        report = replace(
            report, timings={**report.timings, "total": round(time.perf_counter() - t0, 3)}
        )
    except BaseException:
        if own_wd:  # a failed or cancelled sweep leaves no files behind
            shutil.rmtree(wd, ignore_errors=True)
        raise
    finally:
        if tf_pool is not None:
            tf_pool.close()
        litert.close()
    if own_wd:
        shutil.rmtree(wd, ignore_errors=True)
        if request.keep_dir is None:  # the files went with the work folder
            report = replace(report, rows=tuple(replace(r, tflite_path=None) for r in report.rows))
    return report
