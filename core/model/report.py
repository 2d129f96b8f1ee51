"""Inspection report for one ``.tflite`` file: model, sizes, compatibility.

``build_report(path)`` reads the file (no TensorFlow), sizes its weights, checks
every op against every target and returns a frozen ``Report``; ``render`` turns
it into JSON (``Report.to_dict``, built by ``core.model.report_json``), Markdown
or a self-contained HTML page (charts inline, no network).
"""

from __future__ import annotations

import hashlib
import html
import json
import mmap
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from core.errors import OptionsError, TFLiteFormatError
from core.model.compat import (
    RUNTIME_NAMES,
    MicroProbeResult,
    Probes,
    Target,
    TargetVerdict,
    Verdict,
    check_compatibility,
)
from core.model.reader import (
    ModelInfo,
    OperatorInfo,
    TensorInfo,
    gc_paused,
    read_model,
    weights_by_op,
)
from core.model.report_json import io_dicts, report_dict
from core.model.validate import Finding, validate
from core.units import human_bytes, plural

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "FORMATS",
    "FileInfo",
    "SourceComparison",
    "TensorSize",
    "SizeBreakdown",
    "Report",
    "build_report",
    "file_sha256",
    "size_breakdown",
    "render",
    "decided_words",
]

REPORT_SCHEMA_VERSION = 1
FORMATS = ("json", "md", "html")
_TOP_TENSORS = 20
_MD_MAX_OPS = 200  # Markdown/HTML list at most this many per-op reasons per target
_HTML_MAX_JSON = 10_000_000  # bytes of report JSON embedded in the HTML page
_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


@dataclass(frozen=True, slots=True)
class FileInfo:
    name: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class SourceComparison:
    kind: str | None
    size_bytes: int
    ratio: float  # tflite / source
    saved_bytes: int


@dataclass(frozen=True, slots=True)
class TensorSize:
    subgraph: int
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    bytes: int
    op: str | None  # first operator that reads it


@dataclass(frozen=True, slots=True)
class SizeBreakdown:
    file_bytes: int
    weights_bytes: int  # unique buffers read by constant tensors
    metadata_bytes: int
    overhead_bytes: int  # FlatBuffer structure: ops, tensors, names, padding
    overhead_share: float
    data_buffers_bytes: int  # every non-empty buffer (LiteRT analyzer's "data buffer size")
    zero_buffers: int
    zero_bytes: int
    external_bytes: int  # weights stored in separate files, not counted in file_bytes
    by_dtype: dict[str, int] = field(hash=False)
    by_op: dict[str, int] = field(hash=False)
    top_tensors: tuple[TensorSize, ...] = ()
    source: SourceComparison | None = None


@dataclass(frozen=True, slots=True)
class Report:
    schema_version: int
    file: FileInfo
    model: ModelInfo
    size: SizeBreakdown
    compatibility: dict[Target, TargetVerdict] = field(hash=False)
    micro_probe: MicroProbeResult | None = None
    probes: Probes | None = None  # the runs behind the verdicts (None: rules only)
    findings: tuple[Finding, ...] = ()  # what LiteRT's loader would refuse (``validate``)

    def to_dict(self) -> dict[str, Any]:
        with gc_paused():
            return report_dict(self)


# ----------------------------------------------------------------- building


def file_sha256(source: str | os.PathLike[str] | bytes) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return hashlib.sha256(source).hexdigest()
    try:
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if not size:
                return hashlib.sha256(b"").hexdigest()
            # Hash the mapped file in one call: no copies, the GIL released.
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return hashlib.sha256(mm).hexdigest()
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or e
        hint = "Check the path and permissions."
        raise TFLiteFormatError(f"Cannot read {source}: {why}.", hint) from None


def size_breakdown(
    model: ModelInfo, source_kind: str | None, source_size: int | None
) -> SizeBreakdown:
    buffers = model.buffers
    meta_buffers = {m.buffer for m in model.metadata}
    # The op reading each tensor first, for the top-tensors table.
    first_reader: dict[tuple[int, int], OperatorInfo] = {}
    for sg in model.subgraphs:
        for op in sg.operators:
            for i in op.inputs:
                if i >= 0 and (sg.index, i) not in first_reader:
                    first_reader[(sg.index, i)] = op
    seen: set[int] = set()
    by_dtype: Counter[str] = Counter()
    by_op = weights_by_op(model)
    consts: list[TensorInfo] = []
    for t in model.tensors:
        if not t.is_constant:
            continue
        consts.append(t)
        if t.buffer in seen:
            continue  # shared buffers count once
        seen.add(t.buffer)
        by_dtype[t.dtype] += t.bytes
    weights = sum(buffers[b].size for b in seen if b < len(buffers))
    metadata = sum(buffers[b].size for b in meta_buffers if b < len(buffers))
    overhead = max(model.file_size - weights - metadata, 0)
    zero = [b for b in buffers if b.all_zero and b.index in seen]
    consts.sort(key=lambda t: t.bytes, reverse=True)
    top = []
    for t in consts[:_TOP_TENSORS]:
        reader = first_reader.get((t.subgraph, t.index))
        op_name = reader.name if reader else None
        top.append(TensorSize(t.subgraph, t.index, t.name, t.dtype, t.shape, t.bytes, op_name))
    source = None
    if source_size:
        source = SourceComparison(
            kind=source_kind,
            size_bytes=source_size,
            ratio=model.file_size / source_size,
            saved_bytes=source_size - model.file_size,
        )
    return SizeBreakdown(
        file_bytes=model.file_size,
        weights_bytes=weights,
        metadata_bytes=metadata,
        overhead_bytes=overhead,
        overhead_share=overhead / model.file_size if model.file_size else 0.0,
        data_buffers_bytes=sum(b.size for b in buffers if not b.external or b.offset is not None),
        zero_buffers=len(zero),
        zero_bytes=sum(b.size for b in zero),
        external_bytes=model.external_buffer_bytes,
        by_dtype=dict(by_dtype.most_common()),
        by_op=dict(sorted(by_op.items(), key=lambda kv: kv[1], reverse=True)),
        top_tensors=tuple(top),
        source=source,
    )


def build_report(
    path: str | os.PathLike[str] | bytes,
    *,
    source_kind: str | None = None,
    source_size: int | None = None,
    sha256: str | None = None,
    micro_probe: MicroProbeResult | None = None,
    info: ModelInfo | None = None,
    probes: Probes | None = None,
) -> Report:
    """Inspect one .tflite file. Raises only ``StudioError`` subclasses.

    ``source_kind``/``source_size`` describe the model it was converted from (for
    the before/after numbers); ``sha256``, when the caller already hashed the
    file (content-addressed storage), saves hashing it again; ``micro_probe`` is
    a TFLite Micro run of this file; ``probes``, every run behind the
    verdicts (``core.worker.probes``, made by ``core.pipeline.inspect``);
    ``info``, the file already read.
    """
    if source_size is not None and (not isinstance(source_size, int) or source_size < 0):
        raise OptionsError(
            f"source_size must be a byte count, got {source_size!r}.",
            "Pass the size in bytes or None.",
        )
    model = info if info is not None else read_model(path)
    if isinstance(path, (bytes, bytearray, memoryview)):
        name = "<bytes>"
    else:
        name = os.path.basename(os.fspath(path))
    file = FileInfo(name=name, size_bytes=model.file_size, sha256=sha256 or file_sha256(path))
    probe = probes.micro if probes is not None and probes.micro is not None else micro_probe
    compat = check_compatibility(model, micro_probe=probe, probes=probes)
    return Report(
        schema_version=REPORT_SCHEMA_VERSION,
        file=file,
        model=model,
        size=size_breakdown(model, source_kind, source_size),
        compatibility=compat,
        micro_probe=probe,
        probes=probes,
        findings=validate(model),
    )


# ----------------------------------------------------------------- rendering


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def _md_cell(value: Any) -> str:
    """Text from the model as Markdown data: no HTML, links, images or tables
    can come out of a tensor's name."""
    text = html.escape(str(value), quote=False).replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["bytes"] = human_bytes
    env.filters["md"] = _md_cell
    env.filters["pct"] = lambda x: f"{100 * x:.1f} %"
    return env


def _view(report: Report) -> dict[str, Any]:
    """Numbers the Markdown and HTML templates share."""
    m = report.model
    ops = [op for sg in m.subgraphs for op in sg.operators]
    versions: dict[str, set[int]] = defaultdict(set)
    kinds: dict[str, str] = {}
    for op in ops:
        versions[op.name].add(op.version)
        kinds[op.name] = op.kind.value
    counts = Counter(op.name for op in ops)
    op_rows = [
        {
            "op": name,
            "kind": kinds[name],
            "count": n,
            "versions": ", ".join(map(str, sorted(versions[name]))),
        }
        for name, n in counts.most_common()
    ]
    dtypes = Counter(t.dtype for t in m.tensors if not t.is_constant)
    compat_rows = []
    for t, tv in report.compatibility.items():
        top = Counter(
            r.message for o in tv.ops for r in o.reasons if r.severity is not Verdict.SUPPORTED
        )
        compat_rows.append(
            {
                "key": t.value,
                "title": tv.title,
                "verdict": tv.verdict.value,
                "counts": tv.counts,
                "model_reasons": tv.model_reasons,
                "top_reasons": [msg for msg, _ in top.most_common(3)],
                "source": tv.source,
                "details": tv.details,
                "ops": tv.ops[:_MD_MAX_OPS],
                "more_ops": max(len(tv.ops) - _MD_MAX_OPS, 0),
                "decided": decided_words(tv),
            }
        )
    return {
        "r": report,
        "m": m,
        "size": report.size,
        "op_rows": op_rows,
        "num_ops": len(ops),
        "num_tensors": sum(len(sg.tensors) for sg in m.subgraphs),
        "activation_dtypes": ", ".join(f"{k} ({v})" for k, v in dtypes.most_common()),
        "compat_rows": compat_rows,
        "inputs": io_dicts(m, "inputs"),
        "outputs": io_dicts(m, "outputs"),
        "runs": _run_rows(report),
        "fits": report.compatibility[Target.MICRO].details.get("fits")
        if Target.MICRO in report.compatibility
        else None,
    }


def decided_words(tv: TargetVerdict) -> str:
    """Where a verdict comes from, in words (a run here, or the rules and why)."""
    d = tv.details
    if d.get("decided_by") == "run":
        return "a run on this server"
    why = d.get("not_run")
    return f"the rules (not run here: {why})" if why else "the rules"


def _run_rows(report: Report) -> list[dict[str, Any]]:
    if report.probes is None:
        return []
    rows = [
        {
            "runtime": RUNTIME_NAMES.get(r.runtime, r.runtime),
            "outcome": r.outcome,
            "detail": (
                f"{r.delegated_nodes} of {plural(r.total_nodes or 0, 'op')} delegated, "
                f"{plural(r.partitions or 0, 'partition')}"
                if r.delegated_nodes is not None
                else ""
            ),
            "error": r.error or r.skipped or "",
            "seconds": r.seconds,
        }
        for r in report.probes.runs
    ]
    mp = report.probes.micro
    if mp is not None:
        rows.append(
            {
                "runtime": "TFLite Micro interpreter",
                "outcome": "ran"
                if mp.ok
                else "crashed"
                if mp.crashed
                else "did not finish in time"
                if mp.timed_out
                else "failed",
                "detail": f"tensor arena {human_bytes(mp.arena_bytes)}" if mp.arena_bytes else "",
                "error": mp.error or "",
                "seconds": round(mp.seconds, 4),
            }
        )
    return rows


def _charts(report: Report, view: dict[str, Any]) -> dict[str, str]:
    import plotly.graph_objects as go

    def esc(name: str) -> str:  # plotly reads a subset of HTML in its labels
        return html.escape(str(name), quote=False)

    layout = {
        "margin": {"l": 40, "r": 10, "t": 40, "b": 80},
        "autosize": True,
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
    }
    rows = view["op_rows"][:40]
    ops_title = "Operators by type" + (" (top 40)" if len(view["op_rows"]) > 40 else "")
    by_dtype = report.size.by_dtype
    figs = {
        "ops": go.Figure(
            go.Bar(
                x=[esc(r["op"]) for r in rows], y=[r["count"] for r in rows], marker_color="#3b6ea5"
            ),
            {**layout, "title": ops_title},
        ),
        "size_by_op": go.Figure(
            go.Bar(
                x=[esc(k) for k in list(report.size.by_op)[:40]],
                y=[v / 1024 for v in list(report.size.by_op.values())[:40]],
                marker_color="#5a9e6f",
            ),
            {**layout, "title": "Weights by op type (KB)"},
        ),
        "by_dtype": go.Figure(
            go.Pie(labels=list(by_dtype), values=list(by_dtype.values()), hole=0.4),
            {**layout, "title": "Weights by dtype"},
        ),
    }
    config = {"displaylogo": False, "displayModeBar": False, "responsive": True}
    return {
        k: fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            config=config,
            default_width="100%",
            default_height="360px",
        )
        for k, fig in figs.items()
    }


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    # "</script" inside the bundle would end our inline <script> early.
    return get_plotlyjs().replace("</script", "<\\/script")


def render(report: Report, fmt: str) -> str:
    """Render as ``"json"``, ``"md"`` or ``"html"`` (a self-contained page)."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "md":
        return _env(False).get_template("report.md.j2").render(**_view(report))
    if fmt == "html":
        view = _view(report)
        data = json.dumps(report.to_dict(), ensure_ascii=True, allow_nan=False)
        data = data.replace("</", "<\\/")  # keep "</script>" out of the inline JSON
        return (
            _env(True)
            .get_template("report.html.j2")
            .render(
                **view,
                charts=_charts(report, view),
                plotly_js=_plotly_js(),
                # Huge graphs would make the page unwieldy; the JSON format has it all.
                report_json=data if len(data) <= _HTML_MAX_JSON else None,
            )
        )
    raise OptionsError(f"Unknown report format {fmt!r}.", f"Use one of: {', '.join(FORMATS)}.")
