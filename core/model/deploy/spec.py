"""What a deploy kit is generated from: the model's signatures (names,
shapes, dtypes, quantization) read from the FlatBuffer, its op list, and how
the model was made. No runtime is needed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.model.info import ModelInfo, OpKind, TensorInfo

__all__ = ["TensorSpec", "SignatureSpec", "KitSpec", "kit_spec"]

_NUMPY = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "FLOAT64": "float64",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT16": "int16",
    "UINT16": "uint16",
    "INT32": "int32",
    "UINT32": "uint32",
    "INT64": "int64",
    "BOOL": "bool",
    "STRING": "string",
}


@dataclass(frozen=True)
class TensorSpec:
    name: str  # the name in the signature (what code passes)
    tensor: str  # the tensor's own name in the graph
    index: int  # position among the subgraph's inputs (or outputs)
    dtype: str  # numpy name: float32, int8, …
    shape: tuple[int, ...]  # the tensor's shape (dynamic dims at their current size)
    dynamic: tuple[int, ...]  # axes that are dynamic (-1 in the signature)
    scale: float  # 0.0: not quantized
    zero_point: int
    per_channel: bool = False

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype in ("int8", "uint8", "int16")

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= max(int(d), 1)
        return n

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The real values a quantized tensor can hold."""
        if not self.quantized:
            return None
        info = np.iinfo(np.dtype(self.dtype))
        return (
            float((info.min - self.zero_point) * self.scale),
            float((info.max - self.zero_point) * self.scale),
        )


@dataclass(frozen=True)
class SignatureSpec:
    key: str  # "" for a model without signatures (index-based code)
    index: int
    subgraph: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class KitSpec:
    model_name: str
    file_size: int
    signatures: tuple[SignatureSpec, ...]
    ops: tuple[str, ...]  # builtin op names, sorted
    custom_ops: tuple[str, ...]
    select_tf_ops: tuple[str, ...]
    origin: str
    arena_bytes: int | None  # TFLite Micro arena to reserve (probe + margin), None: unknown
    probe_arena: int | None  # what the probe measured
    micro_error: str | None  # why TFLite Micro could not load the model
    litert_version: str

    @property
    def default(self) -> SignatureSpec:
        return next((s for s in self.signatures if s.key == "serving_default"), self.signatures[0])

    @property
    def quantized_io(self) -> bool:
        return any(t.quantized for s in self.signatures for t in (*s.inputs, *s.outputs))


def _spec(name: str, t: TensorInfo, index: int) -> TensorSpec:
    q = t.quantization
    scale, zp, per_channel = 0.0, 0, False
    if q and q.scales:
        scale = float(q.scales[0])
        zp = int(q.zero_points[0]) if q.zero_points else 0
        per_channel = len(q.scales) > 1
    sig = t.shape_signature or ()
    dynamic = tuple(i for i, d in enumerate(sig) if d < 0)
    shape = tuple(max(int(d), 1) for d in t.shape) if t.shape else ()
    return TensorSpec(
        name=name,
        tensor=t.name,
        index=index,
        dtype=_NUMPY.get(t.dtype, t.dtype.lower()),
        shape=shape,
        dynamic=dynamic,
        scale=scale,
        zero_point=zp,
        per_channel=per_channel,
    )


def _signatures(info: ModelInfo) -> tuple[SignatureSpec, ...]:
    out = []
    for k, sig in enumerate(info.signatures):
        sg = info.subgraphs[sig.subgraph]
        ins = [
            _spec(n, sg.tensors[i], list(sg.inputs).index(i) if i in sg.inputs else -1)
            for n, i in sig.inputs.items()
        ]
        outs = [
            _spec(n, sg.tensors[i], list(sg.outputs).index(i) if i in sg.outputs else -1)
            for n, i in sig.outputs.items()
        ]
        out.append(SignatureSpec(sig.key, k, sig.subgraph, tuple(ins), tuple(outs)))
    if not out and info.subgraphs:  # an old file without signatures: by position
        sg = info.subgraphs[0]
        ins = [_spec(sg.tensors[i].name, sg.tensors[i], k) for k, i in enumerate(sg.inputs)]
        outs = [_spec(sg.tensors[i].name, sg.tensors[i], k) for k, i in enumerate(sg.outputs)]
        out.append(SignatureSpec("", 0, 0, tuple(ins), tuple(outs)))
    return tuple(out)


def kit_spec(
    info: ModelInfo,
    model_name: str,
    *,
    origin: str = "",
    probe_arena: int | None = None,
    micro_error: str | None = None,
    litert_version: str = "2.3.0",
) -> KitSpec:
    """The kit's view of one model (read with ``core.model.reader.read_model``)."""
    ops = sorted({o.name for o in info.operators if o.kind is OpKind.BUILTIN})
    custom = sorted({o.name for o in info.operators if o.kind is OpKind.CUSTOM})
    flex = sorted({o.name for o in info.operators if o.kind is OpKind.SELECT_TF})
    arena = None
    if probe_arena:
        # the probe's measured arena, plus a quarter (at least 1 KiB), rounded up to 1 KiB
        arena = -(-(probe_arena + max(probe_arena // 4, 1024)) // 1024) * 1024
    return KitSpec(
        model_name=model_name,
        file_size=info.file_size,
        signatures=_signatures(info),
        ops=tuple(ops),
        custom_ops=tuple(custom),
        select_tf_ops=tuple(flex),
        origin=origin,
        arena_bytes=arena,
        probe_arena=probe_arena,
        micro_error=micro_error,
        litert_version=litert_version,
    )
