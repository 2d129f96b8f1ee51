"""The one exception tree of TFLite Studio.

Every error names what went wrong (``message``), how to fix it (``hint``) and
the phase of the pipeline that failed (``phase``). Errors cross the worker
process boundary as plain dicts (``to_dict`` / ``from_dict``).

    StudioError
    ├── OptionsError            bad option value (phase: options)
    ├── UnpackError             upload is not a safe, well-formed archive (phase: unpack)
    │   └── UnsafeArchiveError  path escapes, symlink, bomb, too many members
    ├── ModelFormatError        not a model we can read (phase: load)
    ├── LoadError               TensorFlow could not load the model (phase: load)
    ├── ConvertError            the converter failed (phase: convert)
    │   └── UnsupportedOpsError ops the converter rejected, with what would fix them
    ├── CalibrationError        calibration data unusable (phase: calibrate)
    ├── QuantizeError           quantization failed (phase: quantize)
    │   └── RecipeError         a recipe (id or JSON) that cannot be applied
    ├── TFLiteFormatError       a .tflite file that cannot be read (phase: inspect)
    ├── EvaluateError           accuracy / latency run failed (phase: evaluate)
    ├── DeployError             the deploy kit cannot be built (phase: deploy)
    ├── WorkerError             the isolated worker process died (phase: as given)
    │   ├── WorkerTimeout
    │   ├── WorkerOutOfMemory
    │   ├── WorkerCrashed
    │   └── Cancelled           someone cancelled the job
    └── JobError                unknown job, queue full, limits (phase: job)
        └── CorruptArtifactError  a stored file no longer matches its SHA-256
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "Phase",
    "StudioError",
    "OptionsError",
    "UnpackError",
    "UnsafeArchiveError",
    "ModelFormatError",
    "LoadError",
    "ConvertError",
    "UnsupportedOpsError",
    "CalibrationError",
    "QuantizeError",
    "RecipeError",
    "DeployError",
    "TFLiteFormatError",
    "EvaluateError",
    "WorkerError",
    "WorkerTimeout",
    "WorkerOutOfMemory",
    "WorkerCrashed",
    "Cancelled",
    "JobError",
    "CorruptArtifactError",
]


class Phase(str, enum.Enum):
    OPTIONS = "options"
    UNPACK = "unpack"
    LOAD = "load"
    CONVERT = "convert"
    CALIBRATE = "calibrate"
    QUANTIZE = "quantize"
    INSPECT = "inspect"
    EVALUATE = "evaluate"
    DEPLOY = "deploy"
    JOB = "job"


class StudioError(Exception):
    """Base of every error a person may see."""

    default_phase: Phase = Phase.JOB

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        phase: Phase | str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.phase = Phase(phase) if phase is not None else self.default_phase
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "phase": self.phase.value,
            "message": self.message,
            "hint": self.hint,
            "details": self.details,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> StudioError:
        cls = _BY_NAME.get(str(data.get("type")), StudioError)
        err = cls.__new__(cls)
        StudioError.__init__(
            err,
            str(data.get("message", "Unknown error.")),
            str(data.get("hint", "")),
            phase=data.get("phase") or cls.default_phase,
            details=data.get("details") or {},
        )
        return err


class OptionsError(StudioError):
    default_phase = Phase.OPTIONS


class UnpackError(StudioError):
    default_phase = Phase.UNPACK


class UnsafeArchiveError(UnpackError):
    pass


class ModelFormatError(StudioError):
    default_phase = Phase.LOAD


class LoadError(StudioError):
    default_phase = Phase.LOAD


class ConvertError(StudioError):
    default_phase = Phase.CONVERT


class UnsupportedOpsError(ConvertError):
    """``details`` holds ``select_tf_ops`` and ``custom_ops`` (lists of names)
    and ``fix`` (``"select_tf_ops"`` or ``"allow_custom_ops"``)."""

    @property
    def select_tf_ops(self) -> list[str]:
        return list(self.details.get("select_tf_ops", []))

    @property
    def custom_ops(self) -> list[str]:
        return list(self.details.get("custom_ops", []))


class CalibrationError(StudioError):
    default_phase = Phase.CALIBRATE


class QuantizeError(StudioError):
    default_phase = Phase.QUANTIZE


class RecipeError(QuantizeError):
    """A recipe that cannot be applied: unknown id, a bad key or value in the
    JSON, a bad regex, or a scope that matches no layer of the model."""


class TFLiteFormatError(StudioError):
    default_phase = Phase.INSPECT


class EvaluateError(StudioError):
    default_phase = Phase.EVALUATE


class DeployError(StudioError):
    default_phase = Phase.DEPLOY


class WorkerError(StudioError):
    default_phase = Phase.JOB


class WorkerTimeout(WorkerError):
    pass


class WorkerOutOfMemory(WorkerError):
    pass


class WorkerCrashed(WorkerError):
    pass


class JobError(StudioError):
    default_phase = Phase.JOB


class CorruptArtifactError(JobError):
    """A stored file's bytes no longer hash to its name: never served."""


class Cancelled(WorkerError):
    """Someone cancelled the job while it ran."""


def _subclasses(cls: type[StudioError]) -> list[type[StudioError]]:
    return [cls] + [d for c in cls.__subclasses__() for d in _subclasses(c)]


_BY_NAME: dict[str, type[StudioError]] = {c.__name__: c for c in _subclasses(StudioError)}
