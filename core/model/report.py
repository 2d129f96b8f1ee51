"""Inspection report for one ``.tflite`` file: model, sizes, compatibility.

``build_report(path)`` reads the file (no TensorFlow), sizes its weights, checks
every op against every target and returns a frozen ``Report``; ``render`` turns
it into JSON, Markdown or a self-contained HTML page (charts inline, no network).
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from core.errors import OptionsError, TFLiteFormatError
from core.model.compat import (
    MicroProbeResult,
    OpVerdict,
    Reason,
    Target,
    TargetVerdict,
    Verdict,
    check_compatibility,
)
from core.model.reader import (
    ModelInfo,
    OperatorInfo,
    TensorInfo,
    _gc_paused,
    read_model,
    weight_owners,
    weights_by_op,
)
from core.units import human_bytes

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

    def to_dict(self) -> dict[str, Any]:
        with _gc_paused():
            return _to_dict(self)


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
) -> Report:
    """Inspect one .tflite file. Raises only ``StudioError`` subclasses.

    ``source_kind``/``source_size`` describe the model it was converted from (for
    the before/after numbers); ``sha256``, when the caller already hashed the
    file (content-addressed storage), saves hashing it again; ``micro_probe`` is
    a TFLite Micro run of this file (``core.pipeline.inspect`` makes one);
    ``info``, the file already read.
    """
    if source_size is not None and (not isinstance(source_size, int) or source_size < 0):
        raise OptionsError(
            f"source_size must be a byte count, got {source_size!r}.",
            "Pass the size in bytes or None.",
        )
    model = info if info is not None else read_model(path)
    in_memory = isinstance(path, (bytes, bytearray, memoryview))
    name = "<bytes>" if in_memory else os.path.basename(os.fspath(path))
    file = FileInfo(name=name, size_bytes=model.file_size, sha256=sha256 or file_sha256(path))
    probe = micro_probe
    compat = check_compatibility(model, micro_probe=probe)
    return Report(
        schema_version=REPORT_SCHEMA_VERSION,
        file=file,
        model=model,
        size=size_breakdown(model, source_kind, source_size),
        compatibility=compat,
        micro_probe=probe,
    )


# ----------------------------------------------------------------- to_dict


def _finite(x: float) -> float | str:
    # JSON has no NaN/Inf; keep them visible as strings.
    return x if math.isfinite(x) else str(x)


def _quant_dict(t: TensorInfo) -> dict[str, Any] | None:
    q = t.quantization
    if q is None:
        return None
    d: dict[str, Any] = {
        "scales": [_finite(s) for s in q.scales],
        "zero_points": list(q.zero_points),
        "quantized_dimension": q.quantized_dimension,
    }
    if q.min or q.max:
        d["min"] = [_finite(v) for v in q.min]
        d["max"] = [_finite(v) for v in q.max]
    if q.details:
        d["details"] = q.details
    return d


def _sig(t: TensorInfo) -> list[int] | None:
    return list(t.shape_signature) if t.shape_signature is not None else None


def _tensor_dict(t: TensorInfo, weights_of: str | None) -> dict[str, Any]:
    return {
        "subgraph": t.subgraph,
        "index": t.index,
        "name": t.name,
        "shape": list(t.shape),
        "shape_signature": _sig(t),
        "dtype": t.dtype,
        "bytes": t.bytes,
        "buffer": t.buffer,
        "is_variable": t.is_variable,
        "constant": t.is_constant,
        "weights_of": weights_of,  # op type its buffer is counted for (once per buffer)
        "quantization": _quant_dict(t),
        "sparse": t.sparsity is not None,
        "sparsity": None
        if t.sparsity is None
        else {
            "traversal_order": list(t.sparsity.traversal_order),
            "block_map": list(t.sparsity.block_map),
            "dim_formats": list(t.sparsity.dim_formats),
        },
    }


def _json_value(v: Any) -> Any:
    if isinstance(v, float):
        return _finite(v)
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def _op_dict(op: OperatorInfo) -> dict[str, Any]:
    return {
        "subgraph": op.subgraph,
        "index": op.index,
        "op": op.name,
        "kind": op.kind.value,
        "version": op.version,
        "inputs": list(op.inputs),
        "outputs": list(op.outputs),
        "options_type": op.options_type,
        "options": {k: _json_value(v) for k, v in op.options.items()},
        "fused_activation": op.fused_activation,
        "custom_options_bytes": op.custom_options_bytes,
    }


def _reason_dict(r: Reason) -> dict[str, Any]:
    d = {"message": r.message, "severity": r.severity.value, "source": r.source}
    if r.hint:
        d["hint"] = r.hint
    return d


def _opv_dict(o: OpVerdict) -> dict[str, Any]:
    return {
        "subgraph": o.subgraph,
        "index": o.index,
        "op": o.op,
        "verdict": o.verdict.value,
        "reasons": [_reason_dict(r) for r in o.reasons],
    }


def _target_dict(tv: TargetVerdict) -> dict[str, Any]:
    return {
        "title": tv.title,
        "verdict": tv.verdict.value,
        "summary": tv.summary,
        "source": tv.source,
        "counts": dict(tv.counts),
        "model_reasons": [_reason_dict(r) for r in tv.model_reasons],
        "by_op": {
            name: {
                "count": s.count,
                "verdict": s.verdict.value,
                "counts": dict(s.counts),
                "reasons": [_reason_dict(r) for r in s.reasons],
            }
            for name, s in tv.by_op.items()
        },
        "ops": [_opv_dict(o) for o in tv.ops],
        "details": {k: _json_value(v) for k, v in tv.details.items()},
    }


def _io(model: ModelInfo, which: str) -> list[dict[str, Any]]:
    if not model.subgraphs:
        return []
    sg = model.subgraphs[0]
    out = []
    for i in getattr(sg, which):
        if i < 0:
            continue
        t = sg.tensors[i]
        out.append(
            {
                "name": t.name,
                "index": t.index,
                "shape": list(t.shape),
                "shape_signature": _sig(t),
                "dtype": t.dtype,
                "quantization": _quant_dict(t),
            }
        )
    return out


def _size_dict(s: SizeBreakdown) -> dict[str, Any]:
    return {
        "file_bytes": s.file_bytes,
        "weights_bytes": s.weights_bytes,
        "metadata_bytes": s.metadata_bytes,
        "overhead_bytes": s.overhead_bytes,
        "overhead_share": round(s.overhead_share, 6),
        "data_buffers_bytes": s.data_buffers_bytes,
        "zero_buffers": {"count": s.zero_buffers, "bytes": s.zero_bytes},
        "external_bytes": s.external_bytes,
        "by_dtype": dict(s.by_dtype),
        "by_op": dict(s.by_op),
        "top_tensors": [
            {
                "subgraph": t.subgraph,
                "index": t.index,
                "name": t.name,
                "dtype": t.dtype,
                "shape": list(t.shape),
                "bytes": t.bytes,
                "op": t.op,
            }
            for t in s.top_tensors
        ],
        "source": None
        if s.source is None
        else {
            "kind": s.source.kind,
            "size_bytes": s.source.size_bytes,
            "ratio": round(s.source.ratio, 6),
            "saved_bytes": s.source.saved_bytes,
        },
    }


def _to_dict(r: Report) -> dict[str, Any]:
    m = r.model
    owners = weight_owners(m)
    ops = [op for sg in m.subgraphs for op in sg.operators]
    cm = m.conversion_metadata
    return {
        "schema_version": r.schema_version,
        "generator": "tflite-studio inspect",
        "file": {"name": r.file.name, "size_bytes": r.file.size_bytes, "sha256": r.file.sha256},
        "model": {
            "schema_version": m.schema_version,
            "description": m.description,
            "num_subgraphs": len(m.subgraphs),
            "num_operators": len(ops),
            "num_tensors": sum(len(sg.tensors) for sg in m.subgraphs),
            "num_buffers": len(m.buffers),
        },
        "subgraphs": [
            {
                "index": sg.index,
                "name": sg.name,
                "inputs": list(sg.inputs),
                "outputs": list(sg.outputs),
                "num_operators": len(sg.operators),
                "num_tensors": len(sg.tensors),
            }
            for sg in m.subgraphs
        ],
        "inputs": _io(m, "inputs"),
        "outputs": _io(m, "outputs"),
        "signatures": [
            {
                "key": s.key,
                "subgraph": s.subgraph,
                "inputs": dict(s.inputs),
                "outputs": dict(s.outputs),
            }
            for s in m.signatures
        ],
        "op_counts": dict(Counter(op.name for op in ops).most_common()),
        "operators": [_op_dict(op) for op in ops],
        "tensors": [
            _tensor_dict(t, owners.get((t.subgraph, t.index)))
            for sg in m.subgraphs
            for t in sg.tensors
        ],
        "size": _size_dict(r.size),
        "metadata": {
            "entries": [
                {"name": e.name, "buffer": e.buffer, "size_bytes": e.size} for e in m.metadata
            ],
            "min_runtime_version": m.min_runtime_version,
            "conversion": None
            if cm is None
            else {
                "tensorflow_version": cm.tensorflow_version,
                "api_version": cm.api_version,
                "model_type": cm.model_type,
                "model_hash": cm.model_hash,
                "optimization_modes": list(cm.optimization_modes),
                "allow_custom_ops": cm.allow_custom_ops,
                "enable_select_tf_ops": cm.enable_select_tf_ops,
                "force_select_tf_ops": cm.force_select_tf_ops,
                "sparsity_block_sizes": [list(b) for b in cm.sparsity_block_sizes],
            },
        },
        "compatibility": {t.value: _target_dict(tv) for t, tv in r.compatibility.items()},
        "micro_probe": asdict(r.micro_probe) if r.micro_probe else None,
    }


# ----------------------------------------------------------------- rendering


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


@lru_cache(maxsize=2)
def _env(autoescape: bool):
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
        "inputs": _io(m, "inputs"),
        "outputs": _io(m, "outputs"),
    }


def _charts(report: Report, view: dict[str, Any]) -> dict[str, str]:
    import plotly.graph_objects as go

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
            go.Bar(x=[r["op"] for r in rows], y=[r["count"] for r in rows], marker_color="#3b6ea5"),
            {**layout, "title": ops_title},
        ),
        "size_by_op": go.Figure(
            go.Bar(
                x=list(report.size.by_op)[:40],
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
