"""Worker task ``convert``: SavedModel / Keras -> ``.tflite`` with the
preset's optimizations. One conversion per process: the converter leaks memory
across calls and can abort its process, so a fresh worker runs each one.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import LoadError, ModelFormatError, Phase, QuantizeError, StudioError
from core.model.archive import UnpackLimits
from core.options import ConversionOptions, Preset
from core.tasks.requests import ConvertRequest
from core.tasks.results import ConversionResult, SignatureInput
from core.worker.convert_errors import first_error_line, parse_converter_error
from core.worker.data import representative
from core.worker.loader import LoadedModel, load_model, suggested_shapes
from core.worker.messages import error_line

__all__ = [
    "run",
    "prepared_converter",
    "PreparedConverter",
    "make_converter",
    "convert_loaded",
    "refuse_tflite",
]


def refuse_tflite(name: str) -> StudioError:
    return ModelFormatError(
        f"{name} is already a .tflite model.",
        "Open it in Inspect (or `tflite-studio inspect`) instead of converting it.",
    )


@dataclass
class PreparedConverter:
    """A configured converter and the loaded model it came from."""

    converter: Any
    model: LoadedModel

    @property
    def tf(self) -> Any:
        return self.model.tf


@contextlib.contextmanager
def prepared_converter(
    model_path: str,
    display_name: str,
    options: ConversionOptions,
    unpack_limits: UnpackLimits,
    workdir: Path,
    progress: Callable[..., None],
) -> Iterator[PreparedConverter]:
    """Load the model and configure a converter for ``options`` (calibration
    data included). Shared by the conversion and by the quantization debugger
    (``core.worker.layers``), so both see the very same converter. Warnings go
    to ``model.warnings``."""
    with load_model(
        model_path,
        display_name,
        options,
        unpack_limits,
        workdir,
        progress,
        refuse_tflite=refuse_tflite,
    ) as lm:
        yield PreparedConverter(make_converter(lm, options, workdir, progress, lm.warnings), lm)


def make_converter(
    lm: LoadedModel,
    options: ConversionOptions,
    workdir: Path,
    progress: Callable[..., None],
    warnings: list[str],
) -> Any:
    """A converter for the loaded model, configured for ``options``; one per
    conversion (a batch converts the same loaded model several times)."""
    tf = lm.tf
    progress(f"Converting signature {lm.signature_key!r}")
    try:
        if options.input_shapes and lm.kind.value == "saved_model":
            converter = _retraced_converter(tf, lm)
        else:
            converter = tf.lite.TFLiteConverter.from_saved_model(
                str(lm.saved_model_dir), signature_keys=[lm.signature_key]
            )
    except StudioError:
        raise
    except Exception as e:  # noqa: BLE001  (TF load errors are of many kinds)
        raise LoadError(
            f"TensorFlow could not load the SavedModel: {error_line(e)}",
            "Check that the archive holds a complete SavedModel (saved_model.pb and "
            "variables/) exported by TensorFlow 2.",
        ) from None
    _configure(converter, options, tf)
    if options.preset.needs_calibration:
        progress("Preparing calibration data")
        converter.representative_dataset = representative(
            lm.inputs, lm.shapes, options, workdir, warnings, bounds=lm.table_bounds
        )
    return converter


def _retraced_converter(tf: Any, lm: LoadedModel) -> Any:
    """A SavedModel signature traced again with the fixed input shapes."""
    loaded = tf.saved_model.load(str(lm.saved_model_dir))
    fn = loaded.signatures[lm.signature_key]
    names = lm.input_names
    specs = [tf.TensorSpec(lm.shapes[i.name], tf.as_dtype(i.dtype), name=i.name) for i in lm.inputs]

    def call(*args: Any) -> Any:
        return fn(**dict(zip(names, args)))

    cf = tf.function(call, input_signature=specs).get_concrete_function()
    return tf.lite.TFLiteConverter.from_concrete_functions([cf], loaded)


def run(req: ConvertRequest, workdir: Path, progress: Callable[..., None]) -> ConversionResult:
    """Unpack, load, convert, write ``req.out_path``."""
    name = req.display_name or Path(req.model_path).name
    with load_model(
        req.model_path,
        name,
        req.options,
        req.unpack_limits,
        workdir,
        progress,
        refuse_tflite=refuse_tflite,
    ) as lm:
        return convert_loaded(lm, name, req.options, Path(req.out_path), workdir, progress)


def convert_loaded(
    lm: LoadedModel,
    name: str,
    options: ConversionOptions,
    out_path: Path,
    workdir: Path,
    progress: Callable[..., None],
) -> ConversionResult:
    """Convert the loaded model with ``options`` and write ``out_path``."""
    import time

    started = time.perf_counter()
    warnings = list(lm.warnings)
    converter = make_converter(lm, options, workdir, progress, warnings)
    if options.select_tf_ops:
        warnings.append(
            "Select TF ops are enabled: if the model uses any, the app on the device "
            "needs the Flex delegate (tensorflow-lite-select-tf-ops), which adds "
            "several MB to the binary."
        )
    progress("Converting and calibrating" if options.preset.needs_calibration else "Converting")
    p = PreparedConverter(converter, lm)
    if options.keep_float_ops:
        blob = _convert_keeping_float(converter, options, warnings)
    else:
        blob = _convert_plain(p, options, progress)
    seconds = time.perf_counter() - started
    progress("Writing the .tflite file")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(blob)
    return ConversionResult(
        output_path=str(out_path),
        output_size=len(blob),
        output_sha256=hashlib.sha256(blob).hexdigest(),
        seconds=round(seconds, 4),
        preset=options.preset.value,
        options=options.to_dict(),
        input_kind=lm.kind.value,
        input_name=name,
        input_size=lm.source_size,
        signature_key=lm.signature_key,
        signature_keys=lm.signature_keys,
        inputs=tuple(SignatureInput(i.name, i.dtype, lm.shapes[i.name]) for i in lm.inputs),
        tf_version=lm.tf.__version__,
        warnings=tuple(dict.fromkeys(warnings)),
        suggested_shapes=suggested_shapes(lm.inputs, dict(options.input_shapes)),
    )


def _convert_plain(
    p: PreparedConverter, options: ConversionOptions, progress: Callable[..., None]
) -> bytes:
    names, kind = p.model.input_names, p.model.kind
    try:
        return bytes(p.converter.convert())
    except Exception as e:  # noqa: BLE001  (ConverterError and friends)
        if not (options.select_tf_ops and "TensorList" in str(e)):
            raise parse_converter_error(str(e), options, names, kind) from None
    # The converter's own advice for recurrent loops: keep TensorList ops as Flex ops.
    progress("Retrying with TensorList ops kept as Select TF ops")
    p.converter._experimental_lower_tensor_list_ops = False
    try:
        return bytes(p.converter.convert())
    except Exception as e:  # noqa: BLE001  (ConverterError and friends)
        raise parse_converter_error(str(e), options, names, kind) from None


def _convert_keeping_float(
    converter: Any, options: ConversionOptions, warnings: list[str]
) -> bytes:
    """Full-integer quantization with the layers named in ``keep_float_ops``
    left in float: calibrate only, then run the MLIR quantizer with those nodes
    denylisted (what ``QuantizationDebugger.get_nondebug_quantized_model`` does
    with ``QuantizationDebugOptions(denylisted_nodes=...)``)."""
    from tensorflow.lite.python.convert import mlir_quantize

    converter._experimental_calibrate_only = True
    try:
        calibrated = converter.convert()
    except Exception as e:  # noqa: BLE001  (ConverterError and friends)
        raise parse_converter_error(str(e), options) from None
    try:
        blob = mlir_quantize(
            calibrated,
            disable_per_channel=bool(converter._experimental_disable_per_channel),
            fully_quantize=False,
            denylisted_nodes=list(options.keep_float_ops),
        )
    except Exception as e:  # noqa: BLE001  (the MLIR quantizer raises many kinds)
        raise QuantizeError(
            "Quantization with layers kept in float failed: " + first_error_line(str(e)),
            "Keep fewer layers in float, or use the int8-float-io preset without them.",
            phase=Phase.QUANTIZE,
        ) from None
    _check_kept_float(bytes(blob), options.keep_float_ops, warnings)
    return bytes(blob)


def _check_kept_float(blob: bytes, names: tuple[str, ...], warnings: list[str]) -> None:
    """Warn about layers that are not float in the result (name not found, or
    the quantizer kept them integer anyway)."""
    from core.errors import TFLiteFormatError
    from core.model.reader import read_model

    try:
        found = {t.name: t.dtype for t in read_model(blob, check_zeros=False).tensors}
    except TFLiteFormatError:  # a warning only; the model was written by TF
        return
    missing = [n for n in names if n not in found]
    integer = [n for n in names if n in found and found[n] != "FLOAT32"]
    if missing:
        warnings.append(
            f"{len(missing)} of the {len(names)} layers to keep in float were not found in "
            "the model and stay quantized: "
            + ", ".join(m[:80] for m in missing[:5])
            + ("…" if len(missing) > 5 else "")
            + ". Use the names from the per-layer "
            "error table."
        )
    if integer:
        warnings.append(
            f"{len(integer)} of the layers to keep in float are still integer in the result "
            "(the quantizer could not leave them in float): "
            + ", ".join(m[:80] for m in integer[:5])
            + "."
        )


def _configure(converter: Any, options: ConversionOptions, tf: Any) -> None:
    ops = tf.lite.OpsSet
    p = options.preset
    opt = tf.lite.Optimize
    if p is not Preset.FLOAT32:
        converter.optimizations = [opt.DEFAULT]
    if options.sparsity:
        converter.optimizations = list(converter.optimizations) + [opt.EXPERIMENTAL_SPARSITY]
    if p is Preset.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    supported = [ops.TFLITE_BUILTINS]
    if p is Preset.INT8:
        supported = [ops.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif p is Preset.INT16X8:
        supported = [ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if options.select_tf_ops:
        supported.append(ops.SELECT_TF_OPS)
    converter.target_spec.supported_ops = supported
    converter.allow_custom_ops = options.allow_custom_ops
