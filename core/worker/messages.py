"""The one line of a runtime's error message worth showing a person."""

from __future__ import annotations

import re

__all__ = ["error_line"]

_NOISE = (
    "graph execution error",
    "detected at node",
    'file "',
    "traceback",
    "[[",
    "{{function_node",
    "node:",
    "defined at",
)
_TELLING = re.compile(r"\b\w*(Error|Exception)\b|error:|failed|denied|not found", re.IGNORECASE)


def error_line(e: BaseException | str, limit: int = 300) -> str:
    """The most informative line of ``e``: TensorFlow's messages start with
    "Graph execution error:" and bury the cause a few lines down."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.lower().startswith(_NOISE)]
    telling = [ln for ln in useful if _TELLING.search(ln)]
    best = (
        telling
        or useful
        or lines
        or [type(e).__name__ if isinstance(e, BaseException) else "unknown error"]
    )[0]
    return best[:limit]
