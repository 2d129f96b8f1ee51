"""Bounds-checked access to an untrusted FlatBuffer, and operator options.

``Buf`` checks every table, vtable, vector and string against the buffer
before following it and keeps a budget on tables and decoded bytes; anything
wrong raises ``Corrupt``, which ``core.model.reader`` turns into a
``TFLiteFormatError``. ``read_operator_options`` decodes an operator's
builtin options into a dict, through a layout read once per options class
(or, for classes it cannot lay out, through the generated accessors over a
bounds-checked table).

Names and enums come from LiteRT's generated schema
(``ai_edge_litert.schema_py_generated``, built on the ``flatbuffers`` package,
importing no TensorFlow).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import cache, lru_cache
from types import FunctionType
from typing import Any

import flatbuffers.table
from ai_edge_litert import schema_py_generated as _schema

__all__ = [
    "Buf",
    "Corrupt",
    "Fields",
    "field_pos",
    "vec_struct",
    "I8",
    "U8",
    "I32",
    "U32",
    "U64",
    "TENSOR_TYPES",
    "QUANT_DETAILS",
    "DIM_TYPES",
    "CUSTOM_CODE",
    "builtin_op_name",
    "option_layouts",
    "read_operator_options",
]

# Limits in the spirit of flatbuffers' own Verifier (max_tables = 1e6).
_MAX_TABLES = 1_000_000
_MAX_STRING = 16_384  # longer names are cut (memory stays bounded per tensor)
_MAX_OPTION_VECTOR = 64  # longer option vectors are summarised, not copied

# --------------------------------------------------------------------------- enums


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


_BUILTIN_OPS = _enum_names(_schema.BuiltinOperator)
TENSOR_TYPES = _enum_names(_schema.TensorType)
_OPTIONS = _enum_names(_schema.BuiltinOptions)
_OPTIONS2 = _enum_names(_schema.BuiltinOptions2)
QUANT_DETAILS = _enum_names(_schema.QuantizationDetails)
DIM_TYPES = _enum_names(_schema.DimensionType)
CUSTOM_CODE = _schema.BuiltinOperator.CUSTOM
# Option fields whose ints are enums in the schema; shown by name.
_OPTION_ENUMS: dict[str, dict[int, str]] = {
    "FusedActivationFunction": _enum_names(_schema.ActivationFunctionType),
    "Padding": _enum_names(_schema.Padding),
    "WeightsFormat": _enum_names(_schema.FullyConnectedOptionsWeightsFormat),
    "KernelType": _enum_names(_schema.LSTMKernelType),
    "Mode": _enum_names(_schema.MirrorPadMode),
    "Combiner": _enum_names(_schema.CombinerType),
    "QuantizedBiasType": TENSOR_TYPES,
    "OutType": TENSOR_TYPES,
    "OutputType": TENSOR_TYPES,
    "IdxOutType": TENSOR_TYPES,
    "InDataType": TENSOR_TYPES,
    "OutDataType": TENSOR_TYPES,
}


def builtin_op_name(code: int) -> str:
    return _BUILTIN_OPS.get(code, f"UNKNOWN_BUILTIN_{code}")


# ------------------------------------------------------------------ safe access


class Corrupt(Exception):
    """The buffer breaks a structural rule; the reader turns it into TFLiteFormatError."""


Unpack = Callable[[Any, int], tuple[Any, ...]]  # struct.Struct(...).unpack_from
I8: Unpack = struct.Struct("<b").unpack_from
U8: Unpack = struct.Struct("<B").unpack_from
I32: Unpack = struct.Struct("<i").unpack_from
U32: Unpack = struct.Struct("<I").unpack_from
U64: Unpack = struct.Struct("<Q").unpack_from


@lru_cache(maxsize=512)
def vec_struct(fmt: str, n: int) -> struct.Struct:
    return struct.Struct(f"<{n}{fmt}")


_HH = struct.Struct("<HH").unpack_from
Fields = tuple[int, ...]  # absolute position of each table field, 0 when absent


class Buf:
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

    def past_end(self, what: str, pos: int) -> Corrupt:
        return Corrupt(f"{what} at byte {pos} runs past the end of the data ({self.n} bytes)")

    def _spend(self, amount: int, what: str) -> None:
        self.budget -= amount
        if self.budget < 0:
            raise Corrupt(f"{what}: the file reuses the same data far more often than a model can")

    def uoffset(self, pos: int, what: str) -> int:
        if pos < 0 or pos + 4 > self.n:
            raise self.past_end(what, pos)
        target = pos + U32(self.mv, pos)[0]
        if target >= self.n:
            raise Corrupt(f"{what}: offset at byte {pos} points past the end of the data")
        return target

    def table(self, pos: int, what: str) -> Fields:
        n = self.n
        self.tables += 1
        if self.tables > _MAX_TABLES:
            raise Corrupt(f"{what}: more than {_MAX_TABLES} tables")
        if pos < 0 or pos + 4 > n:
            raise self.past_end(what, pos)
        vt = pos - I32(self.mv, pos)[0]
        hit = self.vtables.get(vt)
        if hit is None:
            if vt < 0 or vt + 4 > n:
                raise self.past_end(f"{what} vtable", vt)
            vt_size, obj_size = _HH(self.mv, vt)
            if vt_size < 4 or vt_size & 1 or vt + vt_size > n:
                raise Corrupt(f"{what}: vtable at byte {vt} is invalid (size {vt_size})")
            nf = (vt_size - 4) >> 1
            fields = vec_struct("H", nf).unpack_from(self.mv, vt + 4) if nf else ()
            hit = self.vtables[vt] = (fields, obj_size)
        fields, obj_size = hit
        if pos + obj_size > n:
            raise Corrupt(f"{what}: table at byte {pos} ({obj_size} bytes) runs past the end")
        return tuple([pos + f if f else 0 for f in fields])

    def scalar(self, fa: Fields, i: int, unpack: Unpack, size: int, default: Any, what: str) -> Any:
        p = fa[i] if i < len(fa) else 0
        if not p:
            return default
        if p + size > self.n:
            raise self.past_end(what, p)
        return unpack(self.mv, p)[0]

    def vector(self, fa: Fields, i: int, elem_size: int, what: str) -> tuple[int, int] | None:
        """(start, length) of a vector field, or None when absent."""
        p = fa[i] if i < len(fa) else 0
        if not p:
            return None
        n, mv = self.n, self.mv
        if p + 4 > n:
            raise self.past_end(what, p)
        v = p + U32(mv, p)[0]
        if v + 4 > n:
            raise self.past_end(what, v)
        length = U32(mv, v)[0]
        if length * elem_size > n - v - 4:
            raise Corrupt(f"{what}: vector of {length} elements at byte {v} exceeds the file")
        return v + 4, length

    def ints(self, fa: Fields, i: int, fmt: str, size: int, what: str) -> tuple[int, ...] | None:
        vec = self.vector(fa, i, size, what)
        if vec is None:
            return None
        start, length = vec
        if not length:
            return ()
        self.budget -= length * size
        if self.budget < 0:
            self._spend(0, what)
        return vec_struct(fmt, length).unpack_from(self.mv, start)

    def string(self, fa: Fields, i: int, what: str) -> str | None:
        vec = self.vector(fa, i, 1, what)
        if vec is None:
            return None
        start, length = vec
        length = min(length, _MAX_STRING)
        self._spend(length, what)
        return str(self.mv[start : start + length], "utf-8", "replace")

    def tables_of(self, fa: Fields, i: int, what: str) -> list[Fields]:
        vec = self.vector(fa, i, 4, what)
        if vec is None:
            return []
        start, length = vec
        self._spend(length * 4, what)
        # Offsets are relative to their own slot; the slots lie inside the vector.
        offsets = vec_struct("I", length).unpack_from(self.mv, start)
        positions = [start + 4 * k + off for k, off in enumerate(offsets)]
        repeats = length - len(set(positions))
        if repeats:
            # TensorFlow's MLIR quantizer shares tables between entries. Charge
            # each repeat extra so nested sharing cannot multiply objects past
            # the decode budget (a few bytes turned into millions of objects).
            self._spend(repeats * 64, what)
        table = self.table
        return [table(p, what) for p in positions]


def field_pos(fa: Fields, i: int) -> int:
    """Absolute position of field ``i`` (0 when absent)."""
    return fa[i] if i < len(fa) else 0


class _SafeTable(flatbuffers.table.Table):
    """flatbuffers Table whose reads are bounds-checked, for generated option classes."""

    __slots__ = ()

    def Get(self, flags: Any, off: int) -> Any:  # noqa: N802 - flatbuffers API name
        if off < 0 or off + flags.bytewidth > len(self.Bytes):
            raise Corrupt(f"option field at byte {off} runs past the end of the data")
        return super().Get(flags, off)

    def String(self, off: int) -> bytes:  # noqa: N802
        start = off + self.Get(flatbuffers.number_types.UOffsetTFlags, off)
        length = self.Get(flatbuffers.number_types.UOffsetTFlags, start)
        if start + 4 + length > len(self.Bytes):
            raise Corrupt(f"option string at byte {start} runs past the end of the data")
        length = min(length, _MAX_STRING)
        return bytes(self.Bytes[start + 4 : start + 4 + length])

    def VectorLen(self, off: int) -> int:  # noqa: N802
        off += self.Pos
        start = off + self.Get(flatbuffers.number_types.UOffsetTFlags, off)
        length = self.Get(flatbuffers.number_types.UOffsetTFlags, start)
        if length > len(self.Bytes) - start - 4:
            raise Corrupt(f"option vector at byte {start} is longer than the file")
        return length

    def Union(self, t2: Any, off: int) -> Any:  # noqa: N802
        raise Corrupt("nested tables in options are not followed")


# (name, accessor, as_numpy): as_numpy is False for scalars and strings, else
# the XAsNumpy accessor of a vector (None for vectors of tables).
_OptionField = tuple[str, FunctionType, Any]
# (kind, slot, fmt, size, default) of one field, read off its accessor's code.
_Layout = tuple[str, int, str, int, Any]
# (key, kind, slot, fmt, size, default, unpack, enum names) per options field.
OptionLayout = tuple[str, str, int, str, int, Any, Unpack, dict[int, str] | None]


@cache
def _option_fields(cls: type) -> tuple[_OptionField, ...]:
    """(name, accessor, as_numpy) per field of a generated options class.

    Scalars and strings have ``as_numpy is False``; vectors pass their
    ``XLength`` accessor and ``XAsNumpy`` (None for vectors of tables).
    """
    out: list[_OptionField] = []
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
    out: list[str] = []
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


def _field_layout(fn: FunctionType, length_fn: FunctionType | None) -> _Layout | None:
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
    return ("scalar", slot, fmt, size, None)  # default: see option_layouts


# A table with no fields: every generated accessor returns its schema default.
_EMPTY_TABLE = struct.pack("<HHi", 4, 4, 4)


@cache
def option_layouts(cls: type) -> tuple[OptionLayout, ...] | None:
    """How to decode each field of an options class; None to use its accessors."""
    out: list[OptionLayout] = []
    for name, accessor, as_numpy in _option_fields(cls):
        if as_numpy is False:
            layout = _field_layout(accessor, None)
        else:
            layout = _field_layout(vars(cls)[name], accessor)
        if layout is None:
            return None  # fall back to the generated accessors for this class
        kind, slot, fmt, size, default = layout
        unpack = struct.Struct("<" + fmt).unpack_from  # only scalars use it
        if kind == "scalar":
            obj = cls()
            obj.Init(_EMPTY_TABLE, 4)
            default = accessor(obj)
        out.append((_snake(name), kind, slot, fmt, size, default, unpack, _OPTION_ENUMS.get(name)))
    return tuple(out)


def _read_options(buf: Buf, pos: int, cls: type) -> dict[str, Any]:
    tab = buf.table(pos, "operator options")
    layouts = option_layouts(cls)
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
                raise buf.past_end(key, p)
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
                value = list(vec_struct(fmt, vec[1]).unpack_from(buf.mv, vec[0]))
        result[key] = value
    return result


def _read_options_generated(buf: Buf, pos: int, cls: type) -> dict[str, Any]:
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


def read_operator_options(buf: Buf, op: Fields) -> tuple[str | None, dict[str, Any]]:
    """(options type name, options) of an Operator table: ``builtin_options``
    (slots 3/4), else ``builtin_options_2`` (slots 11/12)."""
    scalar = buf.scalar
    for type_slot, table_slot, names in ((3, 4, _OPTIONS), (11, 12, _OPTIONS2)):
        otype = scalar(op, type_slot, U8, 1, 0, "options type")
        opos = field_pos(op, table_slot)
        if otype and opos:
            options_type = names.get(otype)
            cls = getattr(_schema, options_type, None) if options_type else None
            if cls is None:
                return options_type, {}
            return options_type, _read_options(buf, buf.uoffset(opos, "options"), cls)
    return None, {}
