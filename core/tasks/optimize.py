"""What optimizing a ``.tflite`` takes and gives back: the recipe chosen (an
id or a custom recipe JSON), the quantizer's tensor-by-tensor comparison, the
ops it left in float, and our own evaluation against the float file.

A result exists only for a file that got smaller and holds quantized tensors:
anything else is a ``QuantizeError`` in the worker, never a "success"."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from core.serial import Serializable
from core.tasks.recipes import Recipe, recipe_entries
from core.tasks.results import AccuracyResult

__all__ = ["RecipeChoice", "TensorComparison", "KeptFloat", "OptimizeResult", "worst_tensors"]

CUSTOM = "custom"


@dataclass(frozen=True)
class RecipeChoice(Serializable):
    """A recipe id (with its block size), or a custom recipe's checked entries."""

    recipe: str  # a Recipe id, or "custom"
    block_size: int = 0  # weight-only-int4: 0 = channel-wise scales
    entries: tuple[dict[str, Any], ...] = ()  # custom: the quantizer's JSON entries
    name: str = ""  # custom: where the recipe came from (a file name)

    @property
    def is_custom(self) -> bool:
        return self.recipe == CUSTOM

    @property
    def needs_calibration(self) -> bool:
        if not self.is_custom:
            return Recipe(self.recipe).info.needs_calibration
        return any(
            (e.get("op_config") or {}).get("compute_precision") == "INTEGER"
            and "activation_tensor_config" in (e.get("op_config") or {})
            for e in self.entries
        )

    @property
    def label(self) -> str:
        """``weight-only-int4``, ``weight-only-int4 (block 32)``, ``custom (mine.json)``."""
        if self.is_custom:
            return f"custom ({self.name})" if self.name else "custom"
        return self.recipe + (f" (block {self.block_size})" if self.block_size else "")

    @property
    def slug(self) -> str:
        """For file names: ``weight-only-int4-b32``, ``custom``."""
        return self.recipe + (f"-b{self.block_size}" if self.block_size else "")

    def quantizer_entries(self) -> list[dict[str, Any]]:
        if self.is_custom:
            return [dict(e) for e in self.entries]
        return recipe_entries(self.recipe, self.block_size)


@dataclass(frozen=True)
class TensorComparison(Serializable):
    """One tensor of the optimized model against the float one (the
    quantizer's own validation, averaged over its samples)."""

    name: str
    role: str  # "input" | "output" | "constant" | "intermediate"
    mse: float
    snr_db: float | None  # None: identical
    cosine: float | None


@dataclass(frozen=True)
class KeptFloat(Serializable):
    """Ops whose weights stayed float32: the quantizer has no rule for them in
    this recipe, or the recipe's scope left them out."""

    op: str
    count: int
    weight_bytes: int


@dataclass(frozen=True)
class OptimizeResult(Serializable):
    __derived__ = ("size_ratio",)

    input_name: str
    input_size: int
    output_size: int
    output_sha256: str
    recipe: RecipeChoice
    recipe_entries: tuple[dict[str, Any], ...]  # what the quantizer was given
    signature_key: str
    seconds: float  # quantizing (and calibrating), without validation
    total_seconds: float
    normalized_op_codes: int  # old files: op codes moved from the deprecated field
    quantized_tensors: int
    weight_dtypes: dict[str, int]  # constant tensors of the output by dtype
    kept_float: tuple[KeptFloat, ...] = ()
    warnings: tuple[str, ...] = ()
    calibration: str | None = None  # file name, "synthetic", or None (not needed)
    calibration_samples: int = 0
    validation: tuple[TensorComparison, ...] = ()  # worst first
    validation_samples: int = 0
    validation_data: str = ""  # where its inputs came from
    accuracy: AccuracyResult | None = None  # our evaluation against the float file
    accuracy_error: dict[str, Any] | None = None  # why it could not run
    quantizer_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size_ratio(self) -> float:
        return self.output_size / self.input_size if self.input_size else math.nan


def worst_tensors(rows: tuple[TensorComparison, ...], n: int = 5) -> list[TensorComparison]:
    """The ``n`` tensors furthest from the float model (lowest SNR, then cosine)."""

    def key(r: TensorComparison) -> tuple[float, float]:
        snr = math.inf if r.snr_db is None else r.snr_db
        return (snr, r.cosine if r.cosine is not None else 1.0)

    return sorted((r for r in rows if r.role != "input"), key=key)[:n]
