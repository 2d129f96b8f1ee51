"""Inspect a ``.tflite``: its report (``core.model.report``) written by a
sandboxed worker, which also runs the model in every runtime here for the
verdicts; a runtime that aborts the worker is recorded and the rest go on.

The caller never parses the file itself: an upload built to exhaust memory
fails one worker task, not the server."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import Phase, StudioError, TFLiteFormatError, WorkerError, WorkerTimeout
from core.model.compat import (
    MICRO_PROBE,
    PROBE_ORDER,
    MicroProbeResult,
    RuntimeRun,
    failed_op_from_log,
)
from core.pipeline.isolation import RunContext, WorkerLimits, run_task, work_folder
from core.pipeline.journal import read_journal
from core.serial import DataError, from_data
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


def _after_crash(
    entries: list[dict[str, Any]], err: StudioError, runtime_log: str
) -> tuple[list[RuntimeRun], MicroProbeResult | None, str | None]:
    """(the runs the dead attempt finished and the one it died in, the TFLite
    Micro result if it died there, the runtime that was running)."""
    finished: list[RuntimeRun] = []
    micro: MicroProbeResult | None = None
    open_probe: tuple[str, str] | None = None
    for e in entries:
        probe = str(e.get("probe", ""))
        if "run" in e:
            with contextlib.suppress(DataError):
                finished.append(from_data(RuntimeRun, e["run"]))
            open_probe = None
        elif "micro" in e:
            with contextlib.suppress(DataError):
                micro = from_data(MicroProbeResult, e["micro"])
            open_probe = None
        elif "stage" in e:
            open_probe = (probe, str(e["stage"]))
    if open_probe is None:
        return finished, micro, None
    probe, stage = open_probe
    signal = str(err.details.get("signal") or "") or None
    if probe == MICRO_PROBE:
        res = micro_result_from_failure(err)
        log = runtime_log or res.log_tail
        said = f"TFLite Micro crashed ({signal})" if signal else res.error
        micro = replace(res, failed_op=res.failed_op or failed_op_from_log(log), error=said)
        return finished, micro, probe
    finished.append(
        RuntimeRun(
            runtime=probe,
            loaded=stage != "load",
            allocated=stage == "invoke",
            stage=stage,
            crashed=signal or (None if isinstance(err, WorkerTimeout) else "killed"),
            timed_out=isinstance(err, WorkerTimeout),
            error=None if signal else err.message,
        )
    )
    return finished, micro, probe


def inspect_file(
    path: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    micro: bool = True,
    runs: bool = True,
    source_kind: str | None = None,
    source_size: int | None = None,
    sha256: str | None = None,
    formats: tuple[str, ...] = ("json", "md", "html"),
    ctx: RunContext | None = None,
) -> Inspection:
    """The report of one ``.tflite`` (JSON, Markdown, HTML in ``out_dir``;
    ``formats`` names the files to write),
    its verdicts backed by runs in every runtime here (``runs``; TFLite Micro
    unless ``micro`` is false), all in one sandboxed process. A runtime that
    kills the process is recorded as a crash and the others still run."""
    ctx = (ctx or RunContext()).without_pool()  # no TensorFlow here
    out = Path(out_dir).resolve()
    src = Path(os.path.abspath(path))
    done: list[RuntimeRun] = []
    micro_done: MicroProbeResult | None = None
    for _ in range(len(PROBE_ORDER) + 1):
        request = InspectRequest(
            tflite_path=str(src),
            source_kind=source_kind,
            source_size=source_size,
            sha256=sha256,
            runs=runs,
            micro=micro,
            done_runs=tuple(done),
            micro_probe=micro_done,
            formats=formats,
        )
        journal = out / request.journal_out
        journal.unlink(missing_ok=True)
        try:
            summary = run_task(request, InspectResult, workdir=out, ctx=ctx)
        except (WorkerError, WorkerTimeout) as e:
            log = _log_tail(out / request.runtime_log)
            finished, micro_res, died_in = _after_crash(read_journal(journal), e, log)
            if died_in is None:
                raise  # it died outside any run: reading or writing the report
            done = _merge(done, finished)
            micro_done = micro_res or micro_done
            ctx.say(f"{died_in.replace('_', ' ')} crashed; running the others")
            continue
        return Inspection(
            summary, out / request.json_out, out / request.md_out, out / request.html_out
        )
    raise WorkerError(
        "Every runtime crashed on this file.",
        "The file is damaged or not a valid model; export it again.",
        phase=Phase.INSPECT,
    )


def _merge(done: list[RuntimeRun], new: list[RuntimeRun]) -> list[RuntimeRun]:
    seen = {r.runtime: r for r in done}
    for r in new:
        seen[r.runtime] = r
    return list(seen.values())


def _log_tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
