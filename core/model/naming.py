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
    "option_words",
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


# the options besides the preset that change a conversion's result:
# (option, its file-name part, its words); a count where the option is a list
_RESULT_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("select_tf_ops", "selecttf", "Select TF ops"),
    ("allow_custom_ops", "customops", "custom ops"),
    ("keep_float_ops", "keepfloat{n}", "{n} layer{s} in float"),
    ("input_shapes", "fixedshapes", "fixed shapes"),
    ("sparsity", "sparse", "sparse weights"),
)


def _result_options(options: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    o = options or {}
    out = []
    for key, part, words in _RESULT_OPTIONS:
        v = o.get(key)
        if v:
            n = len(v) if isinstance(v, (list, tuple)) else 1
            fill = {"n": n, "s": "s" if n != 1 else ""}
            out.append((part.format(**fill), words.format(**fill)))
    return out


def option_suffix(options: Mapping[str, Any] | None) -> str:
    """The options besides the preset that change a conversion's result, as a
    file-name part: ``selecttf``, ``customops``, ``keepfloat3``, ``fixedshapes``,
    ``sparse`` (joined by ``-``; empty when there are none)."""
    return "-".join(part for part, _ in _result_options(options))


def option_words(options: Mapping[str, Any] | None) -> list[str]:
    """The same options in words ("Select TF ops", "3 layers in float", ...)."""
    return [words for _, words in _result_options(options)]


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
