"""One way to turn the typed results into JSON data and back.

``to_data(obj)`` walks dataclasses, enums, tuples and paths into plain JSON
types (lists, dicts, strings, numbers). A class may name read-only properties
in ``__derived__``; they are written too (for the reader's convenience) and
ignored when the data is read back. ``from_data(cls, data)`` builds and
validates the typed object with msgspec, so a missing field or a wrong type
is a ``ValueError`` naming the path, never a half-built result.

Kernel: imports nothing of the project.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from typing import Any, TypeVar

import msgspec

__all__ = ["to_data", "from_data", "Serializable", "DataError"]

T = TypeVar("T")


class DataError(ValueError):
    """Data does not fit the type it was read as (the message names the path)."""


def to_data(obj: Any) -> Any:
    """Plain JSON data for a dataclass (nested), enum, tuple, list, dict or path."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for name in getattr(type(obj), "__derived__", ()):
            out[name] = to_data(getattr(obj, name))
        return out
    if isinstance(obj, enum.Enum):
        return to_data(obj.value)
    if isinstance(obj, dict):
        return {str(to_data(k)): to_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_data(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return obj  # json writes NaN/Infinity; callers that need strict JSON map them
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def from_data(cls: type[T], data: Any) -> T:
    """The typed object ``cls`` built from ``data`` (extra keys are ignored)."""
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as e:
        raise DataError(f"{cls.__name__}: {e}") from None


class Serializable:
    """``to_dict``/``from_dict`` through ``to_data``/``from_data``, for dataclasses."""

    __slots__ = ()
    __derived__: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = to_data(self)
        assert isinstance(data, dict)
        return data

    @classmethod
    def from_dict(cls: type[T], data: Any) -> T:
        return from_data(cls, data)
