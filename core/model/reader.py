"""Read any ``.tflite`` file without TensorFlow.

``read_model(source)`` maps the file (or wraps the bytes), checks the ``TFL3``
identifier, walks the FlatBuffer and returns a frozen ``ModelInfo``: subgraphs,
operators, tensors, signatures, buffers and metadata. Weights are never copied;
only their sizes (and whether they are all zeros) are recorded.

The file is untrusted. Every offset and length is checked against the buffer
before it is followed, vector lengths are bounded by the bytes that remain,
the walk has a fixed depth (no recursion on file data) and a budget on the
number of tables and decoded bytes. Anything wrong becomes a
``TFLiteFormatError`` with a message and a hint; nothing else escapes.

Names and enums come from LiteRT's generated schema
(``ai_edge_litert.schema_py_generated``, built on the ``flatbuffers`` package,
importing no TensorFlow). Slot numbers below follow ``schema.fbs`` field order.
"""

from __future__ import annotations

import enum
import gc
import mmap
import os
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import flatbuffers.table
import numpy as np
from ai_edge_litert import schema_py_generated as _schema

from core.errors import TFLiteFormatError

__all__ = [
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
    "read_model",
    "weight_owners",
    "weights_by_op",
    "UNREAD_WEIGHTS",
    "builtin_op_name",
    "FILE_IDENTIFIER",
]

FILE_IDENTIFIER = b"TFL3"

# Limits in the spirit of flatbuffers' own Verifier (max_tables = 1e6).
_MAX_TABLES = 1_000_000
_MAX_STRING = 16_384  # longer names are cut (memory stays bounded per tensor)
_MAX_OPTION_VECTOR = 64  # longer option vectors are summarised, not copied
_PREVIEW_ELEMENTS = 16  # small int constants (axes, shapes, paddings) are decoded

_HINT_CORRUPT = (
    "The file is damaged or not a TensorFlow Lite model. Re-export it with "
    "tf.lite.TFLiteConverter and upload the complete .tflite file."
)


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
        return bool(sig) and any(d < 0 for d in sig)

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


# --------------------------------------------------------------------------- enums


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


_BUILTIN_OPS = _enum_names(_schema.BuiltinOperator)
_TENSOR_TYPES = _enum_names(_schema.TensorType)
_OPTIONS = _enum_names(_schema.BuiltinOptions)
_OPTIONS2 = _enum_names(_schema.BuiltinOptions2)
_QUANT_DETAILS = _enum_names(_schema.QuantizationDetails)
_DIM_TYPES = _enum_names(_schema.DimensionType)
_CUSTOM_CODE = _schema.BuiltinOperator.CUSTOM
# Option fields whose ints are enums in the schema; shown by name.
_OPTION_ENUMS: dict[str, dict[int, str]] = {
    "FusedActivationFunction": _enum_names(_schema.ActivationFunctionType),
    "Padding": _enum_names(_schema.Padding),
    "WeightsFormat": _enum_names(_schema.FullyConnectedOptionsWeightsFormat),
    "KernelType": _enum_names(_schema.LSTMKernelType),
    "Mode": _enum_names(_schema.MirrorPadMode),
    "Combiner": _enum_names(_schema.CombinerType),
    "QuantizedBiasType": _TENSOR_TYPES,
    "OutType": _TENSOR_TYPES,
    "OutputType": _TENSOR_TYPES,
    "IdxOutType": _TENSOR_TYPES,
    "InDataType": _TENSOR_TYPES,
    "OutDataType": _TENSOR_TYPES,
}
# conversion_metadata.fbs enums (the generated module ships only inside TensorFlow).
_MODEL_TYPES = {
    0: "NONE",
    1: "TF_SAVED_MODEL",
    2: "KERAS_MODEL",
    3: "TF_CONCRETE_FUNCTIONS",
    4: "TF_GRAPH_DEF",
    5: "TF_SESSION",
    6: "JAX",
    7: "PYTORCH",
}
_OPTIMIZATION_MODES = {
    1001: "PTQ_FLOAT16",
    1002: "PTQ_DYNAMIC_RANGE",
    1003: "PTQ_FULL_INTEGER",
    1004: "PTQ_INT16",
    2000: "QUANTIZATION_AWARE_TRAINING",
    3001: "RANDOM_SPARSITY",
    3002: "BLOCK_SPARSITY",
    3003: "STRUCTURED_SPARSITY",
}


def builtin_op_name(code: int) -> str:
    return _BUILTIN_OPS.get(code, f"UNKNOWN_BUILTIN_{code}")


# ------------------------------------------------------------------ safe access


class _Corrupt(Exception):
    """Internal: the buffer breaks a structural rule. Becomes TFLiteFormatError."""


_I8 = struct.Struct("<b").unpack_from
_U8 = struct.Struct("<B").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from


@lru_cache(maxsize=512)
def _vec_struct(fmt: str, n: int) -> struct.Struct:
    return struct.Struct(f"<{n}{fmt}")


_HH = struct.Struct("<HH").unpack_from
_Fields = tuple[int, ...]  # absolute position of each table field, 0 when absent


class _Buf:
    """Bounds-checked FlatBuffer access over a memoryview.

    ``table(pos)`` checks a table and its vtable once and returns the absolute
    position of every field (0 when absent); fields are then read by slot
    number. Every position is checked against ``n`` before it is read.
    """

    __slots__ = ("mv", "n", "tables", "budget", "vtables")

    def __init__(self, mv: memoryview, budget: int) -> None:
        self.mv = mv
        self.n = len(mv)
        self.tables = 0
        self.budget = budget  # bytes of strings/vectors we may still decode
        self.vtables: dict[int, tuple[tuple[int, ...], int]] = {}  # writers share vtables

    def _past_end(self, what: str, pos: int) -> _Corrupt:
        return _Corrupt(f"{what} at byte {pos} runs past the end of the data ({self.n} bytes)")

    def _spend(self, amount: int, what: str) -> None:
        self.budget -= amount
        if self.budget < 0:
            raise _Corrupt(f"{what}: the file reuses the same data far more often than a model can")

    def uoffset(self, pos: int, what: str) -> int:
        if pos < 0 or pos + 4 > self.n:
            raise self._past_end(what, pos)
        target = pos + _U32(self.mv, pos)[0]
        if target >= self.n:
            raise _Corrupt(f"{what}: offset at byte {pos} points past the end of the data")
        return target

    def table(self, pos: int, what: str) -> _Fields:
        n = self.n
        self.tables += 1
        if self.tables > _MAX_TABLES:
            raise _Corrupt(f"{what}: more than {_MAX_TABLES} tables")
        if pos < 0 or pos + 4 > n:
            raise self._past_end(what, pos)
        vt = pos - _I32(self.mv, pos)[0]
        hit = self.vtables.get(vt)
        if hit is None:
            if vt < 0 or vt + 4 > n:
                raise self._past_end(f"{what} vtable", vt)
            vt_size, obj_size = _HH(self.mv, vt)
            if vt_size < 4 or vt_size & 1 or vt + vt_size > n:
                raise _Corrupt(f"{what}: vtable at byte {vt} is invalid (size {vt_size})")
            nf = (vt_size - 4) >> 1
            fields = _vec_struct("H", nf).unpack_from(self.mv, vt + 4) if nf else ()
            hit = self.vtables[vt] = (fields, obj_size)
        fields, obj_size = hit
        if pos + obj_size > n:
            raise _Corrupt(f"{what}: table at byte {pos} ({obj_size} bytes) runs past the end")
        return tuple([pos + f if f else 0 for f in fields])

    def scalar(self, fa: _Fields, i: int, unpack, size: int, default, what: str):
        p = fa[i] if i < len(fa) else 0
        if not p:
            return default
        if p + size > self.n:
            raise self._past_end(what, p)
        return unpack(self.mv, p)[0]

    def vector(self, fa: _Fields, i: int, elem_size: int, what: str) -> tuple[int, int] | None:
        """(start, length) of a vector field, or None when absent."""
        p = fa[i] if i < len(fa) else 0
        if not p:
            return None
        n, mv = self.n, self.mv
        if p + 4 > n:
            raise self._past_end(what, p)
        v = p + _U32(mv, p)[0]
        if v + 4 > n:
            raise self._past_end(what, v)
        length = _U32(mv, v)[0]
        if length * elem_size > n - v - 4:
            raise _Corrupt(f"{what}: vector of {length} elements at byte {v} exceeds the file")
        return v + 4, length

    def ints(self, fa: _Fields, i: int, fmt: str, size: int, what: str) -> tuple[int, ...] | None:
        vec = self.vector(fa, i, size, what)
        if vec is None:
            return None
        start, length = vec
        if not length:
            return ()
        self.budget -= length * size
        if self.budget < 0:
            self._spend(0, what)
        return _vec_struct(fmt, length).unpack_from(self.mv, start)

    def string(self, fa: _Fields, i: int, what: str) -> str | None:
        vec = self.vector(fa, i, 1, what)
        if vec is None:
            return None
        start, length = vec
        length = min(length, _MAX_STRING)
        self._spend(length, what)
        return str(self.mv[start : start + length], "utf-8", "replace")

    def tables_of(self, fa: _Fields, i: int, what: str) -> list[_Fields]:
        vec = self.vector(fa, i, 4, what)
        if vec is None:
            return []
        start, length = vec
        self._spend(length * 4, what)
        # Offsets are relative to their own slot; the slots lie inside the vector.
        offsets = _vec_struct("I", length).unpack_from(self.mv, start)
        positions = [start + 4 * k + off for k, off in enumerate(offsets)]
        repeats = length - len(set(positions))
        if repeats:
            # TensorFlow's MLIR quantizer shares tables between entries. Charge
            # each repeat extra so nested sharing cannot multiply objects past
            # the decode budget (a few bytes turned into millions of objects).
            self._spend(repeats * 64, what)
        table = self.table
        return [table(p, what) for p in positions]


def _slot(fa: _Fields, i: int) -> int:
    return fa[i] if i < len(fa) else 0


class _SafeTable(flatbuffers.table.Table):
    """flatbuffers Table whose reads are bounds-checked, for generated option classes."""

    __slots__ = ()

    def Get(self, flags, off):  # noqa: N802 - flatbuffers API name
        if off < 0 or off + flags.bytewidth > len(self.Bytes):
            raise _Corrupt(f"option field at byte {off} runs past the end of the data")
        return super().Get(flags, off)

    def String(self, off):  # noqa: N802
        start = off + self.Get(flatbuffers.number_types.UOffsetTFlags, off)
        length = self.Get(flatbuffers.number_types.UOffsetTFlags, start)
        if start + 4 + length > len(self.Bytes):
            raise _Corrupt(f"option string at byte {start} runs past the end of the data")
        length = min(length, _MAX_STRING)
        return bytes(self.Bytes[start + 4 : start + 4 + length])

    def VectorLen(self, off):  # noqa: N802
        off += self.Pos
        start = off + self.Get(flatbuffers.number_types.UOffsetTFlags, off)
        length = self.Get(flatbuffers.number_types.UOffsetTFlags, start)
        if length > len(self.Bytes) - start - 4:
            raise _Corrupt(f"option vector at byte {start} is longer than the file")
        return length

    def Union(self, t2, off):  # noqa: N802
        raise _Corrupt("nested tables in options are not followed")


@cache
def _option_fields(cls: type) -> tuple[tuple[str, Any, Any], ...]:
    """(name, accessor, as_numpy) per field of a generated options class.

    Scalars and strings have ``as_numpy is False``; vectors pass their
    ``XLength`` accessor and ``XAsNumpy`` (None for vectors of tables).
    """
    out = []
    members = vars(cls)
    for name, fn in members.items():
        code = getattr(fn, "__code__", None)
        if code is None or name.startswith("_") or name == "Init":
            continue
        if name.endswith(("Length", "IsNone", "AsNumpy")):
            continue
        if code.co_argcount == 1:
            out.append((name, fn, False))
        elif code.co_argcount == 2 and f"{name}Length" in members:
            out.append((name, members[f"{name}Length"], members.get(f"{name}AsNumpy")))
    return tuple(out)


@cache
def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        boundary = not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())
        if ch.isupper() and i and boundary:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


_FLAG_FORMATS = {
    "BoolFlags": ("?", 1),
    "Int8Flags": ("b", 1),
    "Uint8Flags": ("B", 1),
    "Int16Flags": ("h", 2),
    "Uint16Flags": ("H", 2),
    "Int32Flags": ("i", 4),
    "Uint32Flags": ("I", 4),
    "Int64Flags": ("q", 8),
    "Uint64Flags": ("Q", 8),
    "Float32Flags": ("f", 4),
    "Float64Flags": ("d", 8),
}


def _field_layout(fn, length_fn) -> tuple | None:
    """(kind, slot, fmt, size, default) read off a generated accessor's code.

    The generated accessors are uniform: ``self._tab.Offset(<voffset>)`` then a
    typed ``Get``/``String``/``Vector``. Reading that once lets us decode options
    with one vtable lookup instead of one per field. None means "unrecognised".
    """
    code = (length_fn or fn).__code__
    ints = [c for c in code.co_consts if type(c) is int]
    if not ints or ints[0] < 4 or ints[0] & 1:
        return None
    slot = (ints[0] - 4) >> 1
    names = set(fn.__code__.co_names)
    if "Indirect" in names or "Union" in names or "Init" in names:
        return None  # nested tables: not part of the summary
    flags = [n for n in names if n in _FLAG_FORMATS]
    if length_fn is not None:
        if len(flags) != 1:
            return None
        fmt, size = _FLAG_FORMATS[flags[0]]
        return ("vector", slot, fmt, size, None)
    if "String" in names:
        return ("string", slot, "", 0, None)
    if len(flags) != 1 or "Get" not in names:
        return None
    fmt, size = _FLAG_FORMATS[flags[0]]
    return ("scalar", slot, fmt, size, None)  # default: see _option_layouts


# A table with no fields: every generated accessor returns its schema default.
_EMPTY_TABLE = struct.pack("<HHi", 4, 4, 4)


@cache
def _option_layouts(cls: type) -> tuple[tuple, ...] | None:
    out = []
    for name, accessor, as_numpy in _option_fields(cls):
        if as_numpy is False:
            layout = _field_layout(accessor, None)
        else:
            layout = _field_layout(vars(cls)[name], accessor)
        if layout is None:
            return None  # fall back to the generated accessors for this class
        kind, slot, fmt, size, default = layout
        unpack = None
        if kind == "scalar":
            unpack = struct.Struct("<" + fmt).unpack_from
            obj = cls()
            obj.Init(_EMPTY_TABLE, 4)
            default = accessor(obj)
        out.append((_snake(name), kind, slot, fmt, size, default, unpack, _OPTION_ENUMS.get(name)))
    return tuple(out)


def _read_options(buf: _Buf, pos: int, cls: type) -> dict[str, Any]:
    tab = buf.table(pos, "operator options")
    layouts = _option_layouts(cls)
    if layouts is None:
        return _read_options_generated(buf, pos, cls)
    result: dict[str, Any] = {}
    nf, n, mv = len(tab), buf.n, buf.mv
    for key, kind, slot, fmt, size, default, unpack, enum_names in layouts:
        if kind == "scalar":
            p = tab[slot] if slot < nf else 0
            if not p:
                value = default
            elif p + size > n:
                raise buf._past_end(key, p)
            else:
                value = unpack(mv, p)[0]
            if enum_names is not None:
                value = enum_names.get(value, value)
        elif kind == "string":
            value = buf.string(tab, slot, key)
            if value is None:
                continue
        else:
            vec = buf.vector(tab, slot, size, key)
            if not vec or not vec[1]:
                continue
            if vec[1] > _MAX_OPTION_VECTOR:
                value = f"[{vec[1]} values]"
            else:
                value = list(_vec_struct(fmt, vec[1]).unpack_from(buf.mv, vec[0]))
        result[key] = value
    return result


def _read_options_generated(buf: _Buf, pos: int, cls: type) -> dict[str, Any]:
    obj = cls()
    obj._tab = _SafeTable(buf.mv, pos)
    result: dict[str, Any] = {}
    for name, accessor, as_numpy in _option_fields(cls):
        if as_numpy is False:
            value = accessor(obj)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif name in _OPTION_ENUMS and isinstance(value, int):
                value = _OPTION_ENUMS[name].get(value, value)
            elif not isinstance(value, (int, float, str)):
                continue  # nested tables/structs are not part of the summary
        else:
            length = accessor(obj)
            if not length:
                continue
            if length > _MAX_OPTION_VECTOR or as_numpy is None:
                value = f"[{length} values]"
            else:
                value = as_numpy(obj).tolist()
        result[_snake(name)] = value
    return result


# ------------------------------------------------------------------ model walk


def _decode_quantization(buf: _Buf, tab) -> Quantization | None:
    scales = buf.ints(tab, 2, "f", 4, "quantization scales") or ()
    zero_points = buf.ints(tab, 3, "q", 8, "quantization zero points") or ()
    qmin = buf.ints(tab, 0, "f", 4, "quantization min") or ()
    qmax = buf.ints(tab, 1, "f", 4, "quantization max") or ()
    details_type = buf.scalar(tab, 4, _U8, 1, 0, "quantization details")
    qdim = buf.scalar(tab, 6, _I32, 4, 0, "quantized dimension")
    if not (scales or zero_points or qmin or qmax or details_type):
        return None  # the converter writes empty tables for float tensors
    return Quantization(
        scales=scales,
        zero_points=zero_points,
        quantized_dimension=qdim,
        min=qmin,
        max=qmax,
        details=_QUANT_DETAILS.get(details_type) if details_type else None,
    )


def _decode_sparsity(buf: _Buf, tab) -> Sparsity:
    order = buf.ints(tab, 0, "i", 4, "sparsity traversal order") or ()
    block_map = buf.ints(tab, 1, "i", 4, "sparsity block map") or ()
    formats = tuple(
        _DIM_TYPES.get(buf.scalar(dim, 0, _I8, 1, 0, "sparsity dim"), "UNKNOWN")
        for dim in buf.tables_of(tab, 2, "sparsity dim metadata")
    )
    return Sparsity(tuple(order), tuple(block_map), formats)


def _buffer_views(buf: _Buf, model) -> list[tuple[int, int | None, bool]]:
    """(size, data_start, external) per buffer."""
    out = []
    for k, b in enumerate(buf.tables_of(model, 4, "buffers")):
        what = f"buffer {k}"
        vec = buf.vector(b, 0, 1, what)
        if vec is not None and vec[1]:
            out.append((vec[1], vec[0], False))
            continue
        offset = buf.scalar(b, 1, _U64, 8, 0, what)
        size = buf.scalar(b, 2, _U64, 8, 0, what)
        if offset > 1 and size:  # offset 0/1 mean "no data" in the writer
            if offset + size > buf.n:
                raise _Corrupt(
                    f"{what} stores {size} bytes at byte {offset}, past the end of the "
                    f"file ({buf.n} bytes): the file is cut short"
                )
            out.append((size, offset, True))
        else:
            out.append((0, None, False))
    return out


def _all_zero(mv: memoryview, start: int, size: int) -> bool:
    head = min(size, 64)
    if any(mv[start : start + head]):  # most weights fail on the first bytes
        return False
    arr = np.frombuffer(mv, dtype=np.uint8, count=size, offset=start)
    try:
        return not arr.any()
    finally:
        del arr


def _preview(mv: memoryview, dtype: str, start: int, size: int) -> tuple[int, ...] | None:
    width = 4 if dtype == "INT32" else 8 if dtype == "INT64" else 0
    if not width or size % width or size // width > _PREVIEW_ELEMENTS:
        return None
    return _vec_struct("i" if width == 4 else "q", size // width).unpack_from(mv, start)


def _op_codes(buf: _Buf, model) -> list[tuple[str, OpKind, int, int]]:
    codes = []
    for k, oc in enumerate(buf.tables_of(model, 1, "operator codes")):
        what = f"operator code {k}"
        deprecated = buf.scalar(oc, 0, _I8, 1, 0, what)
        builtin = buf.scalar(oc, 3, _I32, 4, 0, what)
        version = buf.scalar(oc, 2, _I32, 4, 1, what)
        code = max(builtin, deprecated)  # old files only fill the deprecated int8
        if code == _CUSTOM_CODE:
            custom = buf.string(oc, 1, what) or "CUSTOM"
            kind = OpKind.SELECT_TF if custom.startswith("Flex") else OpKind.CUSTOM
            codes.append((custom, kind, version, code))
        else:
            codes.append((builtin_op_name(code), OpKind.BUILTIN, version, code))
    return codes


def _check_indices(indices, limit: int, what: str) -> tuple[int, ...]:
    if indices and (min(indices) < -1 or max(indices) >= limit):
        bad = next(t for t in indices if t < -1 or t >= limit)
        raise _Corrupt(f"{what} refers to tensor {bad}, but the subgraph has {limit} tensors")
    return tuple(indices)


def _tensors(buf: _Buf, s: int, sg, buffers) -> list[TensorInfo]:
    mv = buf.mv
    n_buffers = len(buffers)
    scalar, ints, table, uoffset = buf.scalar, buf.ints, buf.table, buf.uoffset
    tensors: list[TensorInfo] = []
    append = tensors.append
    k = -1
    try:
        for k, t in enumerate(buf.tables_of(sg, 0, "tensor list")):
            shape = ints(t, 0, "i", 4, "shape")
            dtype_code = scalar(t, 1, _I8, 1, 0, "type")
            dtype = _TENSOR_TYPES.get(dtype_code) or f"UNKNOWN_TYPE_{dtype_code}"
            b = scalar(t, 2, _U32, 4, 0, "buffer index")
            if b >= n_buffers:
                if b:
                    raise _Corrupt(f"refers to buffer {b}, but the model has {n_buffers} buffers")
                size, start = 0, None
            else:
                size, start, _external = buffers[b]
            nf = len(t)
            qpos = t[4] if nf > 4 else 0
            quant = None
            if qpos:
                quant = _decode_quantization(buf, table(uoffset(qpos, "quant"), "quantization"))
            spos = t[6] if nf > 6 else 0
            sparsity = None
            if spos:
                sparsity = _decode_sparsity(buf, table(uoffset(spos, "sparsity"), "sparsity"))
            sig = ints(t, 7, "i", 4, "shape signature")
            append(
                TensorInfo(
                    subgraph=s,
                    index=k,
                    name=buf.string(t, 3, "name") or "",
                    shape=shape or (),
                    shape_signature=sig,
                    dtype=dtype,
                    buffer=b,
                    bytes=size,
                    is_variable=bool(scalar(t, 5, _U8, 1, 0, "is_variable")),
                    quantization=quant,
                    sparsity=sparsity,
                    has_rank=shape is not None or bool(scalar(t, 8, _U8, 1, 0, "has_rank")),
                    values=_preview(mv, dtype, start, size) if start is not None else None,
                )
            )
    except _Corrupt as e:
        raise _Corrupt(f"subgraph {s} tensor {k + 1 if k < 0 else k}: {e}") from None
    return tensors


def _operators(buf: _Buf, s: int, sg, codes, n_tensors: int) -> list[OperatorInfo]:
    scalar, ints = buf.scalar, buf.ints
    n_codes = len(codes)
    operators: list[OperatorInfo] = []
    append = operators.append
    k = -1
    try:
        for k, o in enumerate(buf.tables_of(sg, 3, "operator list")):
            idx = scalar(o, 0, _U32, 4, 0, "opcode index")
            if idx >= n_codes:
                raise _Corrupt(f"uses operator code {idx}, but the model has {n_codes}")
            name, kind, version, code = codes[idx]
            inputs = _check_indices(ints(o, 1, "i", 4, "inputs") or (), n_tensors, "inputs")
            outputs = _check_indices(ints(o, 2, "i", 4, "outputs") or (), n_tensors, "outputs")
            options: dict[str, Any] = {}
            options_type = None
            for type_slot, table_slot, names in ((3, 4, _OPTIONS), (11, 12, _OPTIONS2)):
                otype = scalar(o, type_slot, _U8, 1, 0, "options type")
                opos = _slot(o, table_slot)
                if otype and opos:
                    options_type = names.get(otype)
                    cls = getattr(_schema, options_type, None) if options_type else None
                    if cls is not None:
                        options = _read_options(buf, buf.uoffset(opos, "options"), cls)
                    break
            custom_bytes = 0
            if kind is not OpKind.BUILTIN:
                custom = buf.vector(o, 5, 1, "custom options")
                # Large custom options live outside the FlatBuffer (offset/size).
                custom_bytes = custom[1] if custom else scalar(o, 10, _U64, 8, 0, "custom size")
            act = options.get("fused_activation_function")
            append(
                OperatorInfo(
                    subgraph=s,
                    index=k,
                    opcode_index=idx,
                    name=name,
                    kind=kind,
                    version=version,
                    builtin_code=code,
                    inputs=inputs,
                    outputs=outputs,
                    options_type=options_type,
                    options=options,
                    fused_activation=act if isinstance(act, str) else None,
                    custom_options_bytes=custom_bytes,
                )
            )
    except _Corrupt as e:
        raise _Corrupt(f"subgraph {s} operator {max(k, 0)}: {e}") from None
    return operators


def _subgraph(buf: _Buf, s: int, sg, codes, buffers) -> SubgraphInfo:
    what = f"subgraph {s}"
    tensors = _tensors(buf, s, sg, buffers)
    n_tensors = len(tensors)
    operators = _operators(buf, s, sg, codes, n_tensors)
    inputs = buf.ints(sg, 1, "i", 4, f"{what} inputs") or ()
    outputs = buf.ints(sg, 2, "i", 4, f"{what} outputs") or ()
    return SubgraphInfo(
        index=s,
        name=buf.string(sg, 4, what) or "",
        inputs=_check_indices(inputs, n_tensors, f"{what} inputs"),
        outputs=_check_indices(outputs, n_tensors, f"{what} outputs"),
        tensors=tuple(tensors),
        operators=tuple(operators),
    )


def _conversion_metadata(mv: memoryview) -> ConversionMetadata | None:
    """Parse conversion_metadata.fbs by hand (its generated module ships only in TF)."""
    buf = _Buf(mv, budget=4 * len(mv) + 1024)
    root = buf.table(buf.uoffset(0, "conversion metadata"), "conversion metadata")
    env_pos, opt_pos = _slot(root, 0), _slot(root, 1)
    version = None
    api_version = model_hash = 0
    model_type = "NONE"
    if env_pos:
        env = buf.table(buf.uoffset(env_pos, "environment"), "environment")
        version = buf.string(env, 0, "tensorflow version")
        api_version = buf.scalar(env, 1, _U32, 4, 0, "api version")
        mt = buf.scalar(env, 2, _I32, 4, 0, "model type")
        model_type = _MODEL_TYPES.get(mt, str(mt))
        model_hash = buf.scalar(env, 3, _U64, 8, 0, "model hash")
    modes: tuple[str, ...] = ()
    flags = [False, False, False]
    blocks: list[tuple[int, ...]] = []
    if opt_pos:
        opts = buf.table(buf.uoffset(opt_pos, "options"), "options")
        raw = buf.ints(opts, 0, "i", 4, "optimization modes") or ()
        modes = tuple(_OPTIMIZATION_MODES.get(m, str(m)) for m in raw)
        flags = [bool(buf.scalar(opts, i, _U8, 1, 0, "options")) for i in (1, 2, 3)]
        for blk in buf.tables_of(opts, 4, "sparsity block sizes"):
            blocks.append(tuple(buf.ints(blk, 0, "I", 4, "block size") or ()))
    return ConversionMetadata(
        tensorflow_version=version,
        api_version=api_version,
        model_type=model_type,
        model_hash=model_hash,
        optimization_modes=modes,
        allow_custom_ops=flags[0],
        enable_select_tf_ops=flags[1],
        force_select_tf_ops=flags[2],
        sparsity_block_sizes=tuple(blocks),
    )


def _parse(mv: memoryview, check_zeros: bool) -> ModelInfo:
    n = len(mv)
    # A real model spends every decoded byte once; allow shared data, not a bomb.
    buf = _Buf(mv, budget=2 * n + 65_536)
    model = buf.table(buf.uoffset(0, "root table"), "model")
    schema_version = buf.scalar(model, 0, _U32, 4, 0, "model")
    codes = _op_codes(buf, model)
    buffers = _buffer_views(buf, model)
    subgraphs = tuple(
        _subgraph(buf, s, sg, codes, buffers)
        for s, sg in enumerate(buf.tables_of(model, 2, "subgraphs"))
    )
    metadata: list[MetadataEntry] = []
    min_runtime = None
    conv_meta = None
    for k, m in enumerate(buf.tables_of(model, 6, "metadata")):
        name = buf.string(m, 0, f"metadata {k}") or ""
        b = buf.scalar(m, 1, _U32, 4, 0, f"metadata {k}")
        if b >= len(buffers):
            raise _Corrupt(f"metadata {name!r} refers to buffer {b} of {len(buffers)}")
        size, start, _ = buffers[b]
        metadata.append(MetadataEntry(name, b, size))
        if start is None:
            continue
        if name == "min_runtime_version":
            raw = bytes(mv[start : start + min(size, 64)])
            min_runtime = raw.split(b"\0", 1)[0].decode("ascii", "replace")
        elif name == "CONVERSION_METADATA":
            try:
                conv_meta = _conversion_metadata(mv[start : start + size])
            except (_Corrupt, struct.error) as e:
                raise _Corrupt(f"metadata CONVERSION_METADATA is unreadable: {e}") from e
    signatures = []
    for k, sd in enumerate(buf.tables_of(model, 7, "signature defs")):
        what = f"signature {k}"
        ios = []
        for slot in (0, 1):
            io: dict[str, int] = {}
            for tm in buf.tables_of(sd, slot, what):
                io[buf.string(tm, 0, what) or ""] = buf.scalar(tm, 1, _U32, 4, 0, what)
            ios.append(io)
        sub = buf.scalar(sd, 4, _U32, 4, 0, what)
        if sub >= max(len(subgraphs), 1):
            raise _Corrupt(f"{what} refers to subgraph {sub}, but the model has {len(subgraphs)}")
        signatures.append(SignatureInfo(buf.string(sd, 2, what) or "", sub, ios[0], ios[1]))
    external_bytes = 0
    for k, eb in enumerate(buf.tables_of(model, 9, "external buffers")):
        external_bytes += buf.scalar(eb, 3, _U64, 8, 0, f"external buffer {k}")
    buffer_infos = tuple(
        BufferInfo(
            index=k,
            size=size,
            offset=start,
            external=external,
            all_zero=_all_zero(mv, start, size) if (check_zeros and start is not None) else None,
        )
        for k, (size, start, external) in enumerate(buffers)
    )
    return ModelInfo(
        file_size=n,
        schema_version=schema_version,
        description=buf.string(model, 3, "description") or "",
        subgraphs=subgraphs,
        buffers=buffer_infos,
        metadata=tuple(metadata),
        signatures=tuple(signatures),
        min_runtime_version=min_runtime,
        conversion_metadata=conv_meta,
        external_buffer_bytes=external_bytes,
    )


def _check_header(mv: memoryview, label: str) -> None:
    if len(mv) == 0:
        raise TFLiteFormatError(f"{label} is empty.", "Upload the complete .tflite file.")
    if len(mv) < 8 or bytes(mv[4:8]) != FILE_IDENTIFIER:
        found = bytes(mv[4:8]) if len(mv) >= 8 else b""
        raise TFLiteFormatError(
            f"{label} is not a TensorFlow Lite FlatBuffer: bytes 4-8 are {found!r}, "
            f"expected {FILE_IDENTIFIER!r}.",
            "Check that you picked the .tflite file (not a SavedModel, .keras or .h5 file). "
            "Convert other formats with tf.lite.TFLiteConverter first.",
        )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing allocates many small acyclic objects; the cyclic GC would rescan
    the growing heap over and over (superlinear on 50k-op graphs)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse_guarded(mv: memoryview, label: str, check_zeros: bool) -> ModelInfo:
    _check_header(mv, label)
    try:
        with _gc_paused():
            return _parse(mv, check_zeros)
    except (_Corrupt, struct.error, ValueError, IndexError, OverflowError, UnicodeDecodeError) as e:
        # Generated accessors raise struct.error/ValueError on out-of-range reads.
        raise TFLiteFormatError(f"{label} is corrupt or cut short: {e}", _HINT_CORRUPT) from None


def read_model(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview, *, check_zeros: bool = True
) -> ModelInfo:
    """Read a .tflite file (path) or its bytes. Raises only ``TFLiteFormatError``.

    ``check_zeros`` scans each buffer once to flag all-zero weights; turn it off to
    touch nothing but the FlatBuffer structure.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        mv = memoryview(source)
        if mv.ndim != 1 or mv.itemsize != 1 or not mv.c_contiguous:
            mv = memoryview(mv.tobytes())
        return _parse_guarded(mv, "The model data", check_zeros)
    path = os.fspath(source)
    label = f"{os.path.basename(path) or path!r}"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise TFLiteFormatError(
                    f"{label} is empty (0 bytes).", "Upload the complete .tflite file."
                )
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise TFLiteFormatError(
            f"Cannot read {path}: {e.strerror or e}.", "Check the path and permissions."
        ) from None
    mv = memoryview(mm)
    try:
        return _parse_guarded(mv, label, check_zeros)
    finally:
        try:
            mv.release()
            mm.close()
        except BufferError:
            pass  # a view survives in an exception frame; the GC unmaps it later


UNREAD_WEIGHTS = "(not read by any op)"


def weight_owners(model: ModelInfo) -> dict[tuple[int, int], str]:
    """(subgraph, tensor index) -> the op type its weights are counted for.

    Each weight buffer is counted once: for the first op that reads it in
    execution order (subgraph by subgraph), else under ``UNREAD_WEIGHTS``.
    Constant tensors sharing an already counted buffer are left out."""
    owners: dict[tuple[int, int], str] = {}
    seen: set[int] = set()
    for sg in model.subgraphs:
        for op in sg.operators:
            for i in op.inputs:
                if 0 <= i < len(sg.tensors):
                    t = sg.tensors[i]
                    if t.is_constant and t.buffer not in seen:
                        seen.add(t.buffer)
                        owners[(sg.index, i)] = op.name
    for t in model.tensors:
        if t.is_constant and t.buffer not in seen:
            seen.add(t.buffer)
            owners[(t.subgraph, t.index)] = UNREAD_WEIGHTS
    return owners


def weights_by_op(model: ModelInfo) -> dict[str, int]:
    """Weight bytes per op type, by the rule of ``weight_owners``."""
    by_op: Counter[str] = Counter()
    for (sg, i), op in weight_owners(model).items():
        by_op[op] += model.subgraphs[sg].tensors[i].bytes
    return dict(by_op)
