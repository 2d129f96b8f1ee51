"""Worker task ``inspect``: read one untrusted ``.tflite``, validate it, run
it in every runtime here (``core.worker.probes``), check it against every
target and write its report as JSON, Markdown and HTML files.

It runs in the sandbox like every model task: a file built to exhaust memory
or time fails this one task, not the server; a runtime that crashes it is
recorded by the caller, which asks again without that run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from core.errors import TFLiteFormatError
from core.model.compat import Probes
from core.model.reader import read_model
from core.model.report import build_report, render
from core.tasks.requests import InspectRequest, InspectResult
from core.worker.probes import run_probes

__all__ = ["run", "MAX_REPORT_BYTES"]

MAX_REPORT_BYTES = 64 << 20  # a report larger than this helps nobody and costs the store


def run(req: InspectRequest, workdir: Path, progress: Callable[..., None]) -> InspectResult:
    path = Path(req.tflite_path)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    progress("Reading the FlatBuffer")
    info = read_model(path)
    timings["read"] = time.perf_counter() - t
    probes: Probes | None = None
    if req.runs:
        t = time.perf_counter()
        probes = run_probes(
            path,
            info,
            done=req.done_runs,
            micro_done=req.micro_probe,
            micro=req.micro,
            workdir=workdir,
            progress=progress,
        )
        timings["runs"] = time.perf_counter() - t
    elif req.micro_probe is not None:
        probes = Probes(micro=req.micro_probe)
    progress("Checking every operator against every target")
    t = time.perf_counter()
    report = build_report(
        path,
        source_kind=req.source_kind,
        source_size=req.source_size,
        sha256=req.sha256,
        info=info,
        probes=probes,
    )
    timings["rules"] = time.perf_counter() - t
    progress("Writing the report")
    t = time.perf_counter()
    text = render(report, "json")
    if len(text) > MAX_REPORT_BYTES:
        raise TFLiteFormatError(
            f"The report of {path.name} would be {len(text) >> 20} MiB, more than the "
            f"{MAX_REPORT_BYTES >> 20} MiB this server keeps.",
            "Inspect a model with fewer operators and tensors.",
        )
    outs = {"json": req.json_out, "md": req.md_out, "html": req.html_out}
    for fmt in req.formats:
        body = text if fmt == "json" else render(report, fmt)
        (workdir / outs[fmt]).write_text(body, encoding="utf-8")
    timings["report"] = time.perf_counter() - t
    runs = {r.runtime: r.outcome for r in probes.runs} if probes is not None else {}
    if probes is not None and probes.micro is not None:
        runs["micro"] = "ran" if probes.micro.ok else "failed"
    return InspectResult(
        name=path.name,
        file_bytes=info.file_size,
        operators=len(info.operators),
        tensors=len(info.tensors),
        subgraphs=len(info.subgraphs),
        report_bytes=len(text),
        verdicts={t.value: v.verdict.value for t, v in report.compatibility.items()},
        runs=runs,
        findings=len(report.findings),
        timings={k: round(v, 4) for k, v in timings.items()},
    )
