"""What LiteRT checks when it loads a ``.tflite``, checked here statically,
without running anything: quantization parameters that fit their tensor,
constant buffers as large as shape × type, signature and control-flow
references in range. (Operator tensor indices, buffer and opcode indices are
already refused by the reader.) Each finding names its tensor or op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.model.info import ModelInfo, SubgraphInfo, TensorInfo

__all__ = ["Finding", "validate", "DTYPE_BYTES"]

# bytes per element of each tensor type (packed 4-bit types: see _needed_bytes)
DTYPE_BYTES = {
    "FLOAT32": 4,
    "FLOAT16": 2,
    "BFLOAT16": 2,
    "FLOAT64": 8,
    "INT64": 8,
    "UINT64": 8,
    "INT32": 4,
    "UINT32": 4,
    "INT16": 2,
    "UINT16": 2,
    "INT8": 1,
    "UINT8": 1,
    "BOOL": 1,
    "COMPLEX64": 8,
    "COMPLEX128": 16,
}
_PACKED = {"INT4": 2, "UINT4": 2, "INT2": 4}  # elements per byte
_MAX_FINDINGS = 200  # a broken converter repeats one mistake thousands of times


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing LiteRT would refuse (``fatal``) or question, with where it is."""

    code: str  # quantized_dimension | scale_count | zero_point_count | buffer_size | ...
    message: str  # names the tensor or op, in words
    where: str  # "subgraph 0, tensor 12 'conv/bias'"
    fatal: bool = True


def _where(t: TensorInfo) -> str:
    return f"subgraph {t.subgraph}, tensor {t.index} {t.name!r}"


def _quantization(t: TensorInfo) -> list[Finding]:
    q = t.quantization
    if q is None or not q.scales:
        return []
    n, nz, dim = len(q.scales), len(q.zero_points), q.quantized_dimension
    if n == 1 and nz <= 1:
        return []  # per-tensor: LiteRT does not look at quantized_dimension
    rank = len(t.shape)
    out = []
    if rank and not 0 <= dim < rank:
        out.append(
            Finding(
                "quantized_dimension",
                f"Tensor {t.name!r} is quantized along dimension {dim}, but it has only "
                f"{rank} dimension{'s' if rank != 1 else ''} (LiteRT: quantized_dimension must "
                f"be in range [0, {rank}), was {dim}).",
                _where(t),
            )
        )
    elif rank and n != t.shape[dim]:
        out.append(
            Finding(
                "scale_count",
                f"Tensor {t.name!r} has {n} scales, but dimension {dim} has {t.shape[dim]} "
                "entries.",
                _where(t),
            )
        )
    if nz != n:
        out.append(
            Finding(
                "zero_point_count",
                f"Tensor {t.name!r} has {n} scales but {nz} zero points.",
                _where(t),
            )
        )
    return out


def _needed_bytes(t: TensorInfo) -> tuple[int, ...] | None:
    """The sizes LiteRT accepts for the tensor's constant data (None: not checked)."""
    if t.sparsity is not None or any(d < 0 for d in t.shape):
        return None
    n = math.prod(t.shape) if t.shape else 1
    if t.dtype in DTYPE_BYTES:
        return (n * DTYPE_BYTES[t.dtype],)
    if t.dtype in _PACKED:
        per = _PACKED[t.dtype]
        return (-(-n // per), n)  # packed, or one element per byte
    return None  # strings, resources, variants: no fixed size


def _buffer(t: TensorInfo) -> list[Finding]:
    if t.buffer <= 0 or t.bytes <= 0:
        return []
    need = _needed_bytes(t)
    if need is None or t.bytes in need:
        return []
    shape = "×".join(str(d) for d in t.shape) or "scalar"
    return [
        Finding(
            "buffer_size",
            f"Tensor {t.name!r} ({t.dtype.lower()}, shape {shape}) needs {need[0]:,} bytes of "
            f"data, but its buffer holds {t.bytes:,}.",
            _where(t),
        )
    ]


def _control_flow(sg: SubgraphInfo, n_subgraphs: int) -> list[Finding]:
    out = []
    for op in sg.operators:
        for key, value in op.options.items():
            if not key.endswith("subgraph_index") or not isinstance(value, int):
                continue
            if not 0 <= value < n_subgraphs:
                out.append(
                    Finding(
                        "subgraph_index",
                        f"{op.name} #{op.index} names subgraph {value} as its {key}, but the "
                        f"model has {n_subgraphs} subgraph{'s' if n_subgraphs != 1 else ''}.",
                        f"subgraph {sg.index}, op {op.index} {op.name}",
                    )
                )
            elif value == sg.index:
                out.append(
                    Finding(
                        "subgraph_index",
                        f"{op.name} #{op.index} calls its own subgraph {value} ({key}).",
                        f"subgraph {sg.index}, op {op.index} {op.name}",
                    )
                )
    return out


def _signatures(model: ModelInfo) -> list[Finding]:
    out = []
    for s in model.signatures:
        n = len(model.subgraphs[s.subgraph].tensors) if s.subgraph < len(model.subgraphs) else 0
        for io, names in (("input", s.inputs), ("output", s.outputs)):
            for name, t in names.items():
                if not 0 <= t < n:
                    out.append(
                        Finding(
                            "signature_tensor",
                            f"Signature {s.key!r} maps its {io} {name!r} to tensor {t}, but "
                            f"subgraph {s.subgraph} has {n} tensors.",
                            f"signature {s.key!r}",
                        )
                    )
    return out


def validate(model: ModelInfo) -> tuple[Finding, ...]:
    """Everything LiteRT's loader would refuse, found without loading."""
    found: list[Finding] = []
    for sg in model.subgraphs:
        for t in sg.tensors:
            found += _quantization(t)
            found += _buffer(t)
            if len(found) >= _MAX_FINDINGS:
                return tuple(found[:_MAX_FINDINGS])
        found += _control_flow(sg, len(model.subgraphs))
    found += _signatures(model)
    return tuple(found[:_MAX_FINDINGS])
