"""Worker task ``inspect``: read one untrusted ``.tflite``, check it against
every target and write its report as JSON, Markdown and HTML files.

It runs in the sandbox like every model task: a file built to exhaust memory
or time fails this one task, not the server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.errors import TFLiteFormatError
from core.model.reader import read_model
from core.model.report import build_report, render
from core.tasks.requests import InspectRequest, InspectResult

__all__ = ["run", "MAX_REPORT_BYTES"]

MAX_REPORT_BYTES = 64 << 20  # a report larger than this helps nobody and costs the store


def run(req: InspectRequest, workdir: Path, progress: Callable[..., None]) -> InspectResult:
    path = Path(req.tflite_path)
    progress("Reading the FlatBuffer")
    info = read_model(path)
    progress("Checking every operator against every target")
    report = build_report(
        path,
        source_kind=req.source_kind,
        source_size=req.source_size,
        sha256=req.sha256,
        micro_probe=req.micro_probe,
        info=info,
    )
    progress("Writing the report")
    text = render(report, "json")
    if len(text) > MAX_REPORT_BYTES:
        raise TFLiteFormatError(
            f"The report of {path.name} would be {len(text) >> 20} MiB, more than the "
            f"{MAX_REPORT_BYTES >> 20} MiB this server keeps.",
            "Inspect a model with fewer operators and tensors.",
        )
    (workdir / req.json_out).write_text(text, encoding="utf-8")
    (workdir / req.md_out).write_text(render(report, "md"), encoding="utf-8")
    (workdir / req.html_out).write_text(render(report, "html"), encoding="utf-8")
    return InspectResult(
        name=path.name,
        file_bytes=info.file_size,
        operators=len(info.operators),
        tensors=len(info.tensors),
        subgraphs=len(info.subgraphs),
        report_bytes=len(text),
        verdicts={t.value: v.verdict.value for t, v in report.compatibility.items()},
    )
