"""What changed between two ``.tflite`` files, read by a sandboxed worker."""

from __future__ import annotations

import os
from pathlib import Path

from core.pipeline.isolation import RunContext, run_task, work_folder
from core.tasks.requests import DiffRequest, DiffResult

__all__ = ["diff_files"]


def diff_files(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    name_a: str | None = None,
    name_b: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> DiffResult:
    """Ops added, removed or changed; tensors whose type, shape or quantization
    changed; the size per op type (``core.model.diff``)."""
    pa, pb = Path(os.path.abspath(a)), Path(os.path.abspath(b))
    request = DiffRequest(
        a_path=str(pa), b_path=str(pb), name_a=name_a or pa.name, name_b=name_b or pb.name
    )
    with work_folder(workdir, "tflite-diff-") as wd:
        return run_task(request, DiffResult, workdir=wd, ctx=(ctx or RunContext()).without_pool())
