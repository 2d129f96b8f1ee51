"""Numbers for people, shared by reports, diffs and the pages (no imports:
it sits on the app's start-up path)."""

from __future__ import annotations

__all__ = ["human_bytes", "plural"]


def human_bytes(n: int | float | None) -> str:
    """``1536`` -> ``1.5 KB``; ``900`` -> ``900 bytes``; ``None`` -> ``–``."""
    if n is None:
        return "–"
    n = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(n):,} bytes"
            return f"{n:,.1f} {unit}" if abs(n) < 100 else f"{n:,.0f} {unit}"
        n /= 1024
    return f"{n:,.1f} GB"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "op")`` -> "1 op"; ``plural(3, "op")`` -> "3 ops"."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"
