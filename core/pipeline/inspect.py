"""Inspect a ``.tflite``: its report (``core.model.report``) written by a
sandboxed worker, with the verdicts that need a run (the TFLite Micro probe,
in a worker of its own: the interpreter can abort its process).

The caller never parses the file itself: an upload built to exhaust memory
fails one worker task, not the server."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import StudioError, TFLiteFormatError, WorkerError, WorkerTimeout
from core.model.compat import MicroProbeResult, failed_op_from_log
from core.pipeline.isolation import RunContext, WorkerLimits, run_task, work_folder
from core.tasks.requests import InspectRequest, InspectResult, MicroProbeRequest

__all__ = ["probe_micro", "micro_result_from_failure", "inspect_file", "Inspection"]


def micro_result_from_failure(err: StudioError, seconds: float = 0.0) -> MicroProbeResult:
    """A probe whose worker died: crashed or timed out, with the op its log names."""
    log = str(err.details.get("log_tail") or "")
    if isinstance(err, WorkerTimeout):
        return MicroProbeResult(
            ok=False, timed_out=True, error=err.message, log_tail=log, seconds=seconds
        )
    return MicroProbeResult(
        ok=False,
        crashed=isinstance(err, WorkerError),
        failed_op=failed_op_from_log(log),
        error=err.message,
        log_tail=log,
        seconds=seconds,
    )


def probe_micro(
    source: str | os.PathLike[str] | bytes,
    *,
    timeout: float = 60.0,
    memory_mb: int | None = None,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> MicroProbeResult:
    """Load (and invoke once) the model in TFLite Micro, in a limited worker."""
    base = ctx or RunContext()
    with work_folder(workdir, "tflite-micro-") as wd:
        if isinstance(source, (bytes, bytearray, memoryview)):
            path = wd / "model.tflite"
            path.write_bytes(bytes(source))
        else:
            path = Path(os.path.abspath(source))
        try:
            size = path.stat().st_size
        except OSError as e:
            raise TFLiteFormatError(
                f"Cannot read {path.name}: {e.strerror or e}.", "Check the path."
            ) from None
        if memory_mb is None:
            # The default arena is 10x the model; leave room for Python and numpy.
            memory_mb = max(1024, 12 * size // (1 << 20) + 768)
        limits = WorkerLimits(timeout_s=timeout, memory_bytes=memory_mb << 20, file_bytes=64 << 20)
        ctx = RunContext(
            limits=limits, sandbox=base.sandbox, scratch_root=base.scratch_root, cancel=base.cancel
        )
        start = time.monotonic()
        try:
            return run_task(
                MicroProbeRequest(str(path)), MicroProbeResult, workdir=wd / "probe", ctx=ctx
            )
        except StudioError as e:  # the probe's process died: that is the verdict
            return micro_result_from_failure(e, time.monotonic() - start)


@dataclass(frozen=True)
class Inspection:
    """Where the report files are, and their summary."""

    summary: InspectResult
    json_path: Path
    md_path: Path
    html_path: Path

    def path(self, fmt: str) -> Path:
        return {"json": self.json_path, "md": self.md_path, "html": self.html_path}[fmt]


def inspect_file(
    path: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    micro: bool = True,
    source_kind: str | None = None,
    source_size: int | None = None,
    sha256: str | None = None,
    ctx: RunContext | None = None,
) -> Inspection:
    """The report of one ``.tflite`` (JSON, Markdown, HTML in ``out_dir``),
    with the TFLite Micro probe unless ``micro`` is false."""
    ctx = (ctx or RunContext()).without_pool()  # no TensorFlow in either task
    out = Path(out_dir).resolve()
    src = Path(os.path.abspath(path))
    probe = probe_micro(src, workdir=out / "micro", ctx=ctx) if micro else None
    request = InspectRequest(
        tflite_path=str(src),
        source_kind=source_kind,
        source_size=source_size,
        sha256=sha256,
        micro_probe=probe,
    )
    summary = run_task(request, InspectResult, workdir=out, ctx=ctx)
    return Inspection(summary, out / request.json_out, out / request.md_out, out / request.html_out)
