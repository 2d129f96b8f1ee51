"""A sweep: what to try (``SweepRequest``) and its result, one row per
preset (or variant), the recommendation and its rule. Built by
``core.pipeline.sweep``, shown by the Compare page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import OptionsError
from core.options import PRESET_IDS, ConversionOptions
from core.serial import Serializable
from core.tasks.results import Flag, Thresholds

__all__ = ["SweepRequest", "SweepRow", "Recommendation", "SweepModel", "SweepReport", "accuracy_of"]


def accuracy_of(metrics: dict[str, Any] | None) -> float | None:
    """The accuracy axis of a sweep: top-1 agreement for classifiers (where the
    original predicts more than one class), else cosine."""
    if not metrics:
        return None
    if metrics.get("top1_agreement") is not None and metrics.get("top1_meaningful", True):
        return float(metrics["top1_agreement"])
    c = metrics.get("cosine")
    return float(c) if c is not None else None


@dataclass(frozen=True)
class SweepRow(Serializable):
    """One preset (or variant) of a sweep."""

    preset: str
    label: str  # "int8", or "int8-float-io, 3 layers in float"
    size_bytes: int | None = None
    latency_ms: float | None = None  # median, at ``latency_threads``
    latency_threads: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # AccuracyResult.summary
    error: dict[str, Any] | None = None  # StudioError.to_dict() of the failed step
    failed_step: str | None = None  # "convert" | "evaluate" | "benchmark"
    note: str = ""  # a plain sentence for the table
    warnings: tuple[str, ...] = ()
    conversion_seconds: float | None = None
    sha256: str | None = None
    tflite_path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None  # AccuracyResult.to_dict()
    latency: dict[str, Any] | None = None  # LatencyResult.to_dict()
    pareto: bool = False
    artifact_sha: str | None = None  # set by the job runner

    @property
    def converted(self) -> bool:
        return self.size_bytes is not None

    @property
    def measured(self) -> bool:
        return bool(self.metrics)

    @property
    def cannot_run_here(self) -> bool:
        return bool((self.error or {}).get("details", {}).get("cannot_run_here"))


@dataclass(frozen=True)
class Recommendation(Serializable):
    preset: str | None  # None: nothing can be recommended (the text says why)
    label: str | None
    rule: str  # e.g. "top1_agreement >= 0.99"
    text: str  # plain words, rule explained
    passing: tuple[str, ...] = ()  # labels of the rows that met the rule


@dataclass(frozen=True)
class SweepModel(Serializable):
    name: str
    size_bytes: int
    signature_key: str | None = None


@dataclass(frozen=True)
class SweepReport(Serializable):
    model: SweepModel
    data: dict[str, Any]  # source, name, samples, has_labels, outputs
    calibration: str | None  # calibration file name, None: synthetic
    rows: tuple[SweepRow, ...]
    recommendation: Recommendation
    thresholds: Thresholds
    flags: tuple[Flag, ...] = ()
    layer_errors: tuple[dict[str, Any], ...] = ()  # LayerErrorReport.to_dict() per preset
    threads: tuple[int, ...] = (1,)
    runs: int = 50
    seconds: float = 0.0
    tf_version: str = ""
    schema_version: int = 1
    tool: str = "tflite-studio"
    kind: str = "sweep"
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds (bench/)

    def row(self, label: str) -> SweepRow | None:
        return next((r for r in self.rows if r.label == label or r.preset == label), None)


@dataclass(frozen=True)
class SweepRequest:
    """What one sweep does. ``presets``: preset ids (None: all; empty: only the
    variants). ``variants``: extra options to try (e.g. int8-float-io with
    layers kept in float). ``options``: the base converter options (Select TF
    ops, signature, input shapes, calibration file). ``keep_worst``: also try
    int8-float-io with the N layers the int8 debugger finds worst kept in float
    (needs ``layer_errors``). ``layers``: when the per-layer error is measured
    ("auto": for the integer presets whose accuracy is not good, or for
    ``keep_worst``). ``keep_dir``: where the ``.tflite`` files are kept
    (default: deleted with the work folder)."""

    model_path: str
    presets: tuple[str, ...] | None = None
    variants: tuple[ConversionOptions, ...] = ()
    options: ConversionOptions = field(default_factory=ConversionOptions)
    eval_data: str | None = None
    threads: tuple[int, ...] = (1,)
    runs: int = 50
    warmup: int = 10
    max_samples: int = 1000
    task: str = "auto"
    layer_errors: bool = True  # False: no per-layer error at all
    layers: str = "auto"  # auto (integer presets that are not good) | always | never
    keep_worst: int = 0
    thresholds: Thresholds = field(default_factory=Thresholds)
    workdir: str | None = None
    keep_dir: str | None = None
    display_name: str | None = None

    def __post_init__(self) -> None:
        for p in self.presets or ():
            if p not in PRESET_IDS:
                raise OptionsError(
                    f"Unknown preset {p!r}.", "Choose from: " + ", ".join(PRESET_IDS) + "."
                )
