"""Rewrite one part of a ``.tflite`` file without touching the rest.

``normalize_op_codes(data)`` fixes the operator codes of files written before
the schema's ``builtin_code`` field existed: they keep the op in the int8
``deprecated_builtin_code`` and leave ``builtin_code`` at 0 (ADD). Readers that
trust ``builtin_code`` alone (the LiteRT quantizer among them) then see every op
as ADD. The fixed operator codes are appended as a new vector at the end of the
file and the model's ``operator_codes`` offset is pointed at it: every other
byte (weights, external buffers at fixed offsets, metadata) stays where it was.

The input is untrusted: it is walked with the bounds-checked ``Buf`` of
``core.model.flatbuffer``; anything wrong is a ``TFLiteFormatError``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import flatbuffers

from core.errors import TFLiteFormatError
from core.model.flatbuffer import I8, I32, Buf, Corrupt, field_pos
from core.model.reader import FILE_IDENTIFIER

__all__ = ["OpCodeFix", "op_code_fixes", "normalize_op_codes", "PLACEHOLDER_FOR_GREATER_OP_CODES"]

PLACEHOLDER_FOR_GREATER_OP_CODES = 127  # schema.fbs: the int8 field's value for codes > 127
_MAX_FILE = (1 << 31) - 1  # FlatBuffers offsets (and the runtime's verifier) stop at 2 GiB
_ALIGN = 16


class OpCodeFix(NamedTuple):
    """One operator code as the file stores it."""

    position: int
    deprecated: int
    builtin: int
    custom: str | None
    version: int

    @property
    def code(self) -> int:
        """The op this code means: the larger of the two fields (the schema's rule)."""
        return max(self.deprecated, self.builtin)

    @property
    def stale(self) -> bool:
        return self.builtin < self.deprecated


def _model_table(buf: Buf) -> tuple[int, tuple[int, ...]]:
    if buf.n < 8 or bytes(buf.mv[4:8]) != FILE_IDENTIFIER:
        raise Corrupt("not a TensorFlow Lite FlatBuffer (no TFL3 identifier)")
    pos = buf.uoffset(0, "root table")
    return pos, buf.table(pos, "model")


def _custom_code(buf: Buf, oc: tuple[int, ...], what: str) -> str | None:
    vec = buf.vector(oc, 1, 1, what)
    if vec is None:
        return None
    start, length = vec
    return bytes(buf.mv[start : start + length]).decode("utf-8", "surrogateescape")


def _read_codes(buf: Buf, model: tuple[int, ...]) -> list[OpCodeFix]:
    out = []
    for k, oc in enumerate(buf.tables_of(model, 1, "operator codes")):
        what = f"operator code {k}"
        deprecated = buf.scalar(oc, 0, I8, 1, 0, what)
        version = buf.scalar(oc, 2, I32, 4, 1, what)
        builtin = buf.scalar(oc, 3, I32, 4, 0, what)
        out.append(OpCodeFix(k, deprecated, builtin, _custom_code(buf, oc, what), version))
    return out


def op_code_fixes(data: bytes | bytearray | memoryview) -> list[OpCodeFix]:
    """Every operator code of the model (``stale`` ones need normalizing)."""
    buf = Buf(memoryview(data), budget=2 * len(data) + 65_536)
    try:
        _, model = _model_table(buf)
        return _read_codes(buf, model)
    except (Corrupt, struct.error) as e:
        raise TFLiteFormatError(
            f"The model's operator codes cannot be read: {e}.",
            "Re-export the model with tf.lite.TFLiteConverter.",
        ) from None


def _codes_blob(codes: list[OpCodeFix]) -> tuple[bytes, int]:
    """The new operator-code vector, built on its own; (bytes, vector position)."""
    b = flatbuffers.Builder(256 + 64 * len(codes))
    customs = [
        b.CreateString(c.custom.encode("utf-8", "surrogateescape"))
        if c.custom is not None
        else None
        for c in codes
    ]
    tables = []
    for c, custom in zip(codes, customs):
        code = c.code
        b.StartObject(4)
        b.PrependInt32Slot(3, code, 0)  # builtin_code
        b.PrependInt32Slot(2, c.version, 1)  # version
        if custom is not None:
            b.PrependUOffsetTRelativeSlot(1, custom, 0)
        b.PrependInt8Slot(0, min(code, PLACEHOLDER_FOR_GREATER_OP_CODES), 0)
        tables.append(b.EndObject())
    b.StartVector(4, len(tables), 4)
    for t in reversed(tables):
        b.PrependUOffsetTRelative(t)
    vec = b.EndVector()
    b.Prep(_ALIGN, 0)  # the blob's end is aligned; it is placed at an aligned end
    blob = bytes(b.Bytes[b.Head() :])  # not finished: no root offset, only the vector
    return blob, len(blob) - vec


def normalize_op_codes(data: bytes | bytearray | memoryview) -> tuple[bytes, int]:
    """The model with every stale operator code fixed, and how many were fixed
    (0: the bytes come back unchanged)."""
    raw = bytes(data)
    buf = Buf(memoryview(raw), budget=2 * len(raw) + 65_536)
    try:
        _, model = _model_table(buf)
        codes = _read_codes(buf, model)
        slot = field_pos(model, 1)
    except (Corrupt, struct.error) as e:
        raise TFLiteFormatError(
            f"The model's operator codes cannot be read: {e}.",
            "Re-export the model with tf.lite.TFLiteConverter.",
        ) from None
    stale = sum(1 for c in codes if c.stale)
    if not stale:
        return raw, 0
    blob, vec_in_blob = _codes_blob(codes)
    pad = -(len(raw) + len(blob)) % _ALIGN
    start = len(raw) + pad
    if start + len(blob) > _MAX_FILE:
        raise TFLiteFormatError(
            "The model is too close to 2 GiB to rewrite its operator codes.",
            "Re-export it with a current converter, which writes the new field itself.",
        )
    out = bytearray(raw)
    out += b"\0" * pad + blob
    struct.pack_into("<I", out, slot, start + vec_in_blob - slot)
    return bytes(out), stale
