"""Numbers and names in plain words."""

from __future__ import annotations

import time

from core.model.naming import download_name, model_stem
from core.units import human_bytes

__all__ = ["human_bytes", "human_seconds", "model_stem", "download_name", "ago"]


def human_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 90:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s"


def ago(ts: float | None) -> str:
    if not ts:
        return "–"
    d = max(0.0, time.time() - ts)
    if d < 60:
        return f"{int(d)} s ago"
    if d < 3600:
        return f"{int(d // 60)} min ago"
    if d < 86400:
        return f"{int(d // 3600)} h ago"
    return f"{int(d // 86400)} days ago"
