"""What ``read_model`` returns: frozen dataclasses describing a ``.tflite``
model (subgraphs, operators, tensors, buffers, signatures, metadata).

Plain data with no reading code, so the engine's other modules can name
these types without pulling in the FlatBuffer walk.
"""

from __future__ import annotations

import contextlib
import enum
import gc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "gc_paused",
    "OpKind",
    "Quantization",
    "Sparsity",
    "TensorInfo",
    "OperatorInfo",
    "SubgraphInfo",
    "SignatureInfo",
    "BufferInfo",
    "MetadataEntry",
    "ConversionMetadata",
    "ModelInfo",
]


class OpKind(str, enum.Enum):
    BUILTIN = "builtin"
    SELECT_TF = "select_tf"  # custom code "Flex..." run by the Flex delegate
    CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class Quantization:
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    min: tuple[float, ...] = ()
    max: tuple[float, ...] = ()
    details: str | None = None  # e.g. "CustomQuantization"

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1


@dataclass(frozen=True, slots=True)
class Sparsity:
    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dim_formats: tuple[str, ...]  # "DENSE" / "SPARSE_CSR" per traversal dim


@dataclass(frozen=True, slots=True)
class TensorInfo:
    subgraph: int
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    dtype: str
    buffer: int
    bytes: int
    is_variable: bool
    quantization: Quantization | None
    sparsity: Sparsity | None
    has_rank: bool = True
    # First values of small int32/int64 constants (axes, paddings, strides).
    values: tuple[int, ...] | None = None

    @property
    def is_constant(self) -> bool:
        return self.bytes > 0 and not self.is_variable

    @property
    def is_dynamic(self) -> bool:
        sig = self.shape_signature
        return sig is not None and any(d < 0 for d in sig)

    @property
    def sparse(self) -> bool:
        return self.sparsity is not None


@dataclass(frozen=True, slots=True)
class OperatorInfo:
    subgraph: int
    index: int
    opcode_index: int
    name: str  # "CONV_2D", custom code, or "FlexX"
    kind: OpKind
    version: int
    builtin_code: int  # 32 (CUSTOM) for custom and select TF ops
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options_type: str | None  # e.g. "Conv2DOptions"
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    fused_activation: str | None = None
    custom_options_bytes: int = 0


@dataclass(frozen=True, slots=True)
class SubgraphInfo:
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    key: str
    subgraph: int
    inputs: dict[str, int] = field(hash=False)
    outputs: dict[str, int] = field(hash=False)


@dataclass(frozen=True, slots=True)
class BufferInfo:
    index: int
    size: int
    # Where the data starts in the file; for >2 GB-style models buffers carry
    # an explicit offset/size and live after the FlatBuffer (``external``).
    offset: int | None
    external: bool
    all_zero: bool | None  # None when empty or not scanned


@dataclass(frozen=True, slots=True)
class MetadataEntry:
    name: str
    buffer: int
    size: int


@dataclass(frozen=True, slots=True)
class ConversionMetadata:
    tensorflow_version: str | None
    api_version: int
    model_type: str
    model_hash: int
    optimization_modes: tuple[str, ...]
    allow_custom_ops: bool
    enable_select_tf_ops: bool
    force_select_tf_ops: bool
    sparsity_block_sizes: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    file_size: int
    schema_version: int
    description: str
    subgraphs: tuple[SubgraphInfo, ...]
    buffers: tuple[BufferInfo, ...]
    metadata: tuple[MetadataEntry, ...]
    signatures: tuple[SignatureInfo, ...]
    min_runtime_version: str | None
    conversion_metadata: ConversionMetadata | None
    external_buffer_bytes: int = 0  # data in separate weight files, not in this file

    @property
    def operators(self) -> tuple[OperatorInfo, ...]:
        return tuple(op for sg in self.subgraphs for op in sg.operators)

    @property
    def tensors(self) -> tuple[TensorInfo, ...]:
        return tuple(t for sg in self.subgraphs for t in sg.tensors)

    @property
    def op_counts(self) -> dict[str, int]:
        return dict(Counter(op.name for sg in self.subgraphs for op in sg.operators))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC. Parsing (and the checks and the report after it)
    allocate many small acyclic objects; the GC would rescan the growing heap
    over and over (superlinear on 50k-op graphs)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
