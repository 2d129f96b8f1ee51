"""TFLite Micro: what its log says, and how a real interpreter run (a worker
task run by ``core.pipeline.inspect``) overrides the static op list."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from core.model.compat.tables import rules
from core.model.compat.verdicts import (
    MicroProbeResult,
    OpSummary,
    OpVerdict,
    Reason,
    TargetVerdict,
    Verdict,
)
from core.model.info import ModelInfo, OpKind

__all__ = ["failed_op_from_log", "apply_micro_probe"]

_SOURCE = "https://github.com/tensorflow/tflite-micro/tree/main/python/tflite_micro"

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


def _failed_op(model: ModelInfo, probe: MicroProbeResult) -> str | None:
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
    return failed


def _failure_text(probe: MicroProbeResult, failed: str | None) -> str:
    at = f" (at {failed})" if failed else ""
    if probe.timed_out:
        return "the TFLite Micro interpreter did not finish in time"
    if probe.crashed:
        return f"the TFLite Micro interpreter crashed while loading the model{at}"
    error = probe.error or "unknown error"
    return f"the TFLite Micro interpreter rejected the model{at}: {error}"


def apply_micro_probe(
    model: ModelInfo, tv: TargetVerdict, probe: MicroProbeResult
) -> TargetVerdict:
    """The micro target's verdict once the real interpreter has loaded the model."""
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
                "the TFLite Micro interpreter loaded and ran the model", _SOURCE, Verdict.SUPPORTED
            )
            reasons = (*tv.model_reasons, note)
            return dataclasses.replace(
                tv, verdict=Verdict.PARTIAL, model_reasons=reasons, details=details
            )
        return dataclasses.replace(tv, details=details)
    failed = _failed_op(model, probe)
    details.update(error=probe.error, failed_op=failed, log_tail=probe.log_tail)
    reason = Reason(_failure_text(probe, failed), _SOURCE, Verdict.UNSUPPORTED)
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
    return dataclasses.replace(
        tv,
        verdict=Verdict.UNSUPPORTED,
        model_reasons=(*tv.model_reasons, reason),
        ops=tuple(ops),
        by_op=by_op,
        details=details,
    )
