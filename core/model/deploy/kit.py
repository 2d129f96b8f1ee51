"""Render a deploy kit from a ``KitSpec``: one folder per target (python,
android, ios, cpp, micro) and a README, all text from templates
(``templates/``), every model string through ``escape``."""

from __future__ import annotations

import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from core.model.deploy.escape import c_str, identifier, kotlin_str, md, md_code, py_str, swift_str
from core.model.deploy.micro import MAX_C_ARRAY_BYTES, c_array_lines, resolver_calls
from core.model.deploy.spec import KitSpec, TensorSpec
from core.model.naming import model_stem
from core.units import human_bytes

__all__ = ["TARGET_FILES", "render_kit", "write_zip", "py_literal"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"
TARGET_FILES = {
    "python": ("python/run.py", "python/requirements.txt"),
    "android": ("android/ModelRunner.kt",),
    "ios": ("ios/ModelRunner.swift", "ios/Podfile"),
    "cpp": ("cpp/main.cc", "cpp/BUILD.md"),
    "micro": ("micro/model_data.cc", "micro/model_data.h", "micro/op_resolver.h", "micro/main.cc"),
}
_TEMPLATE_OF = {
    "python/run.py": "run.py.j2",
    "python/requirements.txt": "requirements.txt.j2",
    "android/ModelRunner.kt": "ModelRunner.kt.j2",
    "ios/ModelRunner.swift": "ModelRunner.swift.j2",
    "ios/Podfile": "Podfile.j2",
    "cpp/main.cc": "main.cc.j2",
    "cpp/BUILD.md": "BUILD.md.j2",
    "micro/model_data.h": "model_data.h.j2",
    "micro/op_resolver.h": "op_resolver.h.j2",
    "micro/main.cc": "micro_main.cc.j2",
}


def py_literal(obj: Any) -> str:
    """A Python literal of plain data, strings as ASCII (no name can break out)."""
    if isinstance(obj, str):
        return py_str(obj)
    if isinstance(obj, bool) or obj is None:
        return repr(obj)
    if isinstance(obj, (int, float)):
        return repr(float(obj)) if isinstance(obj, float) else repr(int(obj))
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(py_literal(v) for v in obj) + "]"
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in obj.items()) + "}"
    raise TypeError(type(obj).__name__)


def _f32(x: float) -> str:
    s = str(np.float32(x))
    return s if any(c in s for c in ".eE") else s + ".0"


def _shape_words(t: TensorSpec) -> str:
    dims = [("N" if i in t.dynamic else str(d)) for i, d in enumerate(t.shape)]
    return "[" + ", ".join(dims) + "]" + (" (N: any size)" if t.dynamic else "")


def _quant_words(t: TensorSpec) -> str:
    if not t.quantized:
        return "–"
    return f"scale {_f32(t.scale)}, zero point {t.zero_point}" + (
        " (first channel of per-channel)" if t.per_channel else ""
    )


def _range_words(t: TensorSpec) -> str:
    r = t.value_range
    if r is not None:
        return f"real values {r[0]:.4g} … {r[1]:.4g}"
    if t.dtype.startswith("float"):
        return "real values, scaled as in training"
    if t.dtype.startswith(("int", "uint")):
        return "whole numbers (e.g. token ids or indices)"
    return t.dtype


@cache
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        py=py_str,
        pylit=py_literal,
        kt=kotlin_str,
        swift=swift_str,
        c=c_str,
        kfloat=lambda x: _f32(x) + "f",
        sfloat=_f32,
        cfloat=lambda x: _f32(x) + "f",
        md=md,
        md_code=md_code,
        shape_words=_shape_words,
        quant_words=_quant_words,
        range_words=_range_words,
    )
    return env


def _signature_data(spec: KitSpec) -> dict[str, Any]:
    def t(x: TensorSpec) -> dict[str, Any]:
        return {
            "name": x.name,
            "index": x.index,
            "dtype": x.dtype,
            "shape": list(x.shape),
            "dynamic": list(x.dynamic),
            "scale": x.scale,
            "zero_point": x.zero_point,
            "range": list(x.value_range) if x.value_range else None,
        }

    return {
        s.key: {"inputs": [t(i) for i in s.inputs], "outputs": [t(o) for o in s.outputs]}
        for s in spec.signatures
    }


def _arena_words(spec: KitSpec) -> tuple[int, str]:
    if spec.arena_bytes and spec.probe_arena:
        return spec.arena_bytes, (
            f"kTensorArenaSize is {spec.arena_bytes:,} bytes: the {spec.probe_arena:,} bytes the "
            "TFLite Micro interpreter allocated for this model (measured by TFLite Studio), plus "
            "a margin."
        )
    guess = max(16 << 10, -(-10 * spec.file_size // 1024) * 1024)
    why = f" ({md(spec.micro_error)})" if spec.micro_error else ""
    return guess, (
        f"TFLite Micro could not load the model on the server{why}, so kTensorArenaSize "
        f"({guess:,} bytes, ten times the model) is a guess to tune."
    )


def _context(spec: KitSpec, targets: tuple[str, ...]) -> dict[str, Any]:
    taken: set[str] = set()
    sig_ids = [identifier("sig_" + (s.key or "main"), taken=taken) for s in spec.signatures]
    calls, missing = resolver_calls(spec.ops, spec.custom_ops)
    arena, arena_words = _arena_words(spec)
    default = spec.signatures.index(spec.default)
    return {
        "spec": spec,
        "targets": targets,
        "signatures": _signature_data(spec),
        "sig_ids": sig_ids,
        "default_index": default,
        "sig": spec.default,
        "package": identifier(model_stem(spec.model_name).lower(), prefix="model"),
        "calls": calls,
        "missing": missing,
        "micro_calls": calls,
        "micro_missing": missing,
        "arena": arena,
        "arena_words": arena_words,
        "size_words": f"The file is {human_bytes(spec.file_size)}.",
    }


def _model_data_cc(data: bytes) -> str:
    lines = [
        "// Generated by TFLite Studio: the model as a C array (see README.md).",
        '#include "model_data.h"',
        "",
        "alignas(16) const unsigned char g_model_data[] = {",
        *c_array_lines(data),
        "};",
        f"const unsigned int g_model_data_len = {len(data)};",
        "",
    ]
    return "\n".join(lines)


def render_kit(spec: KitSpec, model: bytes, targets: tuple[str, ...]) -> dict[str, bytes]:
    """Every file of the kit by its path in the zip."""
    env = _env()
    ctx = _context(spec, targets)
    files: dict[str, bytes] = {
        "README.md": env.get_template("README.md.j2").render(**ctx).encode(),
        "model.tflite": model,
    }
    for target in targets:
        for path in TARGET_FILES[target]:
            if path == "micro/model_data.cc":
                if len(model) <= MAX_C_ARRAY_BYTES:
                    files[path] = _model_data_cc(model).encode()
                continue
            files[path] = env.get_template(_TEMPLATE_OF[path]).render(**ctx).encode()
    return files


def write_zip(files: dict[str, bytes], path: str | Path) -> int:
    """Write the kit as a zip (fixed timestamps: the same kit, the same bytes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if name.endswith("run.py") else 0o644) << 16
            z.writestr(info, files[name])
    return Path(path).stat().st_size
