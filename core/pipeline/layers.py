"""Per-layer quantization error: which layers lose the most when quantized.

- ``debug_layers(model, options)``: int8 and int8-float-io, with TensorFlow's
  ``QuantizationDebugger`` (in a worker). Per layer: mean error, standard
  deviation, max absolute error, mean squared error and ``rmse/scale``, the
  RMSE in units of the layer's quantization step. Plain rounding gives about
  1/sqrt(12) ≈ 0.29; TensorFlow's guide treats layers above about 0.7 as
  suspects.
- ``compare_layers(float32.tflite, int16x8.tflite, reference)``: int16x8, both
  files in LiteRT with every intermediate tensor kept, same-named tensors
  compared (the error accumulates through the layers; the report says so).

The worst layers can be kept in float: ``ConversionOptions(preset=
"int8-float-io", keep_float_ops=report.worst_n(3))``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from core.errors import OptionsError
from core.options import ConversionOptions, Preset
from core.pipeline.isolation import RunContext, run_task, work_folder
from core.tasks.layers import LayerErrorReport
from core.tasks.requests import LayerCompareRequest, LayerDebugRequest
from core.tasks.results import Reference

__all__ = ["DEFAULT_DEBUG_SAMPLES", "debug_layers", "compare_layers"]

DEFAULT_DEBUG_SAMPLES = 100


def debug_layers(
    model_path: str | os.PathLike[str],
    options: ConversionOptions,
    *,
    debug_npz: str | os.PathLike[str] | None = None,
    debug_data: str | os.PathLike[str] | None = None,
    max_samples: int = DEFAULT_DEBUG_SAMPLES,
    workdir: str | os.PathLike[str] | None = None,
    display_name: str | None = None,
    ctx: RunContext | None = None,
) -> LayerErrorReport:
    """Run TensorFlow's QuantizationDebugger on ``model_path`` converted with
    ``options`` (int8 or int8-float-io, with calibration data).

    Debug inputs: ``debug_npz`` (a reference file), else ``debug_data`` (a
    .npz keyed by input name / .npy / images), else the calibration samples."""
    cal = options.calibration_path
    opts = replace(
        options, keep_float_ops=(), calibration_path=os.path.abspath(cal) if cal else None
    )
    if opts.preset not in (Preset.INT8, Preset.INT8_FLOAT_IO):
        raise OptionsError(
            f"TensorFlow's quantization debugger measures int8 models, not {opts.preset.value}.",
            "Use int8 or int8-float-io; for int16x8 the sweep compares the float32 and "
            "int16x8 files tensor by tensor.",
        )
    with work_folder(workdir, "tflite-layers-") as wd:
        request = LayerDebugRequest(
            model_path=os.path.abspath(model_path),
            display_name=display_name or Path(model_path).name,
            options=opts,
            debug_npz=str(Path(debug_npz).resolve()) if debug_npz else None,
            debug_path=os.path.abspath(debug_data) if debug_data else None,
            max_samples=int(max_samples),
        )
        return run_task(request, LayerErrorReport, workdir=wd, ctx=ctx)


def compare_layers(
    float_tflite: str | os.PathLike[str],
    quant_tflite: str | os.PathLike[str],
    reference: Reference,
    *,
    preset: str = Preset.INT16X8.value,
    max_samples: int = DEFAULT_DEBUG_SAMPLES,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> LayerErrorReport:
    """Tensor-by-tensor error of ``quant_tflite`` against ``float_tflite`` on
    the reference inputs, in a light worker (LiteRT only)."""
    ctx = (ctx or RunContext()).without_pool()
    with work_folder(workdir, "tflite-layers-") as wd:
        request = LayerCompareRequest(
            float_path=os.path.abspath(float_tflite),
            quant_path=os.path.abspath(quant_tflite),
            reference=reference,
            preset=preset,
            max_samples=int(max_samples),
        )
        return run_task(request, LayerErrorReport, workdir=wd, ctx=ctx)
