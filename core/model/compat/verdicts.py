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
