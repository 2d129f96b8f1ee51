"""Naming rules for files: the download name of every artifact (app, API,
CLI), an upload's safe base name, and short layer names for charts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "model_stem",
    "download_name",
    "option_suffix",
    "safe_model_name",
    "short_layer_name",
]

_MODEL_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip", ".keras", ".h5", ".hdf5", ".tflite")


def model_stem(name: str) -> str:
    """``digits_classifier.zip`` -> ``digits_classifier`` (safe for a file name)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for suf in _MODEL_SUFFIXES:
        if base.lower().endswith(suf):
            base = base[: -len(suf)]
            break
    return re.sub(r"[^\w.\-]+", "_", base).strip("._-")[:80] or "model"


def option_suffix(options: Mapping[str, Any] | None) -> str:
    """The options besides the preset that change a conversion's result, as a
    file-name part: ``selecttf``, ``customops``, ``keepfloat3``, ``fixedshapes``,
    ``sparse`` (joined by ``-``; empty when there are none)."""
    o = options or {}
    parts = []
    if o.get("select_tf_ops"):
        parts.append("selecttf")
    if o.get("allow_custom_ops"):
        parts.append("customops")
    if o.get("keep_float_ops"):
        parts.append(f"keepfloat{len(o['keep_float_ops'])}")
    if o.get("input_shapes"):
        parts.append("fixedshapes")
    if o.get("sparsity"):
        parts.append("sparse")
    return "-".join(parts)


def download_name(
    model_name: str, preset: str | None, what: str, options: Mapping[str, Any] | None = None
) -> str:
    """``digits_classifier-int8.tflite``, ``digits_classifier-int8-report.html``,
    ``digits_classifier-dynamic-selecttf.tflite``: the one naming rule for every
    download (app, API, CLI). ``options`` (a ``ConversionOptions`` dict) adds
    the options that change the result (``option_suffix``)."""
    extra = option_suffix(options)
    stem = (
        model_stem(model_name) + (f"-{preset}" if preset else "") + (f"-{extra}" if extra else "")
    )
    return f"{stem}.tflite" if what == "tflite" else f"{stem}-report.{what}"


def safe_model_name(name: str) -> str:
    """The upload's base name, safe as a file name: no folders, no ``..``,
    printable, at most 120 characters, extension (``.tar.gz`` too) kept."""
    base = str(name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*').strip()
    if base.strip(".") == "":
        return "model"
    if len(base) > 120:
        ext = "".join(Path(base).suffixes[-2:])[-20:]
        base = base[: 120 - len(ext)] + ext
    return base


def short_layer_name(name: str, n: int = 48) -> str:
    """``model/block_3/conv/Conv2D;model/block_3/bn/...`` -> ``block_3/conv/Conv2D``
    (the first of ``a;b;c`` names, without the model's own prefix)."""
    first = (name or "").split(";", 1)[0]
    parts = [p for p in first.split("/") if p]
    if len(parts) > 2:
        parts = parts[1:]
    s = "/".join(parts) or "(unnamed)"
    return s if len(s) <= n else "…" + s[-(n - 1) :]
