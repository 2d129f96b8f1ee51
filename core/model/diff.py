"""Diff two ``.tflite`` files: what changed between a float32 and an int8 build
of one model, or between two versions. In-process, no TensorFlow.

``diff_models(a, b)`` reads both files with ``core.model.reader.read_model``
and returns a frozen ``ModelDiff``:

- operators added, removed or changed (version, operand types, fused
  activation, options), aligned per subgraph like a text diff of the op
  sequence (``difflib.SequenceMatcher``);
- tensors whose dtype, shape or quantization changed. Tensors are matched by
  name, then by position in the graph (the same slot of an aligned op, or the
  same subgraph input/output), so renamed tensors still pair up;
- per op type: how many ops and how many weight bytes before and after.

``render_diff(diff, "text" | "json" | "md")`` turns it into words.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.model.reader import (
    ModelInfo,
    OperatorInfo,
    Quantization,
    SubgraphInfo,
    TensorInfo,
    read_model,
    weights_by_op,
)
from core.units import human_bytes

__all__ = [
    "OpChange",
    "TensorChange",
    "OpTypeSize",
    "ModelDiff",
    "diff_models",
    "render_diff",
]

_FLOAT_TYPES = {"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"}
_QUANT_TYPES = {"INT8", "UINT8", "INT16", "INT4", "INT32", "INT64", "UINT16"}
_MAX_SEQUENCE = 20_000  # ops per subgraph aligned exactly; longer ones by position


@dataclass(frozen=True)
class OpChange:
    """One operator that was added, removed or changed."""

    change: str  # "added" | "removed" | "changed"
    op: str  # op name (in B for added/changed, in A for removed)
    subgraph: int
    index_a: int | None
    index_b: int | None
    output: str  # name of its first output tensor
    details: tuple[str, ...] = ()  # for "changed": what differs, in words

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["details"] = list(self.details)
        return d


@dataclass(frozen=True)
class TensorChange:
    """A tensor present in both models whose type, shape or quantization changed."""

    name: str  # name in B
    name_a: str  # name in A (differs when matched by position)
    subgraph: int
    matched_by: str  # "name" | "position"
    dtype_a: str
    dtype_b: str
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    quant_a: str  # quantization in words ("" when none)
    quant_b: str
    bytes_a: int
    bytes_b: int
    changed: tuple[str, ...]  # subset of ("dtype", "shape", "quantization")

    @property
    def quantized(self) -> bool:
        """Float in A, integer with a scale in B: the tensor was quantized."""
        return self.dtype_a in _FLOAT_TYPES and self.dtype_b in _QUANT_TYPES and bool(self.quant_b)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape_a"] = list(self.shape_a)
        d["shape_b"] = list(self.shape_b)
        d["changed"] = list(self.changed)
        d["quantized"] = self.quantized
        return d


@dataclass(frozen=True)
class OpTypeSize:
    """Per op type: how many ops and the bytes of the weights they hold."""

    op: str
    count_a: int
    count_b: int
    weight_bytes_a: int
    weight_bytes_b: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelDiff:
    name_a: str
    name_b: str
    size_a: int
    size_b: int
    ops_added: tuple[OpChange, ...]
    ops_removed: tuple[OpChange, ...]
    ops_changed: tuple[OpChange, ...]
    tensors_changed: tuple[TensorChange, ...]
    tensors_added: tuple[str, ...]
    tensors_removed: tuple[str, ...]
    by_op_type: tuple[OpTypeSize, ...]
    subgraphs_a: int = 1
    subgraphs_b: int = 1
    notes: tuple[str, ...] = field(default=())

    @property
    def quantized_tensors(self) -> tuple[TensorChange, ...]:
        return tuple(t for t in self.tensors_changed if t.quantized)

    @property
    def identical(self) -> bool:
        return not (
            self.ops_added
            or self.ops_removed
            or self.ops_changed
            or self.tensors_changed
            or self.tensors_added
            or self.tensors_removed
        )

    def summary(self) -> str:
        """One or two plain sentences."""
        if self.identical:
            return f"{self.name_b} has the same ops and tensors as {self.name_a}" + (
                " (the weights may still differ)."
                if self.size_a == self.size_b
                else f"; the file is {_pct(self.size_a, self.size_b)} the size."
            )
        parts = []
        if self.ops_added:
            parts.append(f"{len(self.ops_added)} op(s) added")
        if self.ops_removed:
            parts.append(f"{len(self.ops_removed)} removed")
        if self.ops_changed:
            parts.append(f"{len(self.ops_changed)} changed")
        t = len(self.tensors_changed)
        q = len(self.quantized_tensors)
        if t:
            parts.append(f"{t} tensor(s) changed" + (f", {q} of them quantized" if q else ""))
        return (
            f"{self.name_b} vs {self.name_a}: " + ", ".join(parts) + ". "
            f"File size {human_bytes(self.size_a)} → {human_bytes(self.size_b)} "
            f"({_pct(self.size_a, self.size_b)})."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": {"name": self.name_a, "size_bytes": self.size_a, "subgraphs": self.subgraphs_a},
            "b": {"name": self.name_b, "size_bytes": self.size_b, "subgraphs": self.subgraphs_b},
            "summary": self.summary(),
            "identical": self.identical,
            "ops_added": [o.to_dict() for o in self.ops_added],
            "ops_removed": [o.to_dict() for o in self.ops_removed],
            "ops_changed": [o.to_dict() for o in self.ops_changed],
            "tensors_changed": [t.to_dict() for t in self.tensors_changed],
            "quantized_tensors": [t.name for t in self.quantized_tensors],
            "tensors_added": list(self.tensors_added),
            "tensors_removed": list(self.tensors_removed),
            "by_op_type": [s.to_dict() for s in self.by_op_type],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- describing


def _pct(a: int, b: int) -> str:
    return f"{b / a:.0%} of A" if a else "–"


def _quant_words(t: TensorInfo) -> str:
    q = t.quantization
    if q is None or not q.scales:
        return ""
    dt = t.dtype.lower()
    if q.per_channel:
        lo, hi = min(q.scales), max(q.scales)
        zps = set(q.zero_points)
        zp = f"zero point {next(iter(zps))}" if len(zps) == 1 else f"{len(zps)} zero points"
        return (
            f"{dt} per-channel on axis {q.quantized_dimension}: {len(q.scales)} scales "
            f"{lo:.3g}…{hi:.3g}, {zp}"
        )
    zp0 = q.zero_points[0] if q.zero_points else 0
    return f"{dt} scale {q.scales[0]:.6g}, zero point {zp0}"


def _same_quant(a: Quantization | None, b: Quantization | None) -> bool:
    sa = tuple(a.scales) if a else ()
    sb = tuple(b.scales) if b else ()
    if len(sa) != len(sb):
        return False
    if any(not math.isclose(x, y, rel_tol=1e-6, abs_tol=0.0) for x, y in zip(sa, sb)):
        return False
    za = tuple(a.zero_points) if a else ()
    zb = tuple(b.zero_points) if b else ()
    if sa and za != zb:
        return False
    return not sa or (a.quantized_dimension if a else 0) == (b.quantized_dimension if b else 0)


def _op_details(
    a: OperatorInfo, b: OperatorInfo, ta: tuple[TensorInfo, ...], tb: tuple[TensorInfo, ...]
) -> tuple[str, ...]:
    out = []
    if a.version != b.version:
        out.append(f"version {a.version} → {b.version}")

    def types(op: OperatorInfo, ts: tuple[TensorInfo, ...], idx: tuple[int, ...]) -> list[str]:
        return [ts[i].dtype.lower() if 0 <= i < len(ts) else "–" for i in idx]

    ia, ib = types(a, ta, a.inputs), types(b, tb, b.inputs)
    if ia != ib:
        out.append(f"inputs {', '.join(ia)} → {', '.join(ib)}")
    oa, ob = types(a, ta, a.outputs), types(b, tb, b.outputs)
    if oa != ob:
        out.append(f"outputs {', '.join(oa)} → {', '.join(ob)}")
    if (a.fused_activation or "NONE") != (b.fused_activation or "NONE"):
        out.append(
            f"fused activation {a.fused_activation or 'NONE'} → {b.fused_activation or 'NONE'}"
        )
    skip = {"fused_activation_function"}
    keys = (set(a.options) | set(b.options)) - skip
    opt_changes = [k for k in sorted(keys) if _norm(a.options.get(k)) != _norm(b.options.get(k))]
    if opt_changes:
        out.append(
            "options "
            + ", ".join(
                f"{k} {a.options.get(k)!s:.30} → {b.options.get(k)!s:.30}" for k in opt_changes[:4]
            )
            + ("…" if len(opt_changes) > 4 else "")
        )
    return tuple(out)


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x) for x in v)
    return v


def _out_name(op: OperatorInfo, ts: tuple[TensorInfo, ...]) -> str:
    for i in op.outputs:
        if 0 <= i < len(ts):
            return ts[i].name
    return ""


# ---------------------------------------------------------------- the diff


_Opcode = tuple[str, int, int, int, int]  # difflib's (tag, i1, i2, j1, j2)


def _align(a: tuple[OperatorInfo, ...], b: tuple[OperatorInfo, ...]) -> list[_Opcode]:
    na, nb = [o.name for o in a], [o.name for o in b]
    if len(na) > _MAX_SEQUENCE or len(nb) > _MAX_SEQUENCE:
        n = min(len(na), len(nb))
        ops: list[_Opcode] = []
        for i in range(n):
            ops.append(("equal" if na[i] == nb[i] else "replace", i, i + 1, i, i + 1))
        if len(na) > n:
            ops.append(("delete", n, len(na), n, n))
        if len(nb) > n:
            ops.append(("insert", n, n, n, len(nb)))
        return ops
    return list(difflib.SequenceMatcher(a=na, b=nb, autojunk=False).get_opcodes())


@dataclass
class _Changes:
    """What ``diff_models`` collects, subgraph by subgraph."""

    added: list[OpChange] = field(default_factory=list)
    removed: list[OpChange] = field(default_factory=list)
    changed: list[OpChange] = field(default_factory=list)
    tensors_changed: list[TensorChange] = field(default_factory=list)
    tensors_added: list[str] = field(default_factory=list)
    tensors_removed: list[str] = field(default_factory=list)


def _diff_ops(s: int, sa: SubgraphInfo, sb: SubgraphInfo, acc: _Changes) -> list[tuple[int, int]]:
    """Record op changes of one subgraph; returns the tensor index pairs
    (A, B) its aligned ops and its inputs/outputs match structurally."""
    ta, tb = sa.tensors, sb.tensors
    pairs: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in _align(sa.operators, sb.operators):
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                oa, ob = sa.operators[i], sb.operators[j]
                det = _op_details(oa, ob, ta, tb)
                if det:
                    acc.changed.append(
                        OpChange("changed", ob.name, s, i, j, _out_name(ob, tb), det)
                    )
                pairs.extend(zip(oa.inputs, ob.inputs))
                pairs.extend(zip(oa.outputs, ob.outputs))
            continue
        for i in range(i1, i2):
            oa = sa.operators[i]
            acc.removed.append(OpChange("removed", oa.name, s, i, None, _out_name(oa, ta)))
        for j in range(j1, j2):
            ob = sb.operators[j]
            acc.added.append(OpChange("added", ob.name, s, None, j, _out_name(ob, tb)))
    pairs.extend(zip(sa.inputs, sb.inputs))
    pairs.extend(zip(sa.outputs, sb.outputs))
    return pairs


def _match_tensors(
    ta: tuple[TensorInfo, ...], tb: tuple[TensorInfo, ...], pairs: list[tuple[int, int]]
) -> tuple[dict[int, tuple[int, str]], set[int]]:
    """B index -> (A index, "name" | "position"), and the A indices used:
    by name (unique names only), then structurally."""
    by_name_a: dict[str, list[int]] = defaultdict(list)
    for t in ta:
        by_name_a[t.name].append(t.index)
    match: dict[int, tuple[int, str]] = {}
    used_a: set[int] = set()
    for t in tb:
        cands = by_name_a.get(t.name) or []
        if len(cands) == 1 and t.name and cands[0] not in used_a:
            match[t.index] = (cands[0], "name")
            used_a.add(cands[0])
    for ia, ib in pairs:
        if ia < 0 or ib < 0 or ib in match or ia in used_a:
            continue
        if ia < len(ta) and ib < len(tb):
            match[ib] = (ia, "position")
            used_a.add(ia)
    return match, used_a


def _tensor_change(s: int, u: TensorInfo, t: TensorInfo, how: str) -> TensorChange | None:
    what = []
    if u.dtype != t.dtype:
        what.append("dtype")
    if tuple(u.shape) != tuple(t.shape):
        what.append("shape")
    if not _same_quant(u.quantization, t.quantization):
        what.append("quantization")
    if not what:
        return None
    return TensorChange(
        name=t.name,
        name_a=u.name,
        subgraph=s,
        matched_by=how,
        dtype_a=u.dtype,
        dtype_b=t.dtype,
        shape_a=tuple(u.shape),
        shape_b=tuple(t.shape),
        quant_a=_quant_words(u),
        quant_b=_quant_words(t),
        bytes_a=u.bytes,
        bytes_b=t.bytes,
        changed=tuple(what),
    )


def _diff_subgraph(s: int, sa: SubgraphInfo, sb: SubgraphInfo, acc: _Changes) -> None:
    pairs = _diff_ops(s, sa, sb, acc)
    ta, tb = sa.tensors, sb.tensors
    match, used_a = _match_tensors(ta, tb, pairs)
    for t in tb:
        if t.index not in match:
            acc.tensors_added.append(t.name)
            continue
        ia, how = match[t.index]
        change = _tensor_change(s, ta[ia], t, how)
        if change is not None:
            acc.tensors_changed.append(change)
    acc.tensors_removed.extend(ta[i].name for i in range(len(ta)) if i not in used_a)


def _by_op_type(ma: ModelInfo, mb: ModelInfo) -> tuple[OpTypeSize, ...]:
    ca, wa = _per_op_type(ma)
    cb, wb = _per_op_type(mb)
    return tuple(
        OpTypeSize(op, ca.get(op, 0), cb.get(op, 0), wa.get(op, 0), wb.get(op, 0))
        for op in sorted(
            set(ca) | set(cb) | set(wa) | set(wb), key=lambda k: (-(wa.get(k, 0) + wb.get(k, 0)), k)
        )
    )


def diff_models(
    a: str | os.PathLike[str] | bytes | ModelInfo,
    b: str | os.PathLike[str] | bytes | ModelInfo,
    *,
    name_a: str | None = None,
    name_b: str | None = None,
) -> ModelDiff:
    """Compare model ``a`` (before) with ``b`` (after). Paths, bytes or
    already-read ``ModelInfo``. Raises ``TFLiteFormatError`` for a file that is
    not a readable .tflite."""
    ma = a if isinstance(a, ModelInfo) else read_model(a, check_zeros=False)
    mb = b if isinstance(b, ModelInfo) else read_model(b, check_zeros=False)
    la = name_a or (Path(a).name if isinstance(a, (str, os.PathLike)) else "A")
    lb = name_b or (Path(b).name if isinstance(b, (str, os.PathLike)) else "B")
    acc = _Changes()
    notes: list[str] = []
    if len(ma.subgraphs) != len(mb.subgraphs):
        notes.append(
            f"A has {len(ma.subgraphs)} subgraph(s), B has {len(mb.subgraphs)}; "
            "subgraphs are compared by position."
        )
    for s in range(min(len(ma.subgraphs), len(mb.subgraphs))):
        _diff_subgraph(s, ma.subgraphs[s], mb.subgraphs[s], acc)
    for s in range(len(mb.subgraphs), len(ma.subgraphs)):
        acc.removed.extend(
            OpChange("removed", o.name, s, o.index, None, _out_name(o, ma.subgraphs[s].tensors))
            for o in ma.subgraphs[s].operators
        )
    for s in range(len(ma.subgraphs), len(mb.subgraphs)):
        acc.added.extend(
            OpChange("added", o.name, s, None, o.index, _out_name(o, mb.subgraphs[s].tensors))
            for o in mb.subgraphs[s].operators
        )
    return ModelDiff(
        name_a=la,
        name_b=lb,
        size_a=ma.file_size,
        size_b=mb.file_size,
        ops_added=tuple(acc.added),
        ops_removed=tuple(acc.removed),
        ops_changed=tuple(acc.changed),
        tensors_changed=tuple(acc.tensors_changed),
        tensors_added=tuple(acc.tensors_added),
        tensors_removed=tuple(acc.tensors_removed),
        by_op_type=_by_op_type(ma, mb),
        subgraphs_a=len(ma.subgraphs),
        subgraphs_b=len(mb.subgraphs),
        notes=tuple(notes),
    )


def _per_op_type(m: ModelInfo) -> tuple[dict[str, int], dict[str, int]]:
    """Op counts, and weight bytes per op type (the report's rule)."""
    return m.op_counts, weights_by_op(m)


# ---------------------------------------------------------------- rendering


def _short(name: str, n: int = 70) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def render_diff(diff: ModelDiff, fmt: str = "text") -> str:
    """``text`` (terminal), ``md`` (Markdown) or ``json``."""
    if fmt == "json":
        return json.dumps(diff.to_dict(), indent=2)
    md = fmt == "md"
    lines: list[str] = []
    h = (lambda s: f"## {s}") if md else (lambda s: f"\n{s}\n{'-' * len(s)}")
    lines.append(("# " if md else "") + f"Diff: {diff.name_a} → {diff.name_b}")
    lines.append("")
    lines.append(diff.summary())
    for n in diff.notes:
        lines.append(f"note: {n}")

    lines.append(h("Size per op type"))
    rows: list[tuple[str, ...]] = [("op", "count A", "count B", "weights A", "weights B")]
    for s in diff.by_op_type:
        rows.append(
            (
                s.op,
                str(s.count_a),
                str(s.count_b),
                human_bytes(s.weight_bytes_a),
                human_bytes(s.weight_bytes_b),
            )
        )
    lines.extend(_table(rows, md))

    if diff.ops_added or diff.ops_removed or diff.ops_changed:
        lines.append(h("Ops"))
        rows = [("change", "op", "where", "details")]
        for o in (*diff.ops_removed, *diff.ops_added, *diff.ops_changed):
            where = f"sg{o.subgraph} " + (
                f"#{o.index_a}→#{o.index_b}"
                if o.change == "changed"
                else f"#{o.index_a}"
                if o.change == "removed"
                else f"#{o.index_b}"
            )
            rows.append((o.change, o.op, where, "; ".join(o.details) or _short(o.output, 50)))
        lines.extend(_table(rows, md))

    if diff.tensors_changed:
        lines.append(h("Tensors that changed"))
        rows = [("tensor", "dtype", "shape", "quantization")]
        for t in diff.tensors_changed:
            dt = (
                f"{t.dtype_a.lower()} → {t.dtype_b.lower()}"
                if "dtype" in t.changed
                else t.dtype_b.lower()
            )
            sh = (
                f"{list(t.shape_a)} → {list(t.shape_b)}"
                if "shape" in t.changed
                else str(list(t.shape_b))
            )
            q = (
                f"{t.quant_a or 'none'} → {t.quant_b or 'none'}"
                if "quantization" in t.changed
                else ""
            )
            name = _short(t.name) + (" (by position)" if t.matched_by == "position" else "")
            rows.append((name, dt, sh, q))
        lines.extend(_table(rows, md))
    if diff.tensors_added:
        lines.append(h(f"Tensors only in B ({len(diff.tensors_added)})"))
        lines.extend(f"- {_short(n)}" for n in diff.tensors_added[:50])
    if diff.tensors_removed:
        lines.append(h(f"Tensors only in A ({len(diff.tensors_removed)})"))
        lines.extend(f"- {_short(n)}" for n in diff.tensors_removed[:50])
    return "\n".join(lines).strip() + "\n"


def _table(rows: list[tuple[str, ...]], md: bool) -> list[str]:
    if md:
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        out.extend("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:])
        return out
    widths = [min(max(len(r[i]) for r in rows), 72) for i in range(len(rows[0]))]
    out = []
    for k, r in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
