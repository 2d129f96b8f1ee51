"""Verdicts from real runs. Where a runtime can run here (LiteRT's
Interpreter and CompiledModel, XNNPACK, TFLite Micro), what the run did is
the verdict; the rule tables stay to explain it (why an op stays on the
built-in kernels, what to change). Where nothing runs here (GPU, Edge TPU)
the rules decide, and the verdict says so. A card's op counts always agree
with its verdict: a run that succeeded accepts every op.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from core.model.compat import micro as _micro_rules
from core.model.compat.verdicts import (
    RANK,
    MicroProbeResult,
    OpSummary,
    OpVerdict,
    Probes,
    Reason,
    Runtime,
    RuntimeRun,
    Target,
    TargetVerdict,
    Verdict,
)
from core.model.info import ModelInfo
from core.model.runtime_words import explain_crash, explain_runtime_error
from core.units import plural

__all__ = ["apply_probes", "RUN_SOURCE", "NOT_RUN", "RUNTIME_NAMES"]

RUN_SOURCE = "https://ai.google.dev/edge/litert/inference"
_XNN_SOURCE = "https://github.com/google/XNNPACK"
_NODE = re.compile(r"Node number (\d+) \(([^)]+)\) failed")
# Targets no hardware here can run: the page says the verdict is the rules'.
NOT_RUN = {
    Target.GPU: "this server has no GPU",
    Target.EDGETPU: "this server has no Edge TPU",
}
RUNTIME_NAMES = {
    Runtime.INTERPRETER.value: "Interpreter API (built-in kernels)",
    Runtime.XNNPACK.value: "Interpreter API with XNNPACK",
    Runtime.COMPILED_MODEL.value: "CompiledModel API (CPU, XNNPACK)",
    Runtime.COMPILED_MODEL_BUILTIN.value: "CompiledModel API (CPU, built-in kernels)",
}


def _counts(ops: Iterable[Verdict], total: int) -> dict[str, int]:
    c = Counter(ops)
    listed = sum(c.values())
    c[Verdict.SUPPORTED] += total - listed
    return {v.value: c.get(v, 0) for v in Verdict}


def _demote(reasons: tuple[Reason, ...], note: str) -> tuple[Reason, ...]:
    """Rule reasons kept as explanations once a run has shown the op works."""
    return tuple(
        r
        if r.severity is Verdict.SUPPORTED
        else Reason(f"{r.message} ({note})", r.source, Verdict.SUPPORTED, r.hint)
        for r in reasons
    )


def _all_ran(
    tv: TargetVerdict, model: ModelInfo, note: str, reason: Reason | None
) -> TargetVerdict:
    """Every op accepted (the run went through); rule reasons kept as notes."""
    ops = tuple(
        OpVerdict(o.subgraph, o.index, o.op, Verdict.SUPPORTED, _demote(o.reasons, note))
        for o in tv.ops
    )
    by_op = {
        k: OpSummary(
            s.op, s.count, Verdict.SUPPORTED, {"supported": s.count}, _demote(s.reasons, note)
        )
        for k, s in tv.by_op.items()
    }
    return dataclasses.replace(
        tv,
        verdict=Verdict.SUPPORTED,
        ops=ops,
        by_op=by_op,
        counts=_counts((), len(model.operators)),
        model_reasons=(*_demote(tv.model_reasons, note), *((reason,) if reason else ())),
    )


_Marks = dict[tuple[int, int], tuple[Reason, ...]]


def _nothing_ran(tv: TargetVerdict, model: ModelInfo, reason: Reason) -> TargetVerdict:
    """A run that failed on the model as a whole: no op ran, so none is counted
    as running (the rules' per-op reasons stay listed)."""
    by_op = {
        k: OpSummary(
            s.op, s.count, Verdict.UNSUPPORTED, {"unsupported": s.count}, (*s.reasons, reason)
        )
        for k, s in tv.by_op.items()
    }
    counts = {v.value: 0 for v in Verdict}
    counts[Verdict.UNSUPPORTED.value] = len(model.operators)
    return dataclasses.replace(tv, by_op=by_op, counts=counts)


def _mark(
    tv: TargetVerdict, model: ModelInfo, marks: _Marks, verdict: Verdict, replace: bool = False
) -> TargetVerdict:
    """``tv`` with the ops in ``marks`` set to ``verdict``, their reasons added
    (or, with ``replace``, set); counts recomputed."""
    by_key = {(o.subgraph, o.index): o for o in tv.ops}
    for (sg, idx), given in marks.items():
        if sg >= len(model.subgraphs) or idx >= len(model.subgraphs[sg].operators):
            continue
        name = model.subgraphs[sg].operators[idx].name
        old = by_key.get((sg, idx))
        reasons = given if replace or old is None else (*old.reasons, *given)
        by_key[(sg, idx)] = OpVerdict(sg, idx, name, verdict, tuple(dict.fromkeys(reasons)))
    ops = tuple(sorted(by_key.values(), key=lambda o: (o.subgraph, o.index)))
    by_op = dict(tv.by_op)
    per: dict[str, Counter[Verdict]] = {}
    for o in ops:
        per.setdefault(o.op, Counter())[o.verdict] += 1
    for name, c in per.items():
        s = by_op.get(name)
        if s is None:
            continue
        listed = sum(c.values())
        counts = {v.value: c.get(v, 0) for v in Verdict}
        counts["supported"] += s.count - listed
        worst = max((Verdict(k) for k, n in counts.items() if n), key=RANK.__getitem__)
        extra = [r for k, rs in marks.items() if k in by_key and by_key[k].op == name for r in rs]
        reasons = tuple(dict.fromkeys((*s.reasons, *extra)))[:8]
        by_op[name] = OpSummary(s.op, s.count, worst, counts, reasons)
    return dataclasses.replace(
        tv, ops=ops, by_op=by_op, counts=_counts((o.verdict for o in ops), len(model.operators))
    )


def _failure_reason(run: RuntimeRun, api: str) -> tuple[Reason, bool]:
    """(the reason in words, whether the model is at fault)."""
    if run.crashed:
        words = explain_crash(run.crashed, run.stage, "LiteRT")
    elif run.timed_out:
        return Reason(
            f"LiteRT ({api}) did not finish in time.", RUN_SOURCE, Verdict.UNSUPPORTED
        ), True
    else:
        words = explain_runtime_error(run.error or "")
    said = f" LiteRT said: {run.error}" if run.error and not run.crashed else ""
    return (
        Reason(f"{words.cause}{said}", RUN_SOURCE, Verdict.UNSUPPORTED, words.fix),
        words.model_fault,
    )


_CUSTOM = re.compile(r"custom op:? '?([^\s.']+)")


def _node_marks(model: ModelInfo, run: RuntimeRun, reason: Reason) -> _Marks:
    """The ops a runtime's message names: "Node number 6 (GATHER) failed", or
    every op of an unresolved custom op."""
    text = run.error or ""
    m = _NODE.search(text)
    if m:
        return {(0, int(m.group(1))): (reason,)}
    c = _CUSTOM.search(text)
    if c:
        return {(o.subgraph, o.index): (reason,) for o in model.operators if o.name == c.group(1)}
    return {}


def _apis(probes: Probes) -> dict[str, str]:
    return {
        RUNTIME_NAMES.get(r.runtime, r.runtime): r.outcome
        + (f": {r.error}" if r.error and not r.ran else "")
        for r in probes.runs
    }


def _cpu(model: ModelInfo, tv: TargetVerdict, probes: Probes) -> TargetVerdict:
    plain = probes.run(Runtime.INTERPRETER)
    compiled = probes.run(Runtime.COMPILED_MODEL_BUILTIN) or probes.run(Runtime.COMPILED_MODEL)
    details = {**tv.details, "apis": _apis(probes)}
    if plain is None or plain.skipped:
        why = plain.skipped if plain is not None else "no run was made"
        return dataclasses.replace(tv, details={**details, "decided_by": "rules", "not_run": why})
    details["decided_by"] = "run"
    ran = [r for r in (plain, compiled) if r is not None and r.ran]
    if ran:
        apis = " and ".join(RUNTIME_NAMES[r.runtime].split(" (")[0] for r in ran)
        note = Reason(
            f"LiteRT loaded, allocated and ran the model here ({apis}).",
            RUN_SOURCE,
            Verdict.SUPPORTED,
        )
        out = _all_ran(tv, model, "it ran here", note)
        refused = [r for r in (plain, compiled) if r is not None and not r.ran]
        if refused:
            r = refused[0]
            words = explain_runtime_error(r.error or "") if not r.crashed else None
            cause = words.cause if words else f"it {r.outcome}"
            only = Reason(
                f"Only the {apis} runs this model; the {RUNTIME_NAMES[r.runtime]} refused it: "
                f"{cause}" + (f" (LiteRT said: {r.error})" if r.error else ""),
                RUN_SOURCE,
                Verdict.SUPPORTED,
                words.fix if words else None,
            )
            out = dataclasses.replace(out, model_reasons=(*out.model_reasons, only))
        return dataclasses.replace(out, details=details)
    reason, fault = _failure_reason(plain, RUNTIME_NAMES[plain.runtime])
    verdict = Verdict.UNSUPPORTED if fault else Verdict.PARTIAL
    marks = _node_marks(model, plain, reason)
    marked = (
        _mark(tv, model, marks, verdict) if marks or not fault else _nothing_ran(tv, model, reason)
    )
    return dataclasses.replace(
        marked,
        verdict=verdict,
        model_reasons=(*tv.model_reasons, reason),
        details={**details, "fault": "model" if fault else "runtime"},
    )


def _xnnpack(model: ModelInfo, tv: TargetVerdict, probes: Probes) -> TargetVerdict:
    run = probes.run(Runtime.XNNPACK)
    if run is None or run.skipped:
        why = run.skipped if run is not None else "no run was made"
        return dataclasses.replace(
            tv, details={**tv.details, "decided_by": "rules", "not_run": why}
        )
    details: dict[str, Any] = {**tv.details, "decided_by": "run"}
    if not run.ran:
        reason, _ = _failure_reason(run, RUNTIME_NAMES[run.runtime])
        marks = _node_marks(model, run, reason)
        failed = (
            _mark(tv, model, marks, Verdict.UNSUPPORTED)
            if marks
            else _nothing_ran(tv, model, reason)
        )
        return dataclasses.replace(
            failed,
            verdict=Verdict.UNSUPPORTED,
            model_reasons=(*tv.model_reasons, reason),
            details=details,
        )
    n, total = run.delegated_nodes, run.total_nodes
    if n is None or total is None:
        return dataclasses.replace(tv, details={**details, "decided_by": "rules"})
    details.update(delegated_nodes=n, total_nodes=total, partitions=run.partitions)
    left = Reason(
        "XNNPACK did not take this op here; it runs on LiteRT's built-in CPU kernels.",
        _XNN_SOURCE,
        Verdict.PARTIAL,
    )
    rules = {(o.subgraph, o.index): o.reasons for o in tv.ops}  # they explain why
    out = _all_ran(tv, model, "ran here", None)
    # nothing delegated: XNNPACK does nothing for this model
    behind = Verdict.UNSUPPORTED if n == 0 else Verdict.PARTIAL
    marks = {(0, i): (*rules.get((0, i), ()), left) for i in run.cpu_nodes}
    out = _mark(out, model, marks, behind, replace=True)
    # LiteRT shows the delegation of the main subgraph only: the others
    # (loop and branch bodies) keep the rules' verdicts
    for v in (Verdict.PARTIAL, Verdict.UNSUPPORTED):
        others = {(o.subgraph, o.index): o.reasons for o in tv.ops if o.subgraph and o.verdict is v}
        out = _mark(out, model, others, v, replace=True)
    flagged = out.counts["partial"] + out.counts["unsupported"]
    verdict = Verdict.UNSUPPORTED if n == 0 else Verdict.PARTIAL if flagged else Verdict.SUPPORTED
    where = "here" if len(model.subgraphs) == 1 else "in the main subgraph"
    rest = "" if len(model.subgraphs) == 1 else "; the other subgraphs are judged by the rules"
    summary = Reason(
        f"XNNPACK took {n} of {plural(total, 'operator')} {where}, in "
        f"{plural(run.partitions or 0, 'partition')}"
        + ("" if n == total else "; the rest run on LiteRT's built-in kernels")
        + rest
        + ".",
        _XNN_SOURCE,
        verdict,
    )
    return dataclasses.replace(
        out, verdict=verdict, model_reasons=(*out.model_reasons, summary), details=details
    )


def _micro(model: ModelInfo, tv: TargetVerdict, probe: MicroProbeResult | None) -> TargetVerdict:
    """The TFLite Micro interpreter decides; the rules explain a failure."""
    if probe is None:
        return dataclasses.replace(
            tv, details={**tv.details, "decided_by": "rules", "not_run": "not asked for"}
        )
    src = _micro_rules.SOURCE
    details: dict[str, Any] = {
        **tv.details,
        "decided_by": "run",
        "probe": "tflite_micro interpreter",
        "ok": probe.ok,
        "arena_bytes": probe.arena_bytes,
        "invoked": probe.invoked,
        "seconds": round(probe.seconds, 3),
        "fits": _micro_rules.fits(model.file_size, probe.arena_bytes),
    }
    if probe.ok:
        arena = f", with a tensor arena of {probe.arena_bytes:,} bytes" if probe.arena_bytes else ""
        note = Reason(
            f"The TFLite Micro interpreter loaded and ran the model here{arena}.",
            src,
            Verdict.SUPPORTED,
        )
        return dataclasses.replace(_all_ran(tv, model, "it ran here", note), details=details)
    failed = _micro_rules.failed_op(model, probe)
    details.update(error=probe.error, failed_op=failed, log_tail=probe.log_tail)
    hybrid = _micro_rules.hybrid_ops(model)
    node = _micro_rules.failed_node(probe.log_tail)
    if hybrid and (
        _micro_rules.says_hybrid(probe.log_tail) or not failed or failed in {o.name for o in hybrid}
    ):
        names = ", ".join(sorted({o.name for o in hybrid}))
        reason = Reason(
            f"This is a dynamic-range (hybrid) model: {plural(len(hybrid), 'op')} ({names}) "
            f"{'takes' if len(hybrid) == 1 else 'take'} float "
            "inputs with 8-bit weights, and TFLite Micro has no hybrid kernels.",
            src,
            Verdict.UNSUPPORTED,
            "Convert with the int8 preset (full integer, calibrated on your samples): "
            "TFLite Micro runs integer models.",
        )
        marks: _Marks = {(o.subgraph, o.index): (reason,) for o in hybrid}
    else:
        reason = Reason(_micro_rules.failure_text(probe, failed), src, Verdict.UNSUPPORTED)
        marks = {(o.subgraph, o.index): (reason,) for o in model.operators if o.name == failed}
        if node is not None:
            marks[(0, node[1])] = (reason,)
    out = _mark(tv, model, marks, Verdict.UNSUPPORTED) if marks else _nothing_ran(tv, model, reason)
    return dataclasses.replace(
        out,
        verdict=Verdict.UNSUPPORTED,
        model_reasons=(*tv.model_reasons, reason),
        details={**details, "fault": "op" if marks else "model"},
    )


def _rules_only(tv: TargetVerdict, why: str) -> TargetVerdict:
    sources = sorted({tv.source} | {r.source for o in tv.ops for r in o.reasons})
    note = Reason(
        f"Not run here ({why}): this verdict comes from the rule tables, whose sources are "
        "linked beside each reason.",
        tv.source,
        Verdict.SUPPORTED,
    )
    return dataclasses.replace(
        tv,
        model_reasons=(note, *tv.model_reasons),
        details={**tv.details, "decided_by": "rules", "not_run": why, "sources": sources[:12]},
    )


def _consistent(tv: TargetVerdict, model: ModelInfo) -> TargetVerdict:
    """A verdict decided for the model as a whole (the Edge TPU compiler wants
    static shapes, a run failed before any op) counts every op that way, so
    the card's numbers say what its verdict says."""
    flagged = tv.counts.get("partial", 0) + tv.counts.get("unsupported", 0)
    whole = next((r for r in tv.model_reasons if r.severity is tv.verdict), None)
    if tv.verdict is Verdict.UNSUPPORTED and not tv.counts.get("unsupported", 0) and whole:
        return _nothing_ran(tv, model, whole)
    if tv.verdict is Verdict.PARTIAL and not flagged and whole:
        by_op = {
            k: OpSummary(s.op, s.count, Verdict.PARTIAL, {"partial": s.count}, (*s.reasons, whole))
            for k, s in tv.by_op.items()
        }
        counts = {v.value: 0 for v in Verdict}
        counts["partial"] = len(model.operators)
        return dataclasses.replace(tv, by_op=by_op, counts=counts)
    return tv


def apply_probes(
    model: ModelInfo, verdicts: dict[Target, TargetVerdict], probes: Probes | None
) -> dict[Target, TargetVerdict]:
    """Each target's verdict once its runs are known (``None``: none were made)."""
    out = {}
    for t, tv in verdicts.items():
        if t in NOT_RUN:
            tv = _rules_only(tv, NOT_RUN[t])
        elif probes is None:
            tv = dataclasses.replace(
                tv,
                details={**tv.details, "decided_by": "rules", "not_run": "runs were not asked for"},
            )
        elif t is Target.LITERT_CPU:
            tv = _cpu(model, tv, probes)
        elif t is Target.XNNPACK:
            tv = _xnnpack(model, tv, probes)
        elif t is Target.MICRO:
            tv = _micro(model, tv, probes.micro)
        out[t] = _consistent(tv, model)
    return out
