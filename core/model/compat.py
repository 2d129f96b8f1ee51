"""Per-op, per-target compatibility verdicts with reasons and sources.

Op knowledge lives in ``core/model/data/op_rules.json`` (one table per target, every
rule with the URL it comes from); this module is the small engine that
evaluates those rules against a ``ModelInfo``. Microcontroller support is
additionally proven by loading the model in the real TFLite Micro interpreter
(a worker task run by ``core.pipeline.inspect``; its result comes in here as a
``MicroProbeResult``).

Verdicts: ``supported`` (runs there), ``partial`` (runs with caveats, or part
of the graph falls back to the CPU), ``unsupported``.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from core.model.reader import ModelInfo, OperatorInfo, OpKind, TensorInfo, _gc_paused

__all__ = [
    "Verdict",
    "Target",
    "Reason",
    "OpVerdict",
    "OpSummary",
    "TargetVerdict",
    "MicroProbeResult",
    "check_compatibility",
    "failed_op_from_log",
    "rules",
]

_OP_PATTERNS = (
    re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'"),
    re.compile(r"Failed to get registration from op code ([A-Za-z0-9_]+)"),
    re.compile(r"Didn't find op for custom opcode '([^']+)'"),
)


def failed_op_from_log(log: str) -> str | None:
    """The op TFLite Micro's log names as the one it has no kernel for."""
    for pattern in _OP_PATTERNS:
        m = pattern.search(log)
        if m:
            return m.group(1)
    return None


class Verdict(str, enum.Enum):
    SUPPORTED = "supported"
    PARTIAL = "partial"
    UNSUPPORTED = "unsupported"


_RANK = {Verdict.SUPPORTED: 0, Verdict.PARTIAL: 1, Verdict.UNSUPPORTED: 2}


def _worst(a: Verdict, b: Verdict) -> Verdict:
    return a if _RANK[a] >= _RANK[b] else b


class Target(str, enum.Enum):
    LITERT_CPU = "litert_cpu"
    XNNPACK = "xnnpack"
    GPU = "gpu"
    EDGETPU = "edgetpu"
    MICRO = "micro"


@dataclass(frozen=True, slots=True)
class Reason:
    message: str
    source: str
    severity: Verdict  # SUPPORTED marks an informational note
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class OpVerdict:
    subgraph: int
    index: int
    op: str
    verdict: Verdict
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class OpSummary:
    op: str
    count: int
    verdict: Verdict  # the worst over its occurrences
    counts: dict[str, int] = field(hash=False)
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class MicroProbeResult:
    ok: bool
    arena_bytes: int | None = None
    invoked: bool = False
    failed_op: str | None = None
    error: str | None = None
    crashed: bool = False
    timed_out: bool = False
    log_tail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    target: Target
    title: str
    summary: str
    source: str
    verdict: Verdict
    counts: dict[str, int] = field(hash=False)
    # Only ops with reasons are listed; the rest are supported without caveats.
    ops: tuple[OpVerdict, ...] = ()
    by_op: dict[str, OpSummary] = field(default_factory=dict, hash=False)
    model_reasons: tuple[Reason, ...] = ()
    details: dict[str, Any] = field(default_factory=dict, hash=False)


# ----------------------------------------------------------------- rule data


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    """The parsed rule tables (``core/model/data/op_rules.json``)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "op_rules.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ----------------------------------------------------------------- op context


class _Ctx:
    """What the checks may look at for one operator."""

    __slots__ = ("model", "op", "ins", "outs", "allow", "quasi_static")

    def __init__(
        self,
        model: ModelInfo,
        op: OperatorInfo,
        tensors: tuple[TensorInfo, ...],
        quasi_static: frozenset[int],
    ) -> None:
        self.model = model
        self.op = op
        self.ins = [tensors[i] if i >= 0 else None for i in op.inputs]
        self.outs = [tensors[i] if i >= 0 else None for i in op.outputs]
        self.allow: dict[str, list[str]] = {}
        self.quasi_static = quasi_static  # outputs of DENSIFY/DEQUANTIZE over constants

    def inp(self, i: int) -> TensorInfo | None:
        return self.ins[i] if 0 <= i < len(self.ins) else None

    def runtime_inputs(self) -> int:
        return sum(1 for t in self.ins if t is not None and not t.is_constant)

    def const_inputs(self) -> int:
        return sum(1 for t in self.ins if t is not None and t.is_constant)


def _cmp(value: Any, rule: dict[str, Any], what: str) -> str | None:
    """Shared eq/ne/min/max/ge/le/in/not_in comparisons; returns a failure text."""
    if "eq" in rule and value != rule["eq"]:
        return f"{what} is {value!r}, needs {rule['eq']!r}"
    if "ne" in rule and value == rule["ne"]:
        return f"{what} must not be {value!r}"
    for key, ok in (("min", lambda v, b: v >= b), ("ge", lambda v, b: v >= b)):
        if key in rule and not (isinstance(value, (int, float)) and ok(value, rule[key])):
            return f"{what} is {value!r}, needs at least {rule[key]!r}"
    for key in ("max", "le"):
        if key in rule and not (isinstance(value, (int, float)) and value <= rule[key]):
            return f"{what} is {value!r}, needs at most {rule[key]!r}"
    if "in" in rule and value not in rule["in"]:
        return f"{what} is {value!r}, needs one of {', '.join(map(str, rule['in']))}"
    if "not_in" in rule and value in rule["not_in"]:
        return f"{what} {value!r} is not supported"
    return None


def _tensor_desc(t: TensorInfo) -> str:
    # No tensor index: messages must depend only on the op's signature (cached).
    return f"{t.dtype}{list(t.shape)}"


def _c_max_version(c: _Ctx, r) -> str | None:
    if c.op.version <= r["max"]:
        return None
    return f"op version {c.op.version} is newer than the supported {r['max']}"


def _c_version_not(c: _Ctx, r) -> str | None:
    return f"op version {c.op.version} is not supported" if c.op.version in r["values"] else None


def _c_activation_in(c: _Ctx, r) -> str | None:
    act = c.op.fused_activation
    if act is None or act in r["values"]:
        return None
    return f"fused activation {act} is not supported"


def _c_option(c: _Ctx, r) -> str | None:
    name = r["name"]
    if name not in c.op.options:
        return None  # absent option = schema default, which the rules accept
    return _cmp(c.op.options[name], r, name)


def _c_option_not_in(c: _Ctx, r) -> str | None:
    v = c.op.options.get(r["name"])
    return f"{r['name']} = {v!r} is not supported" if v in r["values"] else None


def _c_options_equal(c: _Ctx, r) -> str | None:
    values = [c.op.options.get(n) for n in r["names"]]
    if len(set(map(repr, values))) <= 1:
        return None
    return f"{' and '.join(r['names'])} differ ({values})"


def _c_num_inputs(c: _Ctx, r) -> str | None:
    return _cmp(sum(1 for t in c.ins if t is not None), r, "number of inputs")


def _c_num_inputs_in(c: _Ctx, r) -> str | None:
    n = sum(1 for t in c.ins if t is not None)
    if n in r["values"]:
        return None
    return f"has {n} inputs, needs {' or '.join(map(str, r['values']))}"


def _c_num_outputs(c: _Ctx, r) -> str | None:
    return _cmp(len(c.outs), r, "number of outputs")


def _c_runtime_inputs(c: _Ctx, r) -> str | None:
    return _cmp(c.runtime_inputs(), r, "number of runtime (non-constant) inputs")


def _c_const_inputs(c: _Ctx, r) -> str | None:
    return _cmp(c.const_inputs(), r, "number of constant inputs")


def _is_static(c: _Ctx, t: TensorInfo, r) -> bool:
    return t.is_constant or (bool(r.get("quasi_static")) and t.index in c.quasi_static)


def _c_input_const(c: _Ctx, r) -> str | None:
    t = c.inp(r["index"])
    want = r.get("const", True)
    if t is None:
        return f"input {r['index']} is missing" if want else None
    if _is_static(c, t, r) != want:
        return f"input {r['index']} {'must' if want else 'must not'} be a constant"
    return None


def _c_optional_input_const(c: _Ctx, r) -> str | None:
    t = c.inp(r["index"])
    if t is None or _is_static(c, t, r):
        return None
    return f"input {r['index']} must be a constant"


def _c_input_dtype(c: _Ctx, r) -> str | None:
    t = c.inp(r["index"])
    return None if t is None else _cmp(t.dtype, r, f"input {r['index']} type")


def _rank_check(t: TensorInfo | None, r, what: str) -> str | None:
    return None if t is None else _cmp(len(t.shape), r, f"{what} rank")


def _c_input_rank(c: _Ctx, r) -> str | None:
    return _rank_check(c.inp(r["index"]), r, f"input {r['index']}")


def _c_output_rank(c: _Ctx, r) -> str | None:
    i = r["index"]
    return _rank_check(c.outs[i] if i < len(c.outs) else None, r, f"output {i}")


def _c_input_dim(c: _Ctx, r) -> str | None:
    t = c.inp(r["index"])
    if t is None or len(t.shape) <= r["dim"]:
        return f"input {r['index']} has no dimension {r['dim']}"
    return _cmp(t.shape[r["dim"]], r, f"input {r['index']} dimension {r['dim']}")


def _c_same_rank(c: _Ctx, r) -> str | None:
    a, b = c.inp(r["input"]), c.outs[r["output"]] if r["output"] < len(c.outs) else None
    if a is None or b is None or len(a.shape) == len(b.shape):
        return None
    return f"input rank {len(a.shape)} differs from output rank {len(b.shape)}"


def _c_input_shape(c: _Ctx, r) -> str | None:
    t = c.inp(r["index"])
    if t is None:
        return f"input {r['index']} is missing"
    dims = r["dims"]
    mismatch = any(allowed and d not in allowed for d, allowed in zip(t.shape, dims))
    if len(t.shape) != len(dims) or mismatch:
        return f"input {r['index']} has shape {list(t.shape)}"
    return None


def _c_io_dtype_pairs(c: _Ctx, r) -> str | None:
    a, b = c.inp(0), c.outs[0] if c.outs else None
    if a is None or b is None or [a.dtype, b.dtype] in r["pairs"]:
        return None
    return f"{a.dtype} to {b.dtype} is not supported"


def _scoped(c: _Ctx, r) -> list[tuple[str, int, TensorInfo]]:
    """(side, position, tensor) for the tensors a rule's io/scope selects."""
    io = r.get("io", "both")
    scope = r.get("scope", "all")
    out = []
    for side, tensors in (("inputs", c.ins), ("outputs", c.outs)):
        if io != "both" and io != side:
            continue
        for pos, t in enumerate(tensors):
            if t is None:
                continue
            if (scope == "nonconst" and t.is_constant) or (scope == "const" and not t.is_constant):
                continue
            out.append((side, pos, t))
    return out


def _c_tensors_dtype(c: _Ctx, r) -> str | None:
    allowed = r["in"]
    extra = c.allow
    for side, pos, t in _scoped(c, r):
        if t.dtype not in allowed and t.dtype not in extra.get(side, ()):
            return f"{side[:-1]} {pos} ({_tensor_desc(t)}) has type {t.dtype}"
    return None


def _c_tensors_max_rank(c: _Ctx, r) -> str | None:
    for side, pos, t in _scoped(c, r):
        if len(t.shape) > r["max"]:
            return f"{side[:-1]} {pos} ({_tensor_desc(t)}) has {len(t.shape)} dimensions"
    return None


def _c_tensors_innermost(c: _Ctx, r) -> str | None:
    keep = r["max"]
    for side, pos, t in _scoped(c, {"scope": "nonconst"}):
        if len(t.shape) > keep and any(d != 1 for d in t.shape[: len(t.shape) - keep]):
            desc = _tensor_desc(t)
            return f"{side[:-1]} {pos} ({desc}) has more than {keep} dimensions larger than 1"
    return None


def _c_nontrivial_rank(c: _Ctx, r) -> str | None:
    t = c.inp(r["index"])
    if t is None:
        return None
    n = sum(1 for d in t.shape if d != 1)
    if n <= r["max"]:
        return None
    return f"input {r['index']} {list(t.shape)} has {n} dimensions larger than 1"


def _c_input_elements(c: _Ctx, r) -> str | None:
    t = c.inp(r["index"])
    if t is None:
        return None
    n = 1
    for d in t.shape:
        n *= max(d, 1)
    return _cmp(n, r, f"input {r['index']} element count")


class _Unknown(Exception):
    """A constant's values are not available to check (too large to preview)."""


def _const_values(c: _Ctx, i: int) -> tuple[int, ...]:
    t = c.inp(i)
    if t is None:
        raise _Unknown(f"input {i} is missing")
    if not t.is_constant:
        raise _Unknown(f"input {i} is not a constant, so it cannot be checked")
    if t.values is None:
        raise _Unknown(f"input {i} is too large to check")
    return t.values


def _c_input_values_all(c: _Ctx, r) -> str | None:
    values = _const_values(c, r["index"])
    return None if all(v == r["eq"] for v in values) else f"input {r['index']} is {list(values)}"


def _c_input_values_exclude(c: _Ctx, r) -> str | None:
    values = _const_values(c, r["index"])
    bad = [v for v in values if v in r["values"]]
    return f"input {r['index']} contains {bad}" if bad else None


def _c_input_values_subset(c: _Ctx, r) -> str | None:
    values = _const_values(c, r["index"])
    return None if set(values) <= set(r["values"]) else f"input {r['index']} is {list(values)}"


def _c_const_inputs_zero(c: _Ctx, r) -> str | None:
    for t in c.ins:
        if t is not None and t.is_constant:
            buf = c.model.buffers[t.buffer] if t.buffer < len(c.model.buffers) else None
            if buf is None or buf.all_zero is not True:
                return f"constant input ({_tensor_desc(t)}) is not all zeros"
    return None


def _c_note(c: _Ctx, r) -> str | None:
    return ""  # always attaches its reason at its severity


_CHECKS: dict[str, Callable[[_Ctx, dict[str, Any]], str | None]] = {
    "max_version": _c_max_version,
    "version_not": _c_version_not,
    "activation_in": _c_activation_in,
    "option": _c_option,
    "option_not_in": _c_option_not_in,
    "options_equal": _c_options_equal,
    "num_inputs": _c_num_inputs,
    "num_inputs_in": _c_num_inputs_in,
    "num_outputs": _c_num_outputs,
    "runtime_inputs": _c_runtime_inputs,
    "const_inputs": _c_const_inputs,
    "input_const": _c_input_const,
    "optional_input_const": _c_optional_input_const,
    "input_dtype": _c_input_dtype,
    "input_rank": _c_input_rank,
    "output_rank": _c_output_rank,
    "input_dim": _c_input_dim,
    "same_rank": _c_same_rank,
    "input_shape": _c_input_shape,
    "io_dtype_pairs": _c_io_dtype_pairs,
    "tensors_dtype": _c_tensors_dtype,
    "tensors_max_rank": _c_tensors_max_rank,
    "tensors_innermost": _c_tensors_innermost,
    "nontrivial_rank": _c_nontrivial_rank,
    "input_elements": _c_input_elements,
    "input_values_all": _c_input_values_all,
    "input_values_exclude": _c_input_values_exclude,
    "input_values_subset": _c_input_values_subset,
    "const_inputs_zero": _c_const_inputs_zero,
    "note": _c_note,
}


def _run(c: _Ctx, rule: dict[str, Any]) -> tuple[str | None, bool]:
    """(failure text or None, unknown?) for one rule, including ``any`` groups."""
    if "any" in rule:
        failures = []
        for group in rule["any"]:
            bad = None
            for sub in group:
                bad, _unknown = _run(c, sub)
                if bad is not None:
                    break
            if bad is None:
                return None, False
            failures.append(bad)
        return "; ".join(f for f in failures if f), False
    try:
        return _CHECKS[rule["check"]](c, rule), False
    except _Unknown as e:
        return str(e), True


def _reason_from(rule: dict[str, Any], detail: str, unknown: bool, default_source: str) -> Reason:
    severity = Verdict(rule.get("severity", "unsupported"))
    if unknown:
        severity = Verdict.PARTIAL  # could not prove it either way
    text = rule.get("reason", "")
    if detail and text:
        text = f"{text} ({detail})"
    elif detail:
        text = detail
    return Reason(text, rule.get("source", default_source), severity, rule.get("hint"))


# ----------------------------------------------------------------- evaluation


def _evaluate_op(
    model: ModelInfo,
    target: dict[str, Any],
    op: OperatorInfo,
    tensors: tuple[TensorInfo, ...],
    quasi_static: frozenset[int],
) -> tuple[Verdict, list[Reason]]:
    src = target["source"]
    name = op.name
    fmt = {"op": name}
    if op.kind is OpKind.BUILTIN:
        entry = target["ops"].get(name)
        if entry is None and target.get("builtins") == "all" and not name.startswith("UNKNOWN_"):
            entry = {"rules": []}
    else:
        entry = target["custom_ops"].get(name)
        if entry is None:
            return _whole_op(target["kinds"][op.kind.value], fmt, src)
    if entry is None:
        return _whole_op(target["unknown_op"], fmt, src)
    ctx = _Ctx(model, op, tensors, quasi_static)
    allow = entry.get("allow_types")
    if allow:
        ctx.allow = {"inputs": allow.get("inputs", []), "outputs": allow.get("outputs", [])}
    op_source = entry.get("source", src)
    verdict = Verdict.SUPPORTED
    reasons: list[Reason] = []
    for rule in (*target["all_ops"], *entry["rules"]):
        detail, unknown = _run(ctx, rule)
        if detail is None:
            continue
        reason = _reason_from(rule, detail, unknown, op_source)
        if reason not in reasons:
            reasons.append(reason)
        verdict = _worst(verdict, reason.severity)
    return verdict, reasons


def _whole_op(rule: dict[str, Any], fmt: dict[str, str], default_source: str):
    """Verdict for an op decided by its kind or absence from the list alone."""
    verdict = Verdict(rule["verdict"])
    text = rule["reason"].format(**fmt)
    return verdict, [Reason(text, rule.get("source", default_source), verdict, rule.get("hint"))]


def _quasi_static(operators, tensors) -> frozenset[int]:
    """Tensors computed once from constants (sparse or fp16 weights being unpacked)."""
    out = set()
    for op in operators:
        quasi = op.name in ("DENSIFY", "DEQUANTIZE") and op.inputs and op.inputs[0] >= 0
        if quasi and tensors[op.inputs[0]].is_constant:
            out.update(i for i in op.outputs if i >= 0)
    return frozenset(out)


def _m_static_shapes(model: ModelInfo) -> str | None:
    dyn = [t for t in model.tensors if t.is_dynamic]
    if not dyn:
        return None
    t = dyn[0]
    sig = list(t.shape_signature or ())
    return f"{len(dyn)} tensors have dynamic dimensions, e.g. {t.name!r} {sig}"


def _m_fully_quantized(model: ModelInfo) -> str | None:
    if any(t.dtype in ("INT8", "UINT8") and not t.is_constant for t in model.tensors):
        return None
    return "no 8-bit activations: the model is float or dynamic-range quantized"


_MODEL_CHECKS: dict[str, Callable[[ModelInfo], str | None]] = {
    "static_shapes": _m_static_shapes,
    "fully_quantized": _m_fully_quantized,
}


class _Signatures:
    """Ops with the same code, options and tensor features get the same verdict,
    so each distinct signature is evaluated once per target."""

    def __init__(self, model: ModelInfo) -> None:
        self.quasi: list[frozenset[int]] = []
        self.groups: dict[tuple, list[OperatorInfo]] = {}
        self.keys: list[list[tuple]] = []
        zero = {b.index for b in model.buffers if b.all_zero}
        interned: dict[Any, int] = {}
        intern = interned.setdefault
        groups = self.groups
        for sg in model.subgraphs:
            quasi = _quasi_static(sg.operators, sg.tensors)
            self.quasi.append(quasi)
            tids = [
                intern(
                    (t.dtype, t.shape, t.is_constant, t.values, t.index in quasi, t.buffer in zero),
                    len(interned),
                )
                for t in sg.tensors
            ]
            keys = []
            for op in sg.operators:
                items = tuple(
                    (k, tuple(v) if isinstance(v, list) else v) for k, v in op.options.items()
                )
                opts = intern(("options", items), len(interned))
                key = (
                    op.opcode_index,
                    opts,
                    tuple([tids[i] if i >= 0 else -1 for i in op.inputs]),
                    tuple([tids[i] if i >= 0 else -1 for i in op.outputs]),
                )
                keys.append(key)
                group = groups.get(key)
                if group is None:
                    groups[key] = [op]
                else:
                    group.append(op)
            self.keys.append(keys)


def _evaluate_target(
    model: ModelInfo, key: str, target: dict[str, Any], sigs: _Signatures
) -> TargetVerdict:
    src = target["source"]
    results: dict[tuple, tuple[Verdict, tuple[Reason, ...]]] = {}
    for k, ops in sigs.groups.items():
        op = ops[0]
        verdict, reasons = _evaluate_op(
            model, target, op, model.subgraphs[op.subgraph].tensors, sigs.quasi[op.subgraph]
        )
        results[k] = (verdict, tuple(reasons))
    overrides: dict[tuple[int, int], tuple[Verdict, tuple[Reason, ...]]] = {}
    if target.get("partition") == "first_unsupported" and model.subgraphs:
        # The Edge TPU compiler maps one leading segment; the rest runs on the CPU.
        sg0 = model.subgraphs[0]
        keys0 = sigs.keys[0]
        first = next(
            (op for op in sg0.operators if results[keys0[op.index]][0] is Verdict.UNSUPPORTED), None
        )
        if first is not None:
            why = Reason(
                target["partition_reason"].format(first=f"{first.name} #{first.index}"),
                target.get("partition_source", src),
                Verdict.PARTIAL,
            )
            for op in sg0.operators[first.index + 1 :]:
                v, reasons = results[keys0[op.index]]
                if v is Verdict.SUPPORTED:
                    overrides[(0, op.index)] = (Verdict.PARTIAL, (*reasons, why))
    counts: Counter[Verdict] = Counter()
    per_name: dict[str, tuple[Counter, dict[int, tuple[Reason, ...]]]] = {}
    listed: list[OpVerdict] = []
    for k, ops in sigs.groups.items():
        verdict, reasons = results[k]
        entry = per_name.get(ops[0].name)
        if entry is None:
            entry = per_name[ops[0].name] = (Counter(), {})
        if overrides:
            for op in ops:
                v, rs = overrides.get((op.subgraph, op.index), (verdict, reasons))
                counts[v] += 1
                entry[0][v] += 1
                if rs:
                    listed.append(OpVerdict(op.subgraph, op.index, op.name, v, rs))
                    entry[1][id(rs)] = rs
            continue
        counts[verdict] += len(ops)
        entry[0][verdict] += len(ops)
        if reasons:
            entry[1][id(reasons)] = reasons
            listed.extend(OpVerdict(op.subgraph, op.index, op.name, verdict, reasons) for op in ops)
    listed.sort(key=lambda o: (o.subgraph, o.index))
    by_op = {}
    for name in sorted(per_name):
        vcounts, reason_sets = per_name[name]
        unique: list[Reason] = []
        for reasons in reason_sets.values():
            for r in reasons:
                if r not in unique and len(unique) < 8:
                    unique.append(r)
        worst = max(vcounts, key=_RANK.__getitem__)
        counts_by_verdict = {v.value: n for v, n in vcounts.items()}
        total = sum(vcounts.values())
        by_op[name] = OpSummary(name, total, worst, counts_by_verdict, tuple(unique))
    model_reasons = []
    for rule in target.get("model_rules", []):
        detail = _MODEL_CHECKS[rule["check"]](model)
        if detail is not None:
            model_reasons.append(_reason_from(rule, detail, False, src))
    verdict = _aggregate(target, counts, model_reasons)
    return TargetVerdict(
        target=Target(key),
        title=target["title"],
        summary=target["summary"],
        source=src,
        verdict=verdict,
        counts={v.value: counts.get(v, 0) for v in Verdict},
        ops=tuple(listed),
        by_op=by_op,
        model_reasons=tuple(model_reasons),
    )


def _aggregate(target: dict[str, Any], counts: Counter, model_reasons: list[Reason]) -> Verdict:
    verdict = Verdict.SUPPORTED
    for r in model_reasons:
        verdict = _worst(verdict, r.severity)
    total = sum(counts.values())
    bad, partial = counts.get(Verdict.UNSUPPORTED, 0), counts.get(Verdict.PARTIAL, 0)
    if target.get("fallback"):
        # Unsupported ops fall back to the CPU: the target runs part of the model.
        if total and bad == total:
            return Verdict.UNSUPPORTED
        if bad or partial:
            verdict = _worst(verdict, Verdict.PARTIAL)
        return verdict
    if bad:
        return Verdict.UNSUPPORTED
    if partial:
        verdict = _worst(verdict, Verdict.PARTIAL)
    return verdict


def _apply_micro_probe(
    model: ModelInfo, tv: TargetVerdict, probe: MicroProbeResult
) -> TargetVerdict:
    source = "https://github.com/tensorflow/tflite-micro/tree/main/python/tflite_micro"
    details: dict[str, Any] = {
        "probe": "tflite_micro interpreter",
        "ok": probe.ok,
        "arena_bytes": probe.arena_bytes,
        "invoked": probe.invoked,
        "seconds": round(probe.seconds, 3),
    }
    if probe.ok:
        if tv.verdict is Verdict.UNSUPPORTED:
            # The real interpreter wins over the static op list.
            note = Reason(
                "the TFLite Micro interpreter loaded and ran the model", source, Verdict.SUPPORTED
            )
            reasons = (*tv.model_reasons, note)
            return _replace(tv, verdict=Verdict.PARTIAL, model_reasons=reasons, details=details)
        return _replace(tv, details=details)
    failed = probe.failed_op
    if failed == "CUSTOM":
        # TFLM only says "CUSTOM"; name the first custom op it has no kernel for.
        known = rules()["targets"]["micro"]["custom_ops"]
        unknown = (
            op.name
            for op in model.operators
            if op.kind is not OpKind.BUILTIN and op.name not in known
        )
        failed = next(unknown, failed)
    at = f" (at {failed})" if failed else ""
    if probe.timed_out:
        text = "the TFLite Micro interpreter did not finish in time"
    elif probe.crashed:
        text = f"the TFLite Micro interpreter crashed while loading the model{at}"
    else:
        error = probe.error or "unknown error"
        text = f"the TFLite Micro interpreter rejected the model{at}: {error}"
    details.update(error=probe.error, failed_op=failed, log_tail=probe.log_tail)
    reason = Reason(text, source, Verdict.UNSUPPORTED)
    ops = list(tv.ops)
    by_op = dict(tv.by_op)
    if failed:
        marked = {(o.subgraph, o.index) for o in ops}
        for op in model.operators:
            if op.name == failed and (op.subgraph, op.index) not in marked:
                ops.append(
                    OpVerdict(op.subgraph, op.index, op.name, Verdict.UNSUPPORTED, (reason,))
                )
        if failed in by_op:
            s = by_op[failed]
            by_op[failed] = OpSummary(
                s.op, s.count, Verdict.UNSUPPORTED, s.counts, (*s.reasons, reason)
            )
        ops.sort(key=lambda o: (o.subgraph, o.index))
    return _replace(
        tv,
        verdict=Verdict.UNSUPPORTED,
        model_reasons=(*tv.model_reasons, reason),
        ops=tuple(ops),
        by_op=by_op,
        details=details,
    )


def _replace(tv: TargetVerdict, **changes: Any) -> TargetVerdict:
    fields = {name: getattr(tv, name) for name in TargetVerdict.__dataclass_fields__}
    fields.update(changes)
    return TargetVerdict(**fields)


def check_compatibility(
    model: ModelInfo,
    *,
    targets: Iterable[Target | str] | None = None,
    micro_probe: MicroProbeResult | None = None,
) -> dict[Target, TargetVerdict]:
    """Verdicts for each target (all targets by default)."""
    tables = rules()["targets"]
    wanted = [Target(t) for t in targets] if targets is not None else list(Target)
    out: dict[Target, TargetVerdict] = {}
    with _gc_paused():
        sigs = _Signatures(model)
        evaluated = {t: _evaluate_target(model, t.value, tables[t.value], sigs) for t in wanted}
    for t in wanted:
        tv = evaluated[t]
        if t is Target.MICRO:
            if micro_probe is not None:
                tv = _apply_micro_probe(model, tv, micro_probe)
            else:
                tv = _replace(tv, details={"probe": "not run (static op list only)"})
        out[t] = tv
    return out
