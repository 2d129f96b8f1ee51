"""TFLite Micro pieces of a kit: the model as an aligned C array and the op
resolver that registers exactly the model's ops (the ``Add…()`` names are
data: ``data/micro_ops.json``, from TFLite Micro's
``micro_mutable_op_resolver.h``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["micro_ops", "resolver_calls", "c_array_lines", "MAX_C_ARRAY_BYTES"]

_DATA = Path(__file__).resolve().parent / "data" / "micro_ops.json"
MAX_C_ARRAY_BYTES = 64 << 20  # beyond any microcontroller's flash; the kit says so instead
_PER_LINE = 16
_HEX = [f"0x{b:02x}," for b in range(256)]


@cache
def micro_ops() -> dict[str, Any]:
    return json.loads(_DATA.read_text(encoding="utf-8"))


def resolver_calls(ops: tuple[str, ...], custom: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(``Add…`` method per op, in the model's op order; ops TFLite Micro has no kernel for)."""
    table = micro_ops()
    calls, missing = [], []
    for op in ops:
        method = table["builtin"].get(op)
        (calls.append(method) if method else missing.append(op))
    for op in custom:
        method = table["custom"].get(op)
        (calls.append(method) if method else missing.append(op))
    return calls, missing


def c_array_lines(data: bytes) -> list[str]:
    """The bytes as lines of ``0x..,`` (16 per line)."""
    hx = _HEX
    return [
        "  " + " ".join(hx[b] for b in data[i : i + _PER_LINE])
        for i in range(0, len(data), _PER_LINE)
    ]
