"""Numbers and names in plain words."""

from __future__ import annotations

import re
import time

__all__ = ["human_bytes", "human_seconds", "model_stem", "download_name", "ago"]

_MODEL_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".keras", ".h5", ".hdf5", ".tflite")


def human_bytes(n: int | float | None) -> str:
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


def model_stem(name: str) -> str:
    """``digits_classifier.zip`` -> ``digits_classifier`` (safe for a file name)."""
    base = name.rsplit("/", 1)[-1]
    low = base.lower()
    for suf in _MODEL_SUFFIXES:
        if low.endswith(suf):
            base = base[: -len(suf)]
            break
    base = re.sub(r"[^\w.\-]+", "_", base).strip("._-")
    return base or "model"


def download_name(model_name: str, preset: str | None, what: str) -> str:
    """``digits_classifier-int8.tflite``, ``digits_classifier-int8-report.html``."""
    stem = model_stem(model_name)
    if preset:
        stem = f"{stem}-{preset}"
    if what == "tflite":
        return f"{stem}.tflite"
    return f"{stem}-report.{what}"
