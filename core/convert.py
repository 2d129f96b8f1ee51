"""SavedModel / Keras -> .tflite. The task half runs only inside the worker.

``convert_model`` is the public call (no TensorFlow in the caller): it runs
``run_convert_task`` in an isolated worker process and returns a typed result.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.archive import ModelKind, UnpackLimits, prepare_model, safe_extract
from core.errors import (
    CalibrationError,
    ConvertError,
    LoadError,
    ModelFormatError,
    OptionsError,
    Phase,
    QuantizeError,
    StudioError,
    UnsupportedOpsError,
)
from core.options import IMAGE_EXTS, CalibrationSource, ConversionOptions, Preset

__all__ = [
    "ConversionResult",
    "SignatureInput",
    "convert_model",
    "parse_converter_error",
    "prepared_converter",
]

SYNTHETIC_WARNING = (
    "Calibration used random synthetic data, not your data: the int8 ranges are a guess "
    "and accuracy may collapse. Give real samples (a .npz with one array per input, or a "
    "folder/zip of images) for a model you will ship."
)


@dataclass(frozen=True)
class SignatureInput:
    name: str
    dtype: str
    shape: tuple[int, ...]  # -1 where dynamic


@dataclass(frozen=True)
class ConversionResult:
    output_path: str
    output_size: int
    output_sha256: str
    seconds: float  # converter time alone, load included
    preset: str
    options: dict[str, Any]
    input_kind: str
    input_name: str
    input_size: int
    signature_key: str
    signature_keys: tuple[str, ...]
    inputs: tuple[SignatureInput, ...]
    tf_version: str
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = [asdict(i) for i in self.inputs]
        d["signature_keys"] = list(self.signature_keys)
        d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConversionResult:
        kw = dict(d)
        kw["inputs"] = tuple(
            SignatureInput(i["name"], i["dtype"], tuple(i["shape"])) for i in d["inputs"]
        )
        kw["signature_keys"] = tuple(d["signature_keys"])
        kw["warnings"] = tuple(d["warnings"])
        return cls(**kw)


# ---------------------------------------------------------------- caller side


def convert_model(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    options: ConversionOptions,
    *,
    workdir: str | os.PathLike[str] | None = None,
    display_name: str | None = None,
    limits: Any = None,
    unpack_limits: UnpackLimits | None = None,
    pool: Any = None,
    on_progress: Callable[[str], None] | None = None,
    cancel: Any = None,
    on_start: Callable[[int], None] | None = None,
) -> ConversionResult:
    """Convert in an isolated worker. ``out_path`` is written only on success."""
    from core.worker import run_isolated, work_folder

    # absolute, not resolved: a job links its upload under the name the person gave
    model = Path(model_path).absolute()
    out = Path(out_path).resolve()
    with work_folder(workdir, "tflite-studio-") as wd:
        partial = wd / "output.tflite.partial"
        opts = options
        if opts.calibration_path:
            opts = ConversionOptions.from_dict(
                {**opts.to_dict(), "calibration_path": str(Path(opts.calibration_path).absolute())}
            )
        ul = unpack_limits or UnpackLimits()
        payload = {
            "model_path": str(model),
            "display_name": display_name or model.name,
            "out_path": str(partial),
            "options": opts.to_dict(),
            "unpack_limits": asdict(ul),
        }
        result = run_isolated(
            "convert",
            payload,
            workdir=wd,
            limits=limits,
            phase=Phase.CONVERT,
            pool=pool,
            on_progress=on_progress,
            cancel=cancel,
            on_start=on_start,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), str(out))
        result["output_path"] = str(out)
        return ConversionResult.from_dict(result)


# ---------------------------------------------------------------- error parsing

_SELECT_RE = re.compile(r"TF Select ops:\s*([^\n]+)")
_CUSTOM_RE = re.compile(r"Custom ops:\s*([^\n]+)")
_NEITHER_RE = re.compile(r"'tf\.([\w.]+)' op is neither a custom op nor a flex op")
_QUANT_WORDS = ("quantiz", "requires all operations to be int8", "not supported for int8")


def _split_ops(text: str) -> list[str]:
    return sorted({o.strip() for o in text.split(",") if o.strip()})


def parse_converter_error(
    message: str,
    options: ConversionOptions,
    input_names: list[str] | None = None,
    kind: ModelKind | None = None,
) -> Exception:
    """Turn the converter's message into an error that names the ops and the fix."""
    select = set()
    custom = set()
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
            phase=Phase.CONVERT,
            details={"select_tf_ops": sorted(select), "custom_ops": sorted(custom),
                     "fix": "select_tf_ops"},
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
            phase=Phase.CONVERT,
            details={"select_tf_ops": [], "custom_ops": ops, "fix": "allow_custom_ops"},
        )
    low = message.lower()
    names = ", ".join(input_names) if input_names else "NAME"
    example = f"{input_names[0]}=1,..." if input_names else "NAME=1,..."
    if "flex delegate" in low or "not supported by this interpreter" in low:
        return CalibrationError(
            "Calibration runs the model, and this server's LiteRT runtime has no Flex "
            "delegate, so a model with Select TF ops cannot be calibrated here.",
            "Use the dynamic or float16 preset, which need no calibration, or replace the "
            "Select TF ops in the model.",
            phase=Phase.CALIBRATE,
        )
    if "tensorlist" in low or "element_shape to be static" in low:
        if kind in (ModelKind.KERAS, ModelKind.H5):
            fix = (f"Fix the batch size with --input-shape {example} (inputs: {names}); "
                   "or enable Select TF ops to keep the TensorFlow loop (needs the Flex "
                   "delegate on the device).")
        else:
            fix = ("Re-export with a fixed batch size (keras.Input(..., batch_size=1), or "
                   "model.export(dir, input_signature=[tf.TensorSpec([1, ...], dtype)])), "
                   "or upload the .keras file and use --input-shape; or enable Select TF "
                   "ops to keep the TensorFlow loop (needs the Flex delegate on the device).")
        return ConvertError(
            "A recurrent layer (LSTM/GRU/RNN loop) needs a fixed batch size to become "
            "TFLite ops: " + _first_error_line(message),
            fix,
            phase=Phase.CONVERT,
            details={"fix": "input_shape" if kind in (ModelKind.KERAS, ModelKind.H5)
                     else "select_tf_ops"},
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
            + _first_error_line(message),
            hint,
            phase=Phase.QUANTIZE,
            details={"op": m.group(1) if m else None},
        )
    return ConvertError(
        "The converter failed: " + _first_error_line(message),
        "Check the model's ops and input shapes; fixing dynamic input dimensions "
        f"(--input-shape {example}) often helps.",
        phase=Phase.CONVERT,
    )


def _first_error_line(message: str) -> str:
    for line in message.splitlines():
        line = line.strip()
        low = line.lower()
        if "error:" in low and "converting" not in low:
            return line.split("error:", 1)[-1].strip()[:400]
    lines = [s.strip() for s in message.splitlines() if s.strip()]
    return (lines[0] if lines else "unknown error")[:400]


# ---------------------------------------------------------------- worker side


def _read_signatures(saved_model_dir: Path) -> dict[str, list[SignatureInput]]:
    """Read signature inputs from saved_model.pb without loading the model."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = saved_model_dir / "saved_model.pb"
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(pb.read_bytes())
    except Exception as e:  # noqa: BLE001  (protobuf's DecodeError and friends)
        raise LoadError(
            f"saved_model.pb cannot be read ({type(e).__name__}).",
            "Export the model again with model.export(dir) or tf.saved_model.save.",
        ) from None
    if not sm.meta_graphs:
        raise LoadError("saved_model.pb holds no graph.", "Export the model again.")
    from tensorflow.python.framework import dtypes

    out: dict[str, list[SignatureInput]] = {}
    for key, sig in sm.meta_graphs[0].signature_def.items():
        if key.startswith("__"):
            continue
        ins = []
        for name, info in sorted(sig.inputs.items()):
            dims = (
                tuple(int(d.size) for d in info.tensor_shape.dim)
                if not info.tensor_shape.unknown_rank
                else ()
            )
            ins.append(SignatureInput(name, dtypes.as_dtype(info.dtype).name, dims))
        out[key] = ins
    return out


def _pick_signature(sigs: dict[str, list[SignatureInput]], wanted: str | None) -> str:
    keys = sorted(sigs)
    if not keys:
        raise LoadError(
            "The SavedModel has no signatures, so there is nothing to convert.",
            "Export it with a signature, e.g. tf.saved_model.save(m, d, signatures=m.f) "
            "or Keras model.export(d).",
        )
    if wanted:
        if wanted not in sigs:
            raise OptionsError(
                f"The model has no signature {wanted!r}.",
                "Choose one of: " + ", ".join(keys) + ".",
            )
        return wanted
    if "serving_default" in sigs:
        return "serving_default"
    if len(keys) == 1:
        return keys[0]
    raise OptionsError(
        "The model has several signatures and none is serving_default: " + ", ".join(keys) + ".",
        "Choose one with --signature KEY (in the app: Advanced options → Signature).",
        details={"signature_keys": keys},
    )


def _fixed_shapes(
    inputs: list[SignatureInput], options: ConversionOptions, warnings: list[str]
) -> dict[str, tuple[int, ...]]:
    names = {i.name for i in inputs}
    given = dict(options.input_shapes)
    for name in given:
        if name not in names:
            raise OptionsError(
                f"--input-shape names {name!r}, which is not an input of this signature.",
                "Inputs are: " + ", ".join(sorted(names)) + ".",
            )
    shapes: dict[str, tuple[int, ...]] = {}
    for i in inputs:
        if i.name in given:
            g = given[i.name]
            if i.shape and len(g) != len(i.shape):
                raise OptionsError(
                    f"Input {i.name!r} has {len(i.shape)} dimensions {list(i.shape)}, "
                    f"but the shape given has {len(g)}.",
                    f"Give {len(i.shape)} numbers, e.g. {i.name}="
                    + ",".join(str(d if d > 0 else 1) for d in i.shape)
                    + ".",
                )
            for have, want in zip(i.shape, g):
                if have > 0 and have != want:
                    raise OptionsError(
                        f"Input {i.name!r} has fixed shape {list(i.shape)}; {list(g)} does "
                        "not match it.",
                        "Only dimensions shown as -1 (dynamic) can be fixed.",
                    )
            shapes[i.name] = g
        else:
            shapes[i.name] = i.shape
            if any(d < 0 for d in i.shape[1:]):
                warnings.append(
                    f"Input {i.name!r} has dynamic dimensions {list(i.shape)}: some targets "
                    "(Edge TPU, microcontrollers, GPU) need static shapes. Fix them with "
                    f"--input-shape {i.name}=" + ",".join(str(max(d, 1)) for d in i.shape) + "."
                )
    return shapes


def _concrete_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d if d > 0 else 1 for d in shape)


def synthetic_arrays(
    inputs: list[SignatureInput], shapes: dict[str, tuple[int, ...]], n: int, seed: int
) -> dict[str, Any]:
    """Random samples per input (uniform [0, 1) floats, small ints): a stand-in
    when the person gave no data, always flagged as not representative."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays: dict[str, Any] = {}
    for i in inputs:
        shape = (n,) + _concrete_shape(shapes[i.name])[1:]
        if i.dtype.startswith(("int", "uint")):
            arrays[i.name] = rng.integers(0, 10, size=shape)
        else:
            arrays[i.name] = rng.random(shape, dtype=np.float32)
    return arrays


def _load_arrays(path: Path, inputs: list[SignatureInput]) -> dict[str, Any]:
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001  (numpy raises many kinds on bad files)
        raise CalibrationError(
            f"{path.name} is not a readable .npz/.npy file ({type(e).__name__}).",
            "Save the samples with numpy.savez(file, **{input_name: array}).",
        ) from None
    if isinstance(data, np.ndarray):
        if len(inputs) != 1:
            raise CalibrationError(
                f"{path.name} holds one array but the model has {len(inputs)} inputs.",
                "Use a .npz with one array per input, keyed by input name: "
                + ", ".join(i.name for i in inputs) + ".",
            )
        return {inputs[0].name: data}
    with data:
        arrays = {k: data[k] for k in data.files}
    names = [i.name for i in inputs]
    if all(n in arrays for n in names):
        return {n: arrays[n] for n in names}
    if len(names) == 1:
        cands = [k for k, v in arrays.items() if k not in ("labels", "y") and v.ndim >= 1]
        if len(cands) == 1:
            return {names[0]: arrays[cands[0]]}
    raise CalibrationError(
        f"{path.name} has arrays {sorted(arrays)} but the model's inputs are {names}.",
        "Key each array by its input name: numpy.savez(file, "
        + ", ".join(f"{n}=..." for n in names) + ").",
    )


def _load_images(
    path: Path, inp: SignatureInput, shape: tuple[int, ...], options: ConversionOptions,
    workdir: Path,
) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if len(shape) != 4 or shape[1] <= 0 or shape[2] <= 0:
        raise CalibrationError(
            f"Images can only calibrate a 4-D image input with known height and width; "
            f"{inp.name!r} has shape {list(inp.shape)}.",
            f"Fix its shape with --input-shape {inp.name}=1,H,W,C, or give a .npz instead.",
        )
    folder = path
    if path.is_file():
        folder = workdir / "calibration-images"
        try:
            safe_extract(path, folder, UnpackLimits(max_total_bytes=2 << 30))
        except StudioError as e:
            raise CalibrationError(
                f"The calibration images archive cannot be used: {e.message}", e.hint
            ) from None
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS
    )
    if not files:
        raise CalibrationError(
            f"No images (.png, .jpg, .bmp, .gif, .webp) found in {path.name}.",
            "Put a few hundred typical input images in the folder or zip.",
        )
    h, w, c = shape[1], shape[2], shape[3] if shape[3] > 0 else 3
    lo, hi = options.image_range
    out = []
    for f in files[: options.calibration_samples]:
        try:
            with Image.open(f) as im:
                im = im.convert("L" if c == 1 else "RGB").resize((w, h))
                arr = np.asarray(im, dtype=np.float32).reshape(h, w, c)
        except (UnidentifiedImageError, OSError, ValueError):
            raise CalibrationError(
                f"{f.name} is not a readable image.", "Remove it from the calibration set."
            ) from None
        out.append(arr / 255.0 * (hi - lo) + lo)
    return np.stack(out)


def _representative(
    inputs: list[SignatureInput],
    shapes: dict[str, tuple[int, ...]],
    options: ConversionOptions,
    workdir: Path,
    warnings: list[str],
) -> Callable[[], Iterator[dict[str, Any]]]:
    import numpy as np

    n = options.calibration_samples
    arrays: dict[str, Any]
    if options.calibration_path:
        path = Path(options.calibration_path)
        if not path.exists():
            raise CalibrationError(
                f"Calibration data {path.name} was not found.", "Check the path and try again."
            )
        if options.calibration_source is CalibrationSource.ARRAYS:
            arrays = _load_arrays(path, inputs)
        else:
            if len(inputs) != 1:
                raise CalibrationError(
                    "Images can calibrate only a model with one input.",
                    "Give a .npz with one array per input instead.",
                )
            arrays = {inputs[0].name: _load_images(path, inputs[0], shapes[inputs[0].name],
                                                   options, workdir)}
    else:
        warnings.append(SYNTHETIC_WARNING)
        arrays = synthetic_arrays(inputs, shapes, n, seed=0)
    counts = {k: len(v) for k, v in arrays.items()}
    if len(set(counts.values())) > 1:
        raise CalibrationError(
            f"The calibration arrays have different sample counts: {counts}.",
            "Give every input the same number of samples.",
        )
    total = min(n, next(iter(counts.values())))
    if total == 0:
        raise CalibrationError("The calibration data holds no samples.", "Add samples.")
    batches: list[dict[str, Any]] = []
    for idx in range(total):
        sample = {}
        for i in inputs:
            arr = np.asarray(arrays[i.name][idx : idx + 1])
            want = _concrete_shape(shapes[i.name])
            if len(want) == arr.ndim + 0 and arr.shape[1:] != want[1:] and arr.size == int(
                np.prod(want)
            ):
                arr = arr.reshape(want)
            if arr.shape[1:] != tuple(want[1:]) and not any(d < 0 for d in shapes[i.name][1:]):
                raise CalibrationError(
                    f"Calibration samples for {i.name!r} have shape {list(arr.shape[1:])}, "
                    f"but the input takes {list(want[1:])} per sample.",
                    "Reshape the array to (samples, "
                    + ", ".join(str(d) for d in want[1:]) + ").",
                )
            try:
                sample[i.name] = arr.astype(i.dtype)
            except (TypeError, ValueError):
                raise CalibrationError(
                    f"Calibration samples for {i.name!r} ({arr.dtype}) cannot be cast to "
                    f"{i.dtype}.",
                    f"Save them as {i.dtype}.",
                ) from None
        batches.append(sample)
    if options.calibration_path and total < 50:
        warnings.append(
            f"Only {total} calibration samples: ranges may not cover real inputs; "
            "100 to 500 typical samples are recommended."
        )

    def gen() -> Iterator[dict[str, Any]]:
        yield from batches

    return gen


def _keras_to_saved_model(
    pm_path: Path, kind: ModelKind, workdir: Path, options: ConversionOptions
) -> Path:
    import keras
    import tensorflow as tf

    try:
        if kind is ModelKind.KERAS:
            model = keras.models.load_model(pm_path, compile=False, safe_mode=True)
        else:
            model = keras.models.load_model(pm_path, compile=False)
    except ValueError as e:
        text = str(e)
        if "Lambda" in text or "safe_mode" in text:
            raise LoadError(
                "The Keras file holds a Lambda layer, which runs arbitrary Python code: "
                "it is refused for safety (safe_mode).",
                "Replace the Lambda layer with a registered custom layer, or export the "
                "model as a SavedModel (model.export(dir)) and upload that zipped.",
            ) from None
        raise LoadError(
            f"Keras could not load {pm_path.name}: {text[:300]}",
            "If the model uses custom layers, export it as a SavedModel with "
            "model.export(dir) and upload that zipped.",
        ) from None
    except (OSError, TypeError, KeyError, AttributeError) as e:
        raise LoadError(
            f"Keras could not load {pm_path.name} ({type(e).__name__}: {str(e)[:200]}).",
            "Save it again with model.save('model.keras'), or upload a zipped SavedModel.",
        ) from None
    out = workdir / "keras-export"
    signature = None
    if options.input_shapes:
        # Re-trace with fixed shapes: recurrent layers then lower to TFLite ops.
        given = dict(options.input_shapes)
        names = [t.name.split(":")[0] for t in model.inputs]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise OptionsError(
                f"--input-shape names {', '.join(unknown)}, not an input of this model.",
                "Inputs are: " + ", ".join(names) + ".",
            )
        signature = [
            tf.TensorSpec(given.get(n, tuple(d or 1 for d in t.shape)), t.dtype, name=n)
            for n, t in zip(names, model.inputs)
        ]
    try:
        model.export(str(out), verbose=False, input_signature=signature)
    except Exception as e:  # noqa: BLE001  (export raises many kinds)
        raise LoadError(
            f"The Keras model could not be exported to a SavedModel: {str(e)[:300]}",
            "Check that the model has been built (called once on an input) and has "
            "a defined input shape.",
        ) from None
    return out


@dataclass
class _Prepared:
    """A configured converter and what was learned on the way (worker side)."""

    converter: Any
    tf: Any
    kind: ModelKind
    source_size: int
    signature_key: str
    signature_keys: tuple[str, ...]
    inputs: list[SignatureInput]
    shapes: dict[str, tuple[int, ...]]
    started: float


@contextlib.contextmanager
def prepared_converter(
    payload: dict[str, Any],
    options: ConversionOptions,
    workdir: Path,
    progress: Callable[..., None],
    warnings: list[str],
) -> Iterator[_Prepared]:
    """Worker side: unpack, load, pick the signature and configure a converter
    for ``options`` (calibration data included). Shared by the conversion and
    by the quantization debugger (``core.quant_debug``), so both see the very
    same converter. The unpacked model lives until the block ends."""
    name = str(payload.get("display_name") or Path(payload["model_path"]).name)
    ul = UnpackLimits(**payload.get("unpack_limits", {}))
    progress("Unpacking the upload")
    with prepare_model(payload["model_path"], workdir, ul, display_name=name) as pm:
        if pm.kind is ModelKind.TFLITE:
            raise ModelFormatError(
                f"{name} is already a .tflite model.",
                "Open it in Inspect (or `tflite-studio inspect`) instead of converting it.",
            )
        progress("Loading TensorFlow")
        import tensorflow as tf

        t0 = time.perf_counter()
        sm_dir = pm.path
        if pm.kind in (ModelKind.KERAS, ModelKind.H5):
            progress("Loading the Keras model (safe mode)")
            sm_dir = _keras_to_saved_model(pm.path, pm.kind, workdir, options)
        progress("Reading signatures")
        sigs = _read_signatures(sm_dir)
        key = _pick_signature(sigs, options.signature_key)
        inputs = sigs[key]
        if set(sigs) - {key, "serve"} and not options.signature_key:
            warnings.append(
                f"The model has {len(sigs)} signatures; converted {key!r}. "
                "Choose another with --signature."
            )
        shapes = _fixed_shapes(inputs, options, warnings)
        retrace = bool(options.input_shapes) and pm.kind is ModelKind.SAVED_MODEL
        progress(f"Converting signature {key!r}")
        try:
            if retrace:
                loaded = tf.saved_model.load(str(sm_dir))
                fn = loaded.signatures[key]
                names = [i.name for i in inputs]
                specs = [
                    tf.TensorSpec(shapes[i.name], tf.as_dtype(i.dtype), name=i.name)
                    for i in inputs
                ]

                def call(*args: Any) -> Any:
                    return fn(**dict(zip(names, args)))

                cf = tf.function(call, input_signature=specs).get_concrete_function()
                converter = tf.lite.TFLiteConverter.from_concrete_functions([cf], loaded)
            else:
                converter = tf.lite.TFLiteConverter.from_saved_model(
                    str(sm_dir), signature_keys=[key]
                )
        except Exception as e:  # noqa: BLE001  (TF load errors are of many kinds)
            raise LoadError(
                f"TensorFlow could not load the SavedModel: {str(e).splitlines()[0][:300]}",
                "Check that the archive holds a complete SavedModel (saved_model.pb and "
                "variables/) exported by TensorFlow 2.",
            ) from None
        _configure(converter, options, tf)
        if options.preset.needs_calibration:
            progress("Preparing calibration data")
            converter.representative_dataset = _representative(
                inputs, shapes, options, workdir, warnings
            )
        yield _Prepared(
            converter=converter,
            tf=tf,
            kind=pm.kind,
            source_size=pm.source_size,
            signature_key=key,
            signature_keys=tuple(sorted(sigs)),
            inputs=inputs,
            shapes=shapes,
            started=t0,
        )


def run_convert_task(
    payload: dict[str, Any], workdir: Path, progress: Callable[..., None]
) -> dict[str, Any]:
    """Worker side: unpack, load, convert, write. One conversion per process."""
    options = ConversionOptions.from_dict(payload["options"])
    out_path = Path(payload["out_path"])
    name = str(payload.get("display_name") or Path(payload["model_path"]).name)
    warnings: list[str] = []
    with prepared_converter(payload, options, workdir, progress, warnings) as p:
        if options.select_tf_ops:
            warnings.append(
                "Select TF ops are enabled: if the model uses any, the app on the device "
                "needs the Flex delegate (tensorflow-lite-select-tf-ops), which adds "
                "several MB to the binary."
            )
        progress(
            "Converting and calibrating" if options.preset.needs_calibration else "Converting"
        )
        if options.keep_float_ops:
            blob = _convert_keeping_float(p.converter, options, warnings)
        else:
            blob = _convert_plain(p, options, progress)
        seconds = time.perf_counter() - p.started
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
        input_kind=p.kind.value,
        input_name=name,
        input_size=p.source_size,
        signature_key=p.signature_key,
        signature_keys=p.signature_keys,
        inputs=tuple(SignatureInput(i.name, i.dtype, p.shapes[i.name]) for i in p.inputs),
        tf_version=p.tf.__version__,
        warnings=tuple(warnings),
    ).to_dict()


def _convert_plain(p: Any, options: ConversionOptions, progress: Callable[..., None]) -> bytes:
    names = [i.name for i in p.inputs]
    try:
        return bytes(p.converter.convert())
    except Exception as e:  # noqa: BLE001  (ConverterError and friends)
        if not (options.select_tf_ops and "TensorList" in str(e)):
            raise parse_converter_error(str(e), options, names, p.kind) from None
    # The converter's own advice for recurrent loops: keep TensorList ops as Flex ops.
    progress("Retrying with TensorList ops kept as Select TF ops")
    p.converter._experimental_lower_tensor_list_ops = False
    try:
        return bytes(p.converter.convert())
    except Exception as e:  # noqa: BLE001
        raise parse_converter_error(str(e), options, names, p.kind) from None


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
    except Exception as e:  # noqa: BLE001
        raise QuantizeError(
            "Quantization with layers kept in float failed: " + _first_error_line(str(e)),
            "Keep fewer layers in float, or use the int8-float-io preset without them.",
            phase=Phase.QUANTIZE,
        ) from None
    _check_kept_float(bytes(blob), options.keep_float_ops, warnings)
    return bytes(blob)


def _check_kept_float(blob: bytes, names: tuple[str, ...], warnings: list[str]) -> None:
    """Warn about layers that are not float in the result (name not found, or
    the quantizer kept them integer anyway)."""
    try:
        from ai_edge_litert.schema_py_generated import TensorType
        from ai_edge_litert.tools.flatbuffer_utils import read_model_from_bytearray

        model = read_model_from_bytearray(bytearray(blob))
        found = {}
        for sg in model.subgraphs:
            for t in sg.tensors:
                name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else t.name
                found[name] = t.type
    except Exception:  # noqa: BLE001  (a warning only; the model was written by TF)
        return
    missing = [n for n in names if n not in found]
    integer = [n for n in names if n in found and found[n] != TensorType.FLOAT32]
    if missing:
        warnings.append(
            f"{len(missing)} of the {len(names)} layers to keep in float were not found in "
            "the model and stay quantized: " + ", ".join(m[:80] for m in missing[:5])
            + ("…" if len(missing) > 5 else "") + ". Use the names from the per-layer "
            "error table."
        )
    if integer:
        warnings.append(
            f"{len(integer)} of the layers to keep in float are still integer in the result "
            "(the quantizer could not leave them in float): "
            + ", ".join(m[:80] for m in integer[:5]) + "."
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
