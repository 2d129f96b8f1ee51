"""The two batch tasks of a sweep: converting one loaded model with several
presets in one TensorFlow worker (the reference run included), and measuring
every converted file (accuracy, latency, per-layer error) in one LiteRT
worker. Each writes a journal, so a batch that dies keeps what it finished."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from core.errors import Phase
from core.model.archive import UnpackLimits
from core.options import ConversionOptions
from core.serial import Serializable
from core.tasks.requests import ReferenceRequest, TaskRequest
from core.tasks.results import ConversionResult, Reference, Thresholds

__all__ = [
    "ConvertBatchRequest",
    "ConvertBatchResult",
    "BatchItem",
    "MeasureItem",
    "MeasureBatchRequest",
    "MeasuredItem",
    "MeasureBatchResult",
]


@dataclass(frozen=True)
class BatchItem(Serializable):
    """One conversion of a batch: its result, or the error it met."""

    index: int
    result: ConversionResult | None = None
    error: dict[str, Any] | None = None  # StudioError.to_dict()


@dataclass(frozen=True)
class ConvertBatchResult(Serializable):
    items: tuple[BatchItem, ...]
    reference: Reference | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ConvertBatchRequest(TaskRequest):
    """Load the model once; compute the reference (when asked); convert with
    each of ``plans`` into ``out_dir/<k>.tflite``. Every plan shares the
    loaded model, so they share its signature and input shapes; calibration
    comes from ``calibration_path`` for every plan."""

    TASK: ClassVar[str] = "convert_batch"
    RESULT: ClassVar[type[Any]] = ConvertBatchResult
    PHASE: ClassVar[Phase] = Phase.CONVERT
    INPUTS: ClassVar[tuple[str, ...]] = (
        "model_path",
        "calibration_path",
        "reference.eval_path",
        "reference.options.calibration_path",
    )
    OUTPUTS: ClassVar[tuple[str, ...]] = ("out_dir", "reference.out_npz", "journal_out")
    KEEP: ClassVar[tuple[str, ...]] = ("out_dir", "reference.out_npz", "journal_out")

    model_path: str
    display_name: str
    plans: tuple[ConversionOptions, ...]
    calibration_path: str | None = None
    reference: ReferenceRequest | None = None
    out_dir: str = "models"
    journal_out: str = "batch.jsonl"
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)


@dataclass(frozen=True)
class MeasureItem(Serializable):
    label: str
    tflite_path: str
    preset: str | None = None


@dataclass(frozen=True)
class MeasuredItem(Serializable):
    """What was measured of one file (``AccuracyResult``/``LatencyResult`` as
    data), or the step that failed and its error."""

    label: str
    accuracy: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    failed_step: str | None = None  # "evaluate" | "benchmark"
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasureBatchResult(Serializable):
    items: tuple[MeasuredItem, ...]


@dataclass(frozen=True)
class MeasureBatchRequest(TaskRequest):
    """Accuracy against the reference, then latency, of every item, in this one
    LiteRT process (no TensorFlow). Nothing else of the sweep runs meanwhile
    (the per-layer analysis comes after, when the machine is free again)."""

    TASK: ClassVar[str] = "measure_batch"
    RESULT: ClassVar[type[Any]] = MeasureBatchResult
    PHASE: ClassVar[Phase] = Phase.EVALUATE
    RUNTIME: ClassVar[str] = "LiteRT"
    INPUTS: ClassVar[tuple[str, ...]] = ("items.*.tflite_path", "reference.npz_path")
    OUTPUTS: ClassVar[tuple[str, ...]] = ("journal_out",)
    KEEP: ClassVar[tuple[str, ...]] = ("journal_out",)

    items: tuple[MeasureItem, ...]
    reference: Reference
    thresholds: Thresholds = field(default_factory=Thresholds)
    threads: tuple[int, ...] = (1,)
    runs: int = 50
    warmup: int = 10
    max_seconds: float = 30.0
    journal_out: str = "measure.jsonl"
