"""Inspect a ``.tflite``: the report of ``core.model.report`` plus the
verdicts that need a run (the TFLite Micro probe, in a worker)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.errors import StudioError, TFLiteFormatError, WorkerError, WorkerTimeout
from core.model.compat import MicroProbeResult, failed_op_from_log
from core.model.report import Report, build_report
from core.pipeline.isolation import RunContext, WorkerLimits, run_task, work_folder
from core.tasks.requests import MicroProbeRequest

__all__ = ["probe_micro", "micro_result_from_failure", "inspect_tflite"]


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
) -> MicroProbeResult:
    """Load (and invoke once) the model in TFLite Micro, in a limited worker:
    the interpreter can abort its process on a bad model."""
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
        start = time.monotonic()
        try:
            return run_task(
                MicroProbeRequest(str(path)),
                MicroProbeResult,
                workdir=wd / "probe",
                ctx=RunContext(limits=limits),
            )
        except StudioError as e:  # the probe's process died: that is the verdict
            return micro_result_from_failure(e, time.monotonic() - start)


def inspect_tflite(
    path: str | os.PathLike[str],
    *,
    micro: bool = True,
    source_kind: str | None = None,
    source_size: int | None = None,
    sha256: str | None = None,
) -> Report:
    """The report of one ``.tflite`` file, with the TFLite Micro probe unless
    ``micro`` is false. Bad files fail before any probe process starts."""
    from core.model.reader import read_model

    info = read_model(path)
    probe = probe_micro(path) if micro else None
    return build_report(
        path,
        source_kind=source_kind,
        source_size=source_size,
        sha256=sha256,
        micro_probe=probe,
        info=info,
    )
