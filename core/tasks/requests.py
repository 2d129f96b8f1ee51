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
from core.model.compat import MicroProbeResult, RuntimeRun
from core.options import ConversionOptions
from core.serial import Serializable
from core.tasks.deploy import DeployResult
from core.tasks.layers import LayerErrorReport
from core.tasks.optimize import OptimizeResult, RecipeChoice
from core.tasks.results import (
    AccuracyResult,
    ConversionResult,
    LatencyResult,
    Reference,
    SignatureInput,
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
    "InspectRequest",
    "InspectResult",
    "DiffRequest",
    "DiffResult",
    "SignatureRequest",
    "SignatureResult",
    "OptimizeRequest",
    "DeployRequest",
    "REQUESTS",
]


@dataclass(frozen=True)
class TaskRequest(Serializable):
    """Base: ``TASK`` names the worker entry, ``RESULT`` the type it returns.
    ``INPUTS`` are the fields (dotted into nested requests) holding files the
    task reads: the isolation module copies them into the worker's scratch
    folder. ``OUTPUTS`` are the fields naming files the task writes, relative
    to its scratch folder; they are moved to the caller's folder afterwards."""

    TASK: ClassVar[str] = ""
    RESULT: ClassVar[type[Any]]
    PHASE: ClassVar[Phase] = Phase.JOB
    INPUTS: ClassVar[tuple[str, ...]] = ()
    OUTPUTS: ClassVar[tuple[str, ...]] = ()
    # outputs kept even when the task fails (a journal of what it got through)
    KEEP: ClassVar[tuple[str, ...]] = ()
    # what runs the model, for the words of a crash ("LiteRT crashed while ...")
    RUNTIME: ClassVar[str] = "TensorFlow"


@dataclass(frozen=True)
class ConvertRequest(TaskRequest):
    TASK: ClassVar[str] = "convert"
    RESULT: ClassVar[type[Any]] = ConversionResult
    PHASE: ClassVar[Phase] = Phase.CONVERT
    INPUTS: ClassVar[tuple[str, ...]] = ("model_path", "options.calibration_path")
    OUTPUTS: ClassVar[tuple[str, ...]] = ("out_path",)

    model_path: str
    display_name: str
    options: ConversionOptions
    out_path: str = "output.tflite"
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)


@dataclass(frozen=True)
class ReferenceRequest(TaskRequest):
    """Run the original model (TensorFlow) on the evaluation inputs."""

    TASK: ClassVar[str] = "reference"
    RESULT: ClassVar[type[Any]] = Reference
    PHASE: ClassVar[Phase] = Phase.EVALUATE
    INPUTS: ClassVar[tuple[str, ...]] = ("model_path", "options.calibration_path", "eval_path")
    OUTPUTS: ClassVar[tuple[str, ...]] = ("out_npz",)

    model_path: str
    display_name: str
    options: ConversionOptions
    out_npz: str = "reference.npz"
    eval_path: str | None = None
    max_samples: int = 1000
    task: str = "auto"  # "auto" | "classification" | "regression"
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)


@dataclass(frozen=True)
class TfliteEvalRequest(TaskRequest):
    """Run a ``.tflite`` (LiteRT) on a reference's inputs and compare."""

    TASK: ClassVar[str] = "tflite_eval"
    RESULT: ClassVar[type[Any]] = AccuracyResult
    PHASE: ClassVar[Phase] = Phase.EVALUATE
    RUNTIME: ClassVar[str] = "LiteRT"
    INPUTS: ClassVar[tuple[str, ...]] = ("tflite_path", "reference.npz_path")

    tflite_path: str
    reference: Reference
    display_name: str
    preset: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class LatencyRequest(TaskRequest):
    TASK: ClassVar[str] = "latency"
    RESULT: ClassVar[type[Any]] = LatencyResult
    PHASE: ClassVar[Phase] = Phase.EVALUATE
    RUNTIME: ClassVar[str] = "LiteRT"
    INPUTS: ClassVar[tuple[str, ...]] = ("tflite_path", "sample_npz")

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
    RESULT: ClassVar[type[Any]] = LayerErrorReport
    PHASE: ClassVar[Phase] = Phase.EVALUATE
    INPUTS: ClassVar[tuple[str, ...]] = (
        "model_path",
        "options.calibration_path",
        "debug_npz",
        "debug_path",
    )

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
    RESULT: ClassVar[type[Any]] = LayerErrorReport
    PHASE: ClassVar[Phase] = Phase.EVALUATE
    RUNTIME: ClassVar[str] = "LiteRT"
    INPUTS: ClassVar[tuple[str, ...]] = ("float_path", "quant_path", "reference.npz_path")

    float_path: str
    quant_path: str
    reference: Reference
    preset: str = "int16x8"
    max_samples: int = 100


@dataclass(frozen=True)
class MicroProbeRequest(TaskRequest):
    """Load and invoke once in the TFLite Micro interpreter."""

    TASK: ClassVar[str] = "micro_probe"
    RESULT: ClassVar[type[Any]] = MicroProbeResult
    PHASE: ClassVar[Phase] = Phase.INSPECT
    RUNTIME: ClassVar[str] = "TFLite Micro"
    INPUTS: ClassVar[tuple[str, ...]] = ("tflite_path",)

    tflite_path: str


@dataclass(frozen=True)
class InspectResult(Serializable):
    """What the report of one ``.tflite`` holds, in brief; the report itself
    is written as files (JSON, Markdown, HTML)."""

    name: str
    file_bytes: int
    operators: int
    tensors: int
    subgraphs: int
    report_bytes: int
    verdicts: dict[str, str]  # target -> verdict
    runs: dict[str, str] = field(default_factory=dict)  # runtime -> what the run did
    findings: int = 0  # what LiteRT's loader would refuse (the report names each)
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds


@dataclass(frozen=True)
class InspectRequest(TaskRequest):
    """Read one ``.tflite``, validate it, run it in every runtime here (LiteRT
    Interpreter and CompiledModel, with and without XNNPACK, TFLite Micro),
    check it against every target and write its report. A runtime that kills
    the process leaves its journal behind (``KEEP``): the caller records the
    crash and asks again with that run in ``done_runs``."""

    TASK: ClassVar[str] = "inspect"
    RESULT: ClassVar[type[Any]] = InspectResult
    PHASE: ClassVar[Phase] = Phase.INSPECT
    RUNTIME: ClassVar[str] = "LiteRT"
    INPUTS: ClassVar[tuple[str, ...]] = ("tflite_path",)
    OUTPUTS: ClassVar[tuple[str, ...]] = (
        "json_out",
        "md_out",
        "html_out",
        "journal_out",
        "runtime_log",
    )
    KEEP: ClassVar[tuple[str, ...]] = ("journal_out", "runtime_log")

    tflite_path: str
    source_kind: str | None = None
    source_size: int | None = None
    sha256: str | None = None
    micro_probe: MicroProbeResult | None = None  # a TFLite Micro run already made
    runs: bool = True  # run the model (False: the rules decide every verdict)
    micro: bool = True  # include the TFLite Micro run
    done_runs: tuple[RuntimeRun, ...] = ()  # runs an earlier attempt made (or crashed in)
    formats: tuple[str, ...] = ("json", "md", "html")  # the report files to write
    json_out: str = "report.json"
    md_out: str = "report.md"
    html_out: str = "report.html"
    journal_out: str = "probes.jsonl"
    runtime_log: str = "runtime.log"


@dataclass(frozen=True)
class DiffResult(Serializable):
    """What changed between two ``.tflite`` files: the diff's JSON view and
    its text and Markdown renderings."""

    diff: dict[str, Any]
    text: str
    md: str


@dataclass(frozen=True)
class DiffRequest(TaskRequest):
    TASK: ClassVar[str] = "diff"
    RESULT: ClassVar[type[Any]] = DiffResult
    PHASE: ClassVar[Phase] = Phase.INSPECT
    INPUTS: ClassVar[tuple[str, ...]] = ("a_path", "b_path")

    a_path: str
    b_path: str
    name_a: str
    name_b: str


@dataclass(frozen=True)
class SignatureResult(Serializable):
    """An upload's signatures as the converter will see them: each one's
    inputs (``-1`` where dynamic), the one converted by default (None when the
    person must choose) and a static shape for every input
    (``core.tasks.shapes.suggest_shape``), per signature."""

    kind: str  # saved_model | keras | h5
    signature_keys: tuple[str, ...]
    default_key: str | None
    signatures: dict[str, tuple[SignatureInput, ...]]
    suggested_shapes: dict[str, dict[str, tuple[int, ...]]]  # key -> input -> shape


@dataclass(frozen=True)
class SignatureRequest(TaskRequest):
    """Read an upload's signatures and input shapes (nothing is converted)."""

    TASK: ClassVar[str] = "signature"
    RESULT: ClassVar[type[Any]] = SignatureResult
    PHASE: ClassVar[Phase] = Phase.LOAD
    INPUTS: ClassVar[tuple[str, ...]] = ("model_path",)

    model_path: str
    display_name: str
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)


@dataclass(frozen=True)
class SelftestResult(Serializable):
    echo: Any = None
    cwd: str = ""
    tf: str = ""
    outcome: str = ""  # what a probing action managed or the error it met


@dataclass(frozen=True)
class SelftestRequest(TaskRequest):
    """Provokes each way a worker can die (tests)."""

    TASK: ClassVar[str] = "selftest"
    RESULT: ClassVar[type[Any]] = SelftestResult

    # abort kill sleep alloc write missing raise tf echo, and what an attacker
    # tries: read PATH, write_at PATH, connect HOST:PORT, environ
    action: str = "echo"
    seconds: float = 60.0
    bytes: int = 0
    echo: Any = None
    target: str = ""


@dataclass(frozen=True)
class OptimizeRequest(TaskRequest):
    """Quantize a float ``.tflite`` with LiteRT's quantizer (old op codes
    normalized first), check the result is smaller and quantized, compare it
    tensor by tensor and evaluate it against the float file on the same inputs."""

    TASK: ClassVar[str] = "optimize"
    RESULT: ClassVar[type[Any]] = OptimizeResult
    PHASE: ClassVar[Phase] = Phase.QUANTIZE
    RUNTIME: ClassVar[str] = "LiteRT's quantizer"
    INPUTS: ClassVar[tuple[str, ...]] = ("tflite_path", "calibration_path", "eval_path")
    OUTPUTS: ClassVar[tuple[str, ...]] = ("out_path",)

    tflite_path: str
    display_name: str
    recipe: RecipeChoice
    calibration_path: str | None = None  # .npz/.npy/images, as for conversion
    calibration_samples: int = 100
    image_range: tuple[float, float] = (0.0, 1.0)
    eval_path: str | None = None  # inputs for the comparison (default: calibration, random)
    max_samples: int = 200
    validation_samples: int = 4
    signature_key: str | None = None
    validate: bool = True  # the quantizer's tensor-level comparison
    evaluate: bool = True  # our run of both files on the same inputs
    thresholds: Thresholds = field(default_factory=Thresholds)
    out_path: str = "optimized.tflite"


@dataclass(frozen=True)
class DeployRequest(TaskRequest):
    """Write the deploy kit of a ``.tflite``: code for its own signature per
    target, the model as a C array, a README; one zip."""

    TASK: ClassVar[str] = "deploy"
    RESULT: ClassVar[type[Any]] = DeployResult
    PHASE: ClassVar[Phase] = Phase.DEPLOY
    RUNTIME: ClassVar[str] = "The deploy kit writer"
    INPUTS: ClassVar[tuple[str, ...]] = ("tflite_path",)
    OUTPUTS: ClassVar[tuple[str, ...]] = ("out_zip",)

    tflite_path: str
    display_name: str
    targets: tuple[str, ...] = ("python", "android", "ios", "cpp", "micro")
    origin: str = ""  # how the model was made: "converted with the int8 preset", …
    micro_probe: MicroProbeResult | None = None
    out_zip: str = "kit.zip"


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
        InspectRequest,
        DiffRequest,
        SignatureRequest,
        OptimizeRequest,
        DeployRequest,
        SelftestRequest,
    )
}
