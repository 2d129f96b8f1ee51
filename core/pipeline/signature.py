"""An upload's signatures and input shapes, read by a sandboxed worker (no
TensorFlow in the calling process): what the Convert form offers."""

from __future__ import annotations

import os
from pathlib import Path

from core.model.archive import UnpackLimits
from core.pipeline.isolation import RunContext, run_task, work_folder
from core.tasks.requests import SignatureRequest, SignatureResult

__all__ = ["read_signature"]


def read_signature(
    model_path: str | os.PathLike[str],
    *,
    display_name: str | None = None,
    unpack_limits: UnpackLimits | None = None,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> SignatureResult:
    """Every signature of a SavedModel archive or Keras file, with its inputs
    and a static shape to suggest for each (batch 1, sequences 32, images 224)."""
    model = Path(model_path).absolute()
    request = SignatureRequest(
        model_path=str(model),
        display_name=display_name or model.name,
        unpack_limits=unpack_limits or UnpackLimits(),
    )
    with work_folder(workdir, "tflite-signature-") as wd:
        return run_task(request, SignatureResult, workdir=wd, ctx=ctx)
