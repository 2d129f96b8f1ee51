"""Worker task ``diff``: what changed between two untrusted ``.tflite`` files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.model.diff import diff_models, render_diff
from core.tasks.requests import DiffRequest, DiffResult

__all__ = ["run"]


def run(req: DiffRequest, workdir: Path, progress: Callable[..., None]) -> DiffResult:
    progress("Comparing the two models")
    d = diff_models(req.a_path, req.b_path, name_a=req.name_a, name_b=req.name_b)
    return DiffResult(diff=d.to_dict(), text=render_diff(d, "text"), md=render_diff(d, "md"))
