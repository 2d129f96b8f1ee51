"""Per-op, per-target compatibility verdicts with reasons and sources.

Op knowledge lives in ``core/model/data/op_rules.json`` (one table per
target, every check with the URL it comes from, its shape fixed by
``op_rules.schema.json``); this package is the small engine that evaluates
those rules against a ``ModelInfo``:

    verdicts    Verdict, Target, Reason and the per-op/per-target results
    tables      loading the rule tables
    checks      the generic checks a table names, and the model-wide ones
    predicates  named conditions written in Python (alternatives, constants)
    engine      evaluating one target's table, once per op signature
    micro       the TFLite Micro interpreter's word over the static op list

Microcontroller support is additionally proven by loading the model in the
real TFLite Micro interpreter (a worker task run by ``core.pipeline.inspect``;
its result comes in here as a ``MicroProbeResult``).

Verdicts: ``supported`` (runs there), ``partial`` (runs with caveats, or part
of the graph falls back to the CPU), ``unsupported``.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.model.compat.engine import Signatures, evaluate_target
from core.model.compat.micro import failed_op_from_log
from core.model.compat.runs import RUNTIME_NAMES, apply_probes
from core.model.compat.tables import rules
from core.model.compat.verdicts import (
    MICRO_PROBE,
    PROBE_ORDER,
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
from core.model.info import ModelInfo, gc_paused

__all__ = [
    "Verdict",
    "Target",
    "Reason",
    "OpVerdict",
    "OpSummary",
    "TargetVerdict",
    "MicroProbeResult",
    "Runtime",
    "RuntimeRun",
    "Probes",
    "RUNTIME_NAMES",
    "PROBE_ORDER",
    "MICRO_PROBE",
    "check_compatibility",
    "failed_op_from_log",
    "rules",
]


def check_compatibility(
    model: ModelInfo,
    *,
    targets: Iterable[Target | str] | None = None,
    micro_probe: MicroProbeResult | None = None,
    probes: Probes | None = None,
) -> dict[Target, TargetVerdict]:
    """Verdicts for each target (all targets by default): from the runs in
    ``probes`` where they were made (``core.model.compat.runs``), else from
    the rules. ``micro_probe`` alone stands for a TFLite Micro run only."""
    tables = rules()["targets"]
    wanted = [Target(t) for t in targets] if targets is not None else list(Target)
    with gc_paused():
        sigs = Signatures(model)
        evaluated = {t: evaluate_target(model, t.value, tables[t.value], sigs) for t in wanted}
    if probes is None and micro_probe is not None:
        probes = Probes(micro=micro_probe)
    return apply_probes(model, {t: evaluated[t] for t in wanted}, probes)
