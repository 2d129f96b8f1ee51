"""Accuracy of a ``.tflite`` against the original model it came from.

- ``compute_reference(model, ...)`` runs the original SavedModel / Keras model
  with TensorFlow in a worker on the evaluation inputs (the person's
  ``.npz``/``.npy``/images, else the calibration data, else synthetic data,
  flagged as such) and keeps inputs and outputs in a ``.npz``: the
  ``Reference``.
- ``evaluate_tflite(tflite, reference)`` runs the ``.tflite`` on the same
  inputs with LiteRT in a light worker (no TensorFlow) and returns an
  ``AccuracyResult``: per output max/mean absolute error, RMSE, cosine, SNR;
  for classifiers top-1 agreement and, with labels, each model's accuracy.
- ``evaluate(model, tflite, ...)`` does both.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from core.errors import OptionsError
from core.options import CalibrationSource, ConversionOptions, Preset
from core.pipeline.isolation import RunContext, run_task, work_folder
from core.tasks.requests import ReferenceRequest, TfliteEvalRequest
from core.tasks.results import AccuracyResult, Reference, Thresholds

__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "TASKS",
    "base_options",
    "compute_reference",
    "evaluate_tflite",
    "evaluate",
]

DEFAULT_MAX_SAMPLES = 1000
TASKS = ("auto", "classification", "regression")


def _absolute(p: str | os.PathLike[str] | None) -> str | None:
    return os.path.abspath(p) if p else None  # keep the name (links are not followed)


def base_options(
    options: ConversionOptions | None = None, calibration_data: str | os.PathLike[str] | None = None
) -> ConversionOptions:
    """The options every step of an evaluation shares: calibration file made
    absolute (``calibration_data`` wins), no kept-float layers outside
    int8-float-io."""
    opts = options or ConversionOptions()
    if calibration_data:
        opts = replace(
            opts,
            calibration_path=_absolute(calibration_data),
            calibration_source=CalibrationSource.NONE,
        )
    elif opts.calibration_path:
        opts = replace(opts, calibration_path=_absolute(opts.calibration_path))
    if opts.keep_float_ops and opts.preset is not Preset.INT8_FLOAT_IO:
        opts = replace(opts, keep_float_ops=())
    return opts


def compute_reference(
    model_path: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str],
    eval_data: str | os.PathLike[str] | None = None,
    options: ConversionOptions | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    task: str = "auto",
    display_name: str | None = None,
    ctx: RunContext | None = None,
) -> Reference:
    """Run the original model (TensorFlow, in a worker) on the evaluation
    inputs; the result is kept in ``workdir/reference.npz``."""
    if task not in TASKS:
        raise OptionsError(f"Unknown task {task!r}.", "Use auto, classification or regression.")
    wd = Path(workdir).resolve()
    request = ReferenceRequest(
        model_path=os.path.abspath(model_path),
        display_name=display_name or Path(model_path).name,
        options=base_options(options),
        eval_path=_absolute(eval_data),
        max_samples=int(max_samples),
        task=task,
    )
    ref = run_task(request, Reference, workdir=wd, ctx=ctx)
    return replace(ref, npz_path=str(wd / request.out_npz))


def evaluate_tflite(
    tflite_path: str | os.PathLike[str],
    reference: Reference,
    *,
    workdir: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    display_name: str | None = None,
    thresholds: Thresholds | None = None,
    ctx: RunContext | None = None,
) -> AccuracyResult:
    """Run the .tflite on the reference inputs (LiteRT, in a light worker
    without TensorFlow) and compare. Raises ``EvaluateError`` when it cannot
    run here (``details["cannot_run_here"]``; the worker reads the file)."""
    path = Path(os.path.abspath(tflite_path))
    ctx = (ctx or RunContext()).without_pool()  # LiteRT only: no TensorFlow to pre-load
    with work_folder(workdir, "tflite-eval-") as wd:
        request = TfliteEvalRequest(
            tflite_path=str(path),
            reference=reference,
            display_name=display_name or path.name,
            preset=preset,
            thresholds=thresholds or Thresholds(),
        )
        return run_task(request, AccuracyResult, workdir=wd, ctx=ctx)


def evaluate(
    model_path: str | os.PathLike[str],
    tflite_path: str | os.PathLike[str],
    *,
    eval_data: str | os.PathLike[str] | None = None,
    options: ConversionOptions | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    task: str = "auto",
    preset: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> AccuracyResult:
    """The .tflite against the original model it was converted from."""
    with work_folder(workdir, "tflite-eval-") as wd:
        ref = compute_reference(
            model_path,
            workdir=wd,
            eval_data=eval_data,
            options=options,
            max_samples=max_samples,
            task=task,
            ctx=ctx,
        )
        return evaluate_tflite(tflite_path, ref, workdir=wd / "tflite", preset=preset, ctx=ctx)
