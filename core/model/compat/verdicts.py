"""What the compatibility checks return: verdicts, targets, reasons, and the
per-op and per-target results (frozen dataclasses)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Verdict",
    "RANK",
    "worst",
    "Target",
    "Reason",
    "OpVerdict",
    "OpSummary",
    "MicroProbeResult",
    "Runtime",
    "RuntimeRun",
    "Probes",
    "PROBE_ORDER",
    "MICRO_PROBE",
    "TargetVerdict",
]


class Verdict(str, enum.Enum):
    SUPPORTED = "supported"
    PARTIAL = "partial"
    UNSUPPORTED = "unsupported"


RANK = {Verdict.SUPPORTED: 0, Verdict.PARTIAL: 1, Verdict.UNSUPPORTED: 2}


def worst(a: Verdict, b: Verdict) -> Verdict:
    return a if RANK[a] >= RANK[b] else b


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


class Runtime(str, enum.Enum):
    """The runtimes a model is run with here, behind the verdicts."""

    INTERPRETER = "interpreter"  # LiteRT Interpreter API, built-in kernels only
    XNNPACK = "xnnpack"  # LiteRT Interpreter API with the XNNPACK delegate
    COMPILED_MODEL = "compiled_model"  # LiteRT CompiledModel API, CPU (XNNPACK inside)
    COMPILED_MODEL_BUILTIN = "compiled_model_builtin"  # CompiledModel, built-in CPU kernels


MICRO_PROBE = "micro"
# The order the runs behind a report happen in: the plainest runtime first, so
# a crash in a delegate cannot hide whether the model itself runs.
PROBE_ORDER = (*(r.value for r in Runtime), MICRO_PROBE)


@dataclass(frozen=True, slots=True)
class RuntimeRun:
    """One real run: load, allocate, invoke once on valid inputs, or how far
    it got and what stopped it (the runtime's words, a signal, a timeout)."""

    runtime: str  # a Runtime value
    loaded: bool = False
    allocated: bool = False
    invoked: bool = False
    error: str | None = None  # the runtime's own message (first lines)
    stage: str | None = None  # where it failed: "load" | "allocate" | "invoke"
    crashed: str | None = None  # the signal that ended the process (SIGABRT, SIGSEGV)
    timed_out: bool = False
    skipped: str | None = None  # why it was not run here
    seconds: float = 0.0
    delegated_nodes: int | None = None  # XNNPACK: nodes the delegate took
    total_nodes: int | None = None  # nodes of the main subgraph before delegation
    partitions: int | None = None  # XNNPACK: delegate kernels the graph became
    cpu_nodes: tuple[int, ...] = ()  # XNNPACK: main-subgraph ops left to the built-in kernels
    fully_accelerated: bool | None = None  # CompiledModel: its own answer

    @property
    def ran(self) -> bool:
        return self.invoked and self.error is None and not self.crashed

    @property
    def outcome(self) -> str:
        """loaded/allocated/invoked in words, or what stopped it."""
        if self.skipped:
            return "not run here"
        if self.ran:
            return "ran"
        if self.crashed:
            return f"crashed ({self.crashed})"
        if self.timed_out:
            return "did not finish in time"
        return {"load": "did not load", "allocate": "loaded, could not allocate"}.get(
            self.stage or "", "loaded, failed while running"
        )


@dataclass(frozen=True, slots=True)
class Probes:
    """Every run behind a report's verdicts (one sandboxed process; a run that
    crashed it is recorded as such and the others go on)."""

    runs: tuple[RuntimeRun, ...] = ()
    micro: MicroProbeResult | None = None
    inputs: tuple[str, ...] = ()  # how the inputs were made, in words

    def run(self, runtime: Runtime | str) -> RuntimeRun | None:
        key = Runtime(runtime).value
        return next((r for r in self.runs if r.runtime == key), None)


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
