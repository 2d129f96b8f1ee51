"""The deploy kit of a ``.tflite``: the TFLite Micro probe measures the arena
(its own worker: the interpreter can abort its process), then a sandboxed
worker reads the signature and writes the kit (``core.worker.deploy``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from core.errors import OptionsError
from core.pipeline.inspect import probe_micro
from core.pipeline.isolation import RunContext, run_task, work_folder
from core.tasks.deploy import TARGETS, DeployResult
from core.tasks.requests import DeployRequest

__all__ = ["build_deploy_kit", "kit_name"]


def kit_name(model_name: str) -> str:
    """``digits-int8-deploy.zip`` for ``digits-int8.tflite``."""
    from core.model.naming import model_stem

    return f"{model_stem(model_name)}-deploy.zip"


def build_deploy_kit(
    tflite: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    targets: tuple[str, ...] = TARGETS,
    origin: str = "",
    display_name: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> DeployResult:
    """Write the kit zip to ``output``; returns what it holds."""
    bad = [t for t in targets if t not in TARGETS]
    if bad or not targets:
        raise OptionsError(
            f"Unknown deploy target {bad[0]!r}." if bad else "No deploy target was chosen.",
            "Choose from: " + ", ".join(TARGETS) + ".",
        )
    ctx = (ctx or RunContext()).without_pool()  # no TensorFlow in either task
    src = Path(os.path.abspath(tflite))
    with work_folder(workdir, "tflite-deploy-") as wd:
        probe = probe_micro(src, workdir=wd / "micro", ctx=ctx) if "micro" in targets else None
        request = DeployRequest(
            tflite_path=str(src),
            display_name=display_name or src.name,
            targets=tuple(targets),
            origin=origin,
            micro_probe=probe,
        )
        result = run_task(request, DeployResult, workdir=wd, ctx=ctx)
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(wd / request.out_zip), str(out))
    return result
