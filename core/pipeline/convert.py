"""Convert a SavedModel / Keras model to ``.tflite`` in a worker (no
TensorFlow in the calling process)."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from core.model.archive import UnpackLimits
from core.options import ConversionOptions
from core.pipeline.isolation import RunContext, run_task, work_folder
from core.tasks.requests import ConvertRequest
from core.tasks.results import ConversionResult

__all__ = ["convert_model", "absolute_options"]


def absolute_options(options: ConversionOptions) -> ConversionOptions:
    """The same options with the calibration file's path made absolute (the
    worker runs in another folder). Links are not followed: a job links its
    upload under the name the person gave."""
    if not options.calibration_path:
        return options
    return replace(options, calibration_path=str(Path(options.calibration_path).absolute()))


def convert_model(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    options: ConversionOptions,
    *,
    workdir: str | os.PathLike[str] | None = None,
    display_name: str | None = None,
    unpack_limits: UnpackLimits | None = None,
    ctx: RunContext | None = None,
) -> ConversionResult:
    """Convert in an isolated worker. ``out_path`` is written only on success."""
    model = Path(model_path).absolute()
    out = Path(out_path).resolve()
    with work_folder(workdir, "tflite-studio-") as wd:
        request = ConvertRequest(
            model_path=str(model),
            display_name=display_name or model.name,
            options=absolute_options(options),
            unpack_limits=unpack_limits or UnpackLimits(),
        )
        result = run_task(request, ConversionResult, workdir=wd, ctx=ctx)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(wd / request.out_path), str(out))
        return replace(result, output_path=str(out))
