"""The data a task feeds a model: calibration samples (a representative
dataset), evaluation samples (``.npz``/``.npy`` keyed by input name, or a
folder/zip of images), synthetic stand-ins, and the checks that compare the
data the quantization was fitted to with the data it is judged on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.errors import CalibrationError, EvaluateError, Phase, StudioError
from core.model.archive import UnpackLimits, safe_extract
from core.model.inputs import is_mask_name
from core.options import IMAGE_EXTS, CalibrationSource, ConversionOptions
from core.tasks.results import DataSource, Flag, SignatureInput
from core.tasks.synthetic import MASK, synthetic_input
from core.worker.loader import concrete_shape

__all__ = [
    "SYNTHETIC_WARNING",
    "synthetic_arrays",
    "load_arrays",
    "load_images",
    "representative",
    "load_eval_arrays",
    "shape_samples",
    "data_flags",
]

SYNTHETIC_WARNING = (
    "Calibration used random synthetic data, not your data: the int8 ranges are a guess "
    "and accuracy may collapse. Give real samples (a .npz with one array per input, or a "
    "folder/zip of images) for a model you will ship."
)


def synthetic_arrays(
    inputs: list[SignatureInput],
    shapes: dict[str, tuple[int, ...]],
    n: int,
    seed: int,
    bounds: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Random samples per input (``core.tasks.synthetic``: ids within the table
    ``bounds`` names, padding masks for mask-like inputs, uniform [0, 1)
    floats): a stand-in when the person gave no data, always flagged as not
    representative."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays: dict[str, Any] = {}
    for i in inputs:
        shape = (n,) + concrete_shape(shapes[i.name])[1:]
        high = (bounds or {}).get(i.name)
        kind = MASK if is_mask_name(i.name) else "index" if high else "value"
        arrays[i.name] = synthetic_input(shape, i.dtype, rng, high=high, kind=kind)
    return arrays


def load_arrays(path: Path, inputs: list[SignatureInput]) -> dict[str, Any]:
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
                + ", ".join(i.name for i in inputs)
                + ".",
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
        + ", ".join(f"{n}=..." for n in names)
        + ").",
    )


def load_images(
    path: Path,
    inp: SignatureInput,
    shape: tuple[int, ...],
    options: ConversionOptions,
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
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
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
            with Image.open(f) as opened:
                im = opened.convert("L" if c == 1 else "RGB").resize((w, h))
                arr = np.asarray(im, dtype=np.float32).reshape(h, w, c)
        except (UnidentifiedImageError, OSError, ValueError):
            raise CalibrationError(
                f"{f.name} is not a readable image.", "Remove it from the calibration set."
            ) from None
        out.append(arr / 255.0 * (hi - lo) + lo)
    return np.stack(out)


def representative(
    inputs: list[SignatureInput],
    shapes: dict[str, tuple[int, ...]],
    options: ConversionOptions,
    workdir: Path,
    warnings: list[str],
    bounds: Callable[[], dict[str, int]] | None = None,
) -> Callable[[], Iterator[dict[str, Any]]]:
    """The representative dataset: the person's samples, else synthetic ones
    (ids within the tables ``bounds()`` finds)."""

    n = options.calibration_samples
    arrays: dict[str, Any]
    if options.calibration_path:
        path = Path(options.calibration_path)
        if not path.exists():
            raise CalibrationError(
                f"Calibration data {path.name} was not found.", "Check the path and try again."
            )
        if options.calibration_source is CalibrationSource.ARRAYS:
            arrays = load_arrays(path, inputs)
        else:
            if len(inputs) != 1:
                raise CalibrationError(
                    "Images can calibrate only a model with one input.",
                    "Give a .npz with one array per input instead.",
                )
            arrays = {
                inputs[0].name: load_images(
                    path, inputs[0], shapes[inputs[0].name], options, workdir
                )
            }
    else:
        warnings.append(SYNTHETIC_WARNING)
        arrays = synthetic_arrays(inputs, shapes, n, seed=0, bounds=bounds() if bounds else None)
    counts = {k: len(v) for k, v in arrays.items()}
    if len(set(counts.values())) > 1:
        raise CalibrationError(
            f"The calibration arrays have different sample counts: {counts}.",
            "Give every input the same number of samples.",
        )
    total = min(n, next(iter(counts.values())))
    if total == 0:
        raise CalibrationError("The calibration data holds no samples.", "Add samples.")
    batches = [
        {
            i.name: _calibration_sample(i, arrays[i.name][idx : idx + 1], shapes[i.name])
            for i in inputs
        }
        for idx in range(total)
    ]
    if options.calibration_path and total < 50:
        warnings.append(
            f"Only {total} calibration samples: ranges may not cover real inputs; "
            "100 to 500 typical samples are recommended."
        )

    def gen() -> Iterator[dict[str, Any]]:
        yield from batches

    return gen


def _calibration_sample(i: SignatureInput, sample: Any, shape: tuple[int, ...]) -> Any:
    """One calibration sample for input ``i``, in its shape and dtype."""
    import numpy as np

    arr = np.asarray(sample)
    want = concrete_shape(shape)
    if len(want) == arr.ndim and arr.shape[1:] != want[1:] and arr.size == int(np.prod(want)):
        arr = arr.reshape(want)
    if arr.shape[1:] != tuple(want[1:]) and not any(d < 0 for d in shape[1:]):
        raise CalibrationError(
            f"Calibration samples for {i.name!r} have shape {list(arr.shape[1:])}, "
            f"but the input takes {list(want[1:])} per sample.",
            "Reshape the array to (samples, " + ", ".join(str(d) for d in want[1:]) + ").",
        )
    try:
        return arr.astype(i.dtype)
    except (TypeError, ValueError):
        raise CalibrationError(
            f"Calibration samples for {i.name!r} ({arr.dtype}) cannot be cast to {i.dtype}.",
            f"Save them as {i.dtype}.",
        ) from None


def load_eval_arrays(
    path: Path,
    source: CalibrationSource,
    inputs: list[SignatureInput],
    shapes: dict[str, tuple[int, ...]],
    image_range: tuple[float, float],
    max_samples: int,
    workdir: Path,
    what: str,
) -> tuple[dict[str, Any], Any]:
    """Arrays per input (+ labels or None) from a .npz/.npy or images."""
    import numpy as np

    if not path.exists():
        raise EvaluateError(f"The {what} {path.name} was not found.", "Check the path.")
    labels = None
    try:
        if source is CalibrationSource.IMAGES:
            if len(inputs) != 1:
                raise EvaluateError(
                    "Images can be used only for a model with one input.",
                    "Give a .npz with one array per input instead.",
                )
            opts = ConversionOptions(
                calibration_path=str(path),
                calibration_source=CalibrationSource.IMAGES,
                calibration_samples=min(max_samples, 10_000),
                image_range=image_range,
            )
            first = inputs[0]
            # the input's own shape: -1 height/width gets _load_images' clear error
            arrays = {first.name: load_images(path, first, shapes[first.name], opts, workdir)}
        else:
            arrays = load_arrays(path, inputs)
            if path.suffix.lower() == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    if "labels" in z.files:
                        labels = np.asarray(z["labels"]).reshape(-1)
    except CalibrationError as e:
        raise EvaluateError(
            e.message.replace("calibration", what), e.hint, phase=Phase.EVALUATE
        ) from None
    counts = {k: len(v) for k, v in arrays.items()}
    if len(set(counts.values())) > 1:
        raise EvaluateError(
            f"The arrays in {path.name} have different sample counts: {counts}.",
            "Give every input the same number of samples.",
        )
    n = min(next(iter(counts.values())), max_samples)
    if n == 0:
        raise EvaluateError(f"{path.name} holds no samples.", "Add samples.")
    arrays = {k: v[:n] for k, v in arrays.items()}
    if labels is not None:
        labels = labels[:n] if len(labels) >= n else None
    return arrays, labels


def shape_samples(arr: Any, name: str, shape: tuple[int, ...]) -> Any:
    """Give samples the per-sample shape the input takes (reshape when the
    element counts agree)."""
    import numpy as np

    arr = np.asarray(arr)
    want = tuple(shape[1:])
    if not want or any(d < 0 for d in want):
        return arr
    if arr.shape[1:] == want:
        return arr
    if arr.ndim >= 1 and arr[0].size == int(np.prod(want)):
        return arr.reshape((arr.shape[0],) + want)
    raise EvaluateError(
        f"Samples for {name!r} have shape {list(arr.shape[1:])}, but the input takes "
        f"{list(want)} per sample.",
        "Reshape the array to (samples, " + ", ".join(str(d) for d in want) + ").",
    )


def _calibration_flags(
    cal_arrays: dict[str, Any], eval_arrays: dict[str, Any], source: DataSource
) -> list[Flag]:
    """Constant calibration data, evaluation values outside its range, too few samples."""
    import numpy as np

    flags: list[Flag] = []
    for name, cal in cal_arrays.items():
        c = np.asarray(cal)
        if c.dtype.kind not in "fiu" or not c.size:
            continue
        lo, hi = float(c.min()), float(c.max())
        if hi == lo:
            flags.append(
                Flag(
                    "calibration_constant",
                    "error",
                    f"The calibration data for {name!r} is constant (every value is {lo:g}): "
                    "quantization ranges fitted to it cannot represent real inputs, so an "
                    "integer model will be badly wrong. Give a few hundred typical samples.",
                )
            )
            continue
        ev = eval_arrays.get(name)
        if ev is None or source is not DataSource.USER:
            continue
        e = np.asarray(ev, dtype=np.float64)
        span = hi - lo
        outside = float(np.mean((e < lo - 0.05 * span) | (e > hi + 0.05 * span)))
        if outside > 0.01:
            flags.append(
                Flag(
                    "range_mismatch",
                    "warning",
                    f"{outside:.0%} of the evaluation values for {name!r} fall outside the "
                    f"calibration range [{lo:.4g}, {hi:.4g}] (evaluation data spans "
                    f"[{e.min():.4g}, {e.max():.4g}]): integer models clip them. If one set "
                    "is 0..255 and the other 0..1, scale them the same way.",
                )
            )
    if min((len(v) for v in cal_arrays.values()), default=100) < 50:
        flags.append(
            Flag(
                "few_calibration_samples",
                "warning",
                "Fewer than 50 calibration samples: the integer ranges may not cover real "
                "inputs; 100 to 500 typical samples are recommended.",
            )
        )
    return flags


_SOURCE_FLAGS = {
    DataSource.CALIBRATION: Flag(
        "calibration_is_eval",
        "info",
        "No evaluation data was given, so the calibration samples were used: the integer "
        "ranges were fitted to them, so the numbers may be optimistic. Give held-out "
        "data (with `labels`) for a fair check.",
    ),
    DataSource.SYNTHETIC: Flag(
        "synthetic_data",
        "warning",
        "No evaluation or calibration data was given: the models were compared on random "
        "inputs. Agreement on random inputs says little about real accuracy; give "
        "evaluation data (a .npz keyed by input name, with `labels`).",
    ),
}


def data_flags(
    eval_arrays: dict[str, Any],
    cal_arrays: dict[str, Any] | None,
    source: DataSource,
    input_dtypes: dict[str, str],
) -> list[Flag]:
    """Check the data the quantization was fitted to against the data it is
    judged on: constant calibration, ranges that do not overlap (0..255 vs
    0..1), uint8 images fed unscaled to a float input."""
    import numpy as np

    flags = _calibration_flags(cal_arrays, eval_arrays, source) if cal_arrays else []
    for name, arr in eval_arrays.items():
        if np.asarray(arr).dtype == np.uint8 and input_dtypes.get(name, "").startswith("float"):
            flags.append(
                Flag(
                    "uint8_input",
                    "warning",
                    f"The evaluation data for {name!r} is uint8 (0..255) but the model takes "
                    f"{input_dtypes[name]}: the values were passed unscaled. If the model expects "
                    "0..1 or -1..1, scale the data first.",
                )
            )
    if source in _SOURCE_FLAGS:
        flags.append(_SOURCE_FLAGS[source])
    return flags
