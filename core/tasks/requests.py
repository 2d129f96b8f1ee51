"""What a worker task takes: one frozen, typed request per task.

The caller (``core.pipeline``) builds a request and hands it to the isolation
module, which sends it as JSON to a fresh worker process; the worker
(``core.worker``) reads it back as the same type and runs the task named by
``TASK``. Paths are absolute and already checked by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from core.errors import Phase
from core.model.archive import UnpackLimits
from core.model.compat import MicroProbeResult
from core.options import ConversionOptions
from core.serial import Serializable
from core.tasks.layers import LayerErrorReport
from core.tasks.results import (
    AccuracyResult,
    ConversionResult,
    LatencyResult,
    Reference,
    Thresholds,
)

__all__ = [
    "TaskRequest",
    "ConvertRequest",
    "ReferenceRequest",
    "TfliteEvalRequest",
    "LatencyRequest",
    "LayerDebugRequest",
    "LayerCompareRequest",
    "MicroProbeRequest",
    "SelftestRequest",
    "SelftestResult",
    "REQUESTS",
]


@dataclass(frozen=True)
class TaskRequest(Serializable):
    """Base: ``TASK`` names the worker entry, ``RESULT`` the type it returns."""

    TASK: ClassVar[str] = ""
    RESULT: ClassVar[type[Serializable]]
    PHASE: ClassVar[Phase] = Phase.JOB


@dataclass(frozen=True)
class ConvertRequest(TaskRequest):
    TASK: ClassVar[str] = "convert"
    RESULT: ClassVar[type[Serializable]] = ConversionResult
    PHASE: ClassVar[Phase] = Phase.CONVERT

    model_path: str
    display_name: str
    out_path: str
    options: ConversionOptions
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)


@dataclass(frozen=True)
class ReferenceRequest(TaskRequest):
    """Run the original model (TensorFlow) on the evaluation inputs."""

    TASK: ClassVar[str] = "reference"
    RESULT: ClassVar[type[Serializable]] = Reference
    PHASE: ClassVar[Phase] = Phase.EVALUATE

    model_path: str
    display_name: str
    options: ConversionOptions
    out_npz: str
    eval_path: str | None = None
    max_samples: int = 1000
    task: str = "auto"  # "auto" | "classification" | "regression"
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)


@dataclass(frozen=True)
class TfliteEvalRequest(TaskRequest):
    """Run a ``.tflite`` (LiteRT) on a reference's inputs and compare."""

    TASK: ClassVar[str] = "tflite_eval"
    RESULT: ClassVar[type[Serializable]] = AccuracyResult
    PHASE: ClassVar[Phase] = Phase.EVALUATE

    tflite_path: str
    reference: Reference
    display_name: str
    preset: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class LatencyRequest(TaskRequest):
    TASK: ClassVar[str] = "latency"
    RESULT: ClassVar[type[Serializable]] = LatencyResult
    PHASE: ClassVar[Phase] = Phase.EVALUATE

    tflite_path: str
    threads: tuple[int, ...] = (1,)
    runs: int = 50
    warmup: int = 10
    xnnpack: bool = True
    runtime: str = "compiled_model"  # "compiled_model" | "interpreter"
    sample_npz: str | None = None  # a reference file: its first sample is the input
    max_seconds: float = 30.0


@dataclass(frozen=True)
class LayerDebugRequest(TaskRequest):
    """TensorFlow's QuantizationDebugger on the model converted with ``options``."""

    TASK: ClassVar[str] = "layer_debug"
    RESULT: ClassVar[type[Serializable]] = LayerErrorReport
    PHASE: ClassVar[Phase] = Phase.EVALUATE

    model_path: str
    display_name: str
    options: ConversionOptions
    debug_npz: str | None = None  # a reference file
    debug_path: str | None = None  # .npz/.npy/images
    max_samples: int = 100
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)


@dataclass(frozen=True)
class LayerCompareRequest(TaskRequest):
    """Tensor by tensor: a quantized ``.tflite`` against its float32 build (LiteRT)."""

    TASK: ClassVar[str] = "layer_compare"
    RESULT: ClassVar[type[Serializable]] = LayerErrorReport
    PHASE: ClassVar[Phase] = Phase.EVALUATE

    float_path: str
    quant_path: str
    reference: Reference
    preset: str = "int16x8"
    max_samples: int = 100


@dataclass(frozen=True)
class MicroProbeRequest(TaskRequest):
    """Load and invoke once in the TFLite Micro interpreter."""

    TASK: ClassVar[str] = "micro_probe"
    RESULT: ClassVar[type[Serializable]] = MicroProbeResult
    PHASE: ClassVar[Phase] = Phase.INSPECT

    tflite_path: str


@dataclass(frozen=True)
class SelftestResult(Serializable):
    echo: Any = None
    cwd: str = ""
    tf: str = ""


@dataclass(frozen=True)
class SelftestRequest(TaskRequest):
    """Provokes each way a worker can die (tests)."""

    TASK: ClassVar[str] = "selftest"
    RESULT: ClassVar[type[Serializable]] = SelftestResult

    action: str = "echo"  # abort kill sleep alloc write missing raise tf echo
    seconds: float = 60.0
    bytes: int = 0
    echo: Any = None


REQUESTS: dict[str, type[TaskRequest]] = {
    c.TASK: c
    for c in (
        ConvertRequest,
        ReferenceRequest,
        TfliteEvalRequest,
        LatencyRequest,
        LayerDebugRequest,
        LayerCompareRequest,
        MicroProbeRequest,
        SelftestRequest,
    )
}
