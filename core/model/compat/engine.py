"""Evaluate a target's rule table against a model.

Ops with the same code, options and tensor features get the same verdict,
so each distinct signature is evaluated once per target (``Signatures``);
the results are then counted per op and per op type, the Edge TPU's
partitioning is applied, and the model-wide checks decide the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from core.model.compat.checks import (
    GENERIC_CHECKS,
    MODEL_CHECKS,
    Check,
    OpContext,
    ValuesUnknown,
)
from core.model.compat.predicates import run_predicate
from core.model.compat.tables import Rule
from core.model.compat.verdicts import (
    RANK,
    OpSummary,
    OpVerdict,
    Reason,
    Target,
    TargetVerdict,
    Verdict,
    worst,
)
from core.model.info import ModelInfo, OperatorInfo, OpKind, TensorInfo

__all__ = ["CHECKS", "Signatures", "evaluate_target"]

CHECKS: dict[str, Check] = {**GENERIC_CHECKS, "predicate": run_predicate}

_MAX_REASONS = 8  # per op type in a target's summary

_Result = tuple[Verdict, tuple[Reason, ...]]
_SigKey = tuple[int, int, tuple[int, ...], tuple[int, ...]]  # see Signatures


def _run(c: OpContext, rule: Rule) -> tuple[str | None, bool]:
    """(failure text or None, unknown?) for one rule."""
    try:
        return CHECKS[rule["check"]](c, rule), False
    except ValuesUnknown as e:
        return str(e), True


def _reason_from(rule: Rule, detail: str, unknown: bool, default_source: str) -> Reason:
    severity = Verdict(rule.get("severity", "unsupported"))
    if unknown:
        severity = Verdict.PARTIAL  # could not prove it either way
    text = rule.get("reason", "")
    if detail and text:
        text = f"{text} ({detail})"
    elif detail:
        text = detail
    return Reason(text, rule.get("source", default_source), severity, rule.get("hint"))


def _whole_op(rule: Rule, fmt: dict[str, str], default_source: str) -> tuple[Verdict, list[Reason]]:
    """Verdict for an op decided by its kind or absence from the list alone."""
    verdict = Verdict(rule["verdict"])
    text = rule["reason"].format(**fmt)
    return verdict, [Reason(text, rule.get("source", default_source), verdict, rule.get("hint"))]


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
    ctx = OpContext(model, op, tensors, quasi_static)
    allow = entry.get("allow_types")
    if allow:
        ctx.allow = {"inputs": allow.get("inputs", []), "outputs": allow.get("outputs", [])}
    # A check without a source inherits its op's (an all_ops check: its target's).
    op_source = entry.get("source", src)
    checks = [(rule, src) for rule in target["all_ops"]]
    checks += [(rule, op_source) for rule in entry["rules"]]
    verdict = Verdict.SUPPORTED
    reasons: list[Reason] = []
    for rule, source in checks:
        detail, unknown = _run(ctx, rule)
        if detail is None:
            continue
        reason = _reason_from(rule, detail, unknown, source)
        if reason not in reasons:
            reasons.append(reason)
        verdict = worst(verdict, reason.severity)
    return verdict, reasons


def _quasi_static(
    operators: Sequence[OperatorInfo], tensors: Sequence[TensorInfo]
) -> frozenset[int]:
    """Tensors computed once from constants (sparse or fp16 weights being unpacked)."""
    out: set[int] = set()
    for op in operators:
        quasi = op.name in ("DENSIFY", "DEQUANTIZE") and op.inputs and op.inputs[0] >= 0
        if quasi and tensors[op.inputs[0]].is_constant:
            out.update(i for i in op.outputs if i >= 0)
    return frozenset(out)


class Signatures:
    """Ops with the same code, options and tensor features get the same verdict,
    so each distinct signature is evaluated once per target."""

    def __init__(self, model: ModelInfo) -> None:
        self.quasi: list[frozenset[int]] = []
        self.groups: dict[_SigKey, list[OperatorInfo]] = {}
        self.keys: list[list[_SigKey]] = []
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


# ----------------------------------------------------------------- one target


def _signature_results(
    model: ModelInfo, target: dict[str, Any], sigs: Signatures
) -> dict[_SigKey, _Result]:
    results: dict[_SigKey, _Result] = {}
    for k, ops in sigs.groups.items():
        op = ops[0]
        verdict, reasons = _evaluate_op(
            model, target, op, model.subgraphs[op.subgraph].tensors, sigs.quasi[op.subgraph]
        )
        results[k] = (verdict, tuple(reasons))
    return results


def _partition_overrides(
    model: ModelInfo, target: dict[str, Any], sigs: Signatures, results: dict[_SigKey, _Result]
) -> dict[tuple[int, int], _Result]:
    """(subgraph, op index) -> result, for ops a partitioning target leaves to the CPU."""
    overrides: dict[tuple[int, int], _Result] = {}
    if target.get("partition") != "first_unsupported" or not model.subgraphs:
        return overrides
    # The Edge TPU compiler maps one leading segment; the rest runs on the CPU.
    sg0 = model.subgraphs[0]
    keys0 = sigs.keys[0]
    first = next(
        (op for op in sg0.operators if results[keys0[op.index]][0] is Verdict.UNSUPPORTED), None
    )
    if first is None:
        return overrides
    why = Reason(
        target["partition_reason"].format(first=f"{first.name} #{first.index}"),
        target.get("partition_source", target["source"]),
        Verdict.PARTIAL,
    )
    for op in sg0.operators[first.index + 1 :]:
        v, reasons = results[keys0[op.index]]
        if v is Verdict.SUPPORTED:
            overrides[(0, op.index)] = (Verdict.PARTIAL, (*reasons, why))
    return overrides


# Per op type: how many ops got each verdict, and its distinct reason tuples.
_PerName = dict[str, tuple[Counter[Verdict], dict[int, tuple[Reason, ...]]]]


def _tally(
    sigs: Signatures,
    results: dict[_SigKey, _Result],
    overrides: dict[tuple[int, int], _Result],
) -> tuple[Counter[Verdict], _PerName, list[OpVerdict]]:
    """Verdict counts, per op type, and the ops that have reasons (in graph order)."""
    counts: Counter[Verdict] = Counter()
    per_name: _PerName = {}
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
    return counts, per_name, listed


def _summaries(per_name: _PerName) -> dict[str, OpSummary]:
    by_op = {}
    for name in sorted(per_name):
        vcounts, reason_sets = per_name[name]
        unique: list[Reason] = []
        for reasons in reason_sets.values():
            for r in reasons:
                if r not in unique and len(unique) < _MAX_REASONS:
                    unique.append(r)
        worst_verdict = max(vcounts, key=RANK.__getitem__)
        counts_by_verdict = {v.value: n for v, n in vcounts.items()}
        total = sum(vcounts.values())
        by_op[name] = OpSummary(name, total, worst_verdict, counts_by_verdict, tuple(unique))
    return by_op


def _model_reasons(model: ModelInfo, target: dict[str, Any]) -> list[Reason]:
    out = []
    for rule in target.get("model_rules", []):
        detail = MODEL_CHECKS[rule["check"]](model)
        if detail is not None:
            out.append(_reason_from(rule, detail, False, target["source"]))
    return out


def _aggregate(
    target: dict[str, Any], counts: Counter[Verdict], model_reasons: list[Reason]
) -> Verdict:
    verdict = Verdict.SUPPORTED
    for r in model_reasons:
        verdict = worst(verdict, r.severity)
    total = sum(counts.values())
    bad, partial = counts.get(Verdict.UNSUPPORTED, 0), counts.get(Verdict.PARTIAL, 0)
    if target.get("fallback"):
        # Unsupported ops fall back to the CPU: the target runs part of the model.
        if total and bad == total:
            return Verdict.UNSUPPORTED
        if bad or partial:
            verdict = worst(verdict, Verdict.PARTIAL)
        return verdict
    if bad:
        return Verdict.UNSUPPORTED
    if partial:
        verdict = worst(verdict, Verdict.PARTIAL)
    return verdict


def evaluate_target(
    model: ModelInfo, key: str, target: dict[str, Any], sigs: Signatures
) -> TargetVerdict:
    """The verdict of one target's rule table (``rules()["targets"][key]``)."""
    results = _signature_results(model, target, sigs)
    overrides = _partition_overrides(model, target, sigs, results)
    counts, per_name, listed = _tally(sigs, results, overrides)
    model_reasons = _model_reasons(model, target)
    return TargetVerdict(
        target=Target(key),
        title=target["title"],
        summary=target["summary"],
        source=target["source"],
        verdict=_aggregate(target, counts, model_reasons),
        counts={v.value: counts.get(v, 0) for v in Verdict},
        ops=tuple(listed),
        by_op=_summaries(per_name),
        model_reasons=tuple(model_reasons),
    )
