"""The converter's messages in plain words: which ops it rejected and the
switch that fixes them (Select TF ops, custom ops), recurrent loops that need a
fixed batch, ops a preset cannot quantize."""

from __future__ import annotations

import re

from core.errors import (
    CalibrationError,
    ConvertError,
    QuantizeError,
    StudioError,
    UnsupportedOpsError,
)
from core.model.archive import ModelKind
from core.model.runtime_words import explain_runtime_error
from core.options import ConversionOptions, Preset

__all__ = ["parse_converter_error", "first_error_line"]

_SELECT_RE = re.compile(r"TF Select ops:\s*([^\n]+)")
_CUSTOM_RE = re.compile(r"Custom ops:\s*([^\n]+)")
_NEITHER_RE = re.compile(r"'tf\.([\w.]+)' op is neither a custom op nor a flex op")
_CALIBRATION_RUN = re.compile(r"failed to invoke|out of bounds|is not in \[0,", re.I)
_QUANT_WORDS = ("quantiz", "requires all operations to be int8", "not supported for int8")


def _split_ops(text: str) -> list[str]:
    return sorted({o.strip() for o in text.split(",") if o.strip()})


def _unsupported_ops(message: str, options: ConversionOptions) -> StudioError | None:
    select: set[str] = set()
    custom: set[str] = set()
    for m in _SELECT_RE.finditer(message):
        select.update(_split_ops(m.group(1)))
    for m in _CUSTOM_RE.finditer(message):
        custom.update(_split_ops(m.group(1)))
    neither = set(_NEITHER_RE.findall(message))
    if neither and not select and not custom:
        # TensorFlow ops with no builtin: Select TF ops has kernels for most of them.
        select.update(neither)
    if select and not options.select_tf_ops:
        return UnsupportedOpsError(
            "The TFLite builtin ops cannot express these TensorFlow ops: "
            + ", ".join(sorted(select))
            + ".",
            "Enable Select TF ops (--select-tf-ops) to run them with TensorFlow kernels; "
            "the app on the device then needs the Flex delegate, which adds several MB "
            "to the binary. Or change the model to use ops TFLite has builtins for.",
            details={
                "select_tf_ops": sorted(select),
                "custom_ops": sorted(custom),
                "fix": "select_tf_ops",
            },
        )
    if custom or (select and options.select_tf_ops):
        ops = sorted(custom or select)
        return UnsupportedOpsError(
            "These ops have neither a TFLite builtin nor a Select TF kernel: "
            + ", ".join(ops)
            + ".",
            "Allow custom ops (--allow-custom-ops) to keep them as custom ops; the "
            "runtime on the device then needs your own implementation of each, "
            "registered with the interpreter. Otherwise rewrite that part of the model.",
            details={"select_tf_ops": [], "custom_ops": ops, "fix": "allow_custom_ops"},
        )
    return None


def _recurrent(message: str, kind: ModelKind | None, names: str, example: str) -> StudioError:
    keras = kind in (ModelKind.KERAS, ModelKind.H5)
    if keras:
        fix = (
            f"Fix the batch size with --input-shape {example} (inputs: {names}); "
            "or enable Select TF ops to keep the TensorFlow loop (needs the Flex "
            "delegate on the device)."
        )
    else:
        fix = (
            "Re-export with a fixed batch size (keras.Input(..., batch_size=1), or "
            "model.export(dir, input_signature=[tf.TensorSpec([1, ...], dtype)])), "
            "or upload the .keras file and use --input-shape; or enable Select TF "
            "ops to keep the TensorFlow loop (needs the Flex delegate on the device)."
        )
    return ConvertError(
        "A recurrent layer (LSTM/GRU/RNN loop) needs a fixed batch size to become "
        "TFLite ops: " + first_error_line(message),
        fix,
        details={"fix": "input_shape" if keras else "select_tf_ops"},
    )


def parse_converter_error(
    message: str,
    options: ConversionOptions,
    input_names: list[str] | None = None,
    kind: ModelKind | None = None,
) -> StudioError:
    """Turn the converter's message into an error that names the ops and the fix."""
    ops = _unsupported_ops(message, options)
    if ops is not None:
        return ops
    low = message.lower()
    names = ", ".join(input_names) if input_names else "NAME"
    example = f"{input_names[0]}=1,..." if input_names else "NAME=1,..."
    if "flex delegate" in low or "not supported by this interpreter" in low:
        return CalibrationError(
            "Calibration runs the model, and this server's LiteRT runtime has no Flex "
            "delegate, so a model with Select TF ops cannot be calibrated here.",
            "Use the dynamic or float16 preset, which need no calibration, or replace the "
            "Select TF ops in the model.",
        )
    if "tensorlist" in low or "element_shape to be static" in low:
        return _recurrent(message, kind, names, example)
    if options.preset.needs_calibration and _CALIBRATION_RUN.search(message):
        said = first_error_line(message)
        words = explain_runtime_error(said)
        return CalibrationError(
            f"Calibration runs the model on the calibration samples, and LiteRT failed: "
            f"{words.cause} (LiteRT said: {said})",
            words.fix
            if options.calibration_path
            else "Give real calibration samples (a .npz with one array per input).",
            details={"reason": words.kind, "fix": "calibration_data"},
        )
    m = re.search(r"not yet supported for op: '([^']+)'", message)
    if m or (options.preset.needs_calibration and any(w in low for w in _QUANT_WORDS)):
        op = f" for op {m.group(1)}" if m else ""
        hint = (
            "Try the int8-float-io preset, which keeps ops without int8 kernels in float."
            if options.preset is Preset.INT8
            else "Try int8-float-io or dynamic; this preset has no kernel for that op."
        )
        return QuantizeError(
            f"The {options.preset.value} preset cannot quantize this model{op}: "
            + first_error_line(message),
            hint,
            details={"op": m.group(1) if m else None},
        )
    return ConvertError(
        "The converter failed: " + first_error_line(message),
        "Check the model's ops and input shapes; fixing dynamic input dimensions "
        f"(--input-shape {example}) often helps.",
        details={"fix": "input_shape"},
    )


def first_error_line(message: str) -> str:
    for line in message.splitlines():
        line = line.strip()
        low = line.lower()
        if "error:" in low and "converting" not in low:
            return line.split("error:", 1)[-1].strip()[:400]
    lines = [s.strip() for s in message.splitlines() if s.strip()]
    return (lines[0] if lines else "unknown error")[:400]
