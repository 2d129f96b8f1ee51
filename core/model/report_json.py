"""The JSON view of a ``Report`` (``Report.to_dict``): plain dicts and lists,
no NaN or Inf, the shape the web pages and ``render(report, "json")`` share.

Pure functions of the report's frozen data; ``core.model.report`` builds the
report and renders its other formats.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core.model.compat import RUNTIME_NAMES, OpVerdict, Reason, TargetVerdict
from core.model.info import ConversionMetadata, ModelInfo, OperatorInfo, TensorInfo
from core.model.reader import weight_owners

if TYPE_CHECKING:  # the report module imports this one
    from core.model.report import Report, SizeBreakdown

__all__ = ["report_dict", "io_dicts"]


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


def io_dicts(model: ModelInfo, which: str) -> list[dict[str, Any]]:
    """The first subgraph's ``inputs`` or ``outputs``."""
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


def _conversion_dict(cm: ConversionMetadata | None) -> dict[str, Any] | None:
    if cm is None:
        return None
    return {
        "tensorflow_version": cm.tensorflow_version,
        "api_version": cm.api_version,
        "model_type": cm.model_type,
        "model_hash": cm.model_hash,
        "optimization_modes": list(cm.optimization_modes),
        "allow_custom_ops": cm.allow_custom_ops,
        "enable_select_tf_ops": cm.enable_select_tf_ops,
        "force_select_tf_ops": cm.force_select_tf_ops,
        "sparsity_block_sizes": [list(b) for b in cm.sparsity_block_sizes],
    }


def report_dict(r: Report) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    m = r.model
    owners = weight_owners(m)
    ops = [op for sg in m.subgraphs for op in sg.operators]
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
        "inputs": io_dicts(m, "inputs"),
        "outputs": io_dicts(m, "outputs"),
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
            "conversion": _conversion_dict(m.conversion_metadata),
        },
        "compatibility": {t.value: _target_dict(tv) for t, tv in r.compatibility.items()},
        "micro_probe": asdict(r.micro_probe) if r.micro_probe else None,
        "runs": _runs_dict(r),
        "validation": [asdict(f) for f in r.findings],
    }


def _runs_dict(r: Report) -> dict[str, Any] | None:
    """The runs behind the verdicts: per runtime, how far it got."""
    if r.probes is None:
        return None
    return {
        "inputs": list(r.probes.inputs),
        "litert": [
            {**asdict(x), "outcome": x.outcome, "name": RUNTIME_NAMES.get(x.runtime, x.runtime)}
            for x in r.probes.runs
        ],
        "micro": asdict(r.probes.micro) if r.probes.micro else None,
    }
