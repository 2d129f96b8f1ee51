"""Worker task ``reference``: TensorFlow runs the original model on the
evaluation inputs (the person's data, else the calibration data, else
synthetic samples, flagged) and keeps inputs and outputs in a ``.npz``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import EvaluateError, StudioError
from core.options import ConversionOptions
from core.tasks.metrics import output_kind
from core.tasks.requests import ReferenceRequest
from core.tasks.results import DataSource, Reference, reference_key
from core.worker.data import data_flags, load_eval_arrays, shape_samples, synthetic_arrays
from core.worker.loader import LoadedModel, load_model
from core.worker.messages import error_line

__all__ = ["run", "reference_loaded"]

SYNTHETIC_SAMPLES = 64


def _refuse_tflite(name: str) -> StudioError:
    return EvaluateError(
        f"{name} is a .tflite model; accuracy is measured against an original "
        "SavedModel or Keras model.",
        "Give the SavedModel (zip) or .keras file the .tflite was converted from.",
    )


@dataclass
class _EvalData:
    arrays: dict[str, Any]
    labels: Any
    calibration: dict[str, Any] | None
    source: DataSource
    name: str


def _eval_data(req: ReferenceRequest, lm: LoadedModel, workdir: Path) -> _EvalData:
    """The person's data, else the calibration samples, else synthetic ones."""
    opts = req.options
    cal: dict[str, Any] | None = None
    if opts.calibration_path:
        try:
            cal, _ = load_eval_arrays(
                Path(opts.calibration_path),
                opts.calibration_source,
                lm.inputs,
                lm.shapes,
                opts.image_range,
                opts.calibration_samples,
                workdir,
                "calibration data",
            )
        except EvaluateError:
            cal = None  # the conversion reports unusable calibration data
    if req.eval_path:
        source = ConversionOptions(calibration_path=str(req.eval_path)).calibration_source
        arrays, labels = load_eval_arrays(
            Path(req.eval_path),
            source,
            lm.inputs,
            lm.shapes,
            opts.image_range,
            req.max_samples,
            workdir,
            "evaluation data",
        )
        return _EvalData(arrays, labels, cal, DataSource.USER, Path(req.eval_path).name)
    if cal is not None and opts.calibration_path:
        arrays = {k: v[: req.max_samples] for k, v in cal.items()}
        return _EvalData(
            arrays, None, cal, DataSource.CALIBRATION, Path(opts.calibration_path).name
        )
    arrays = synthetic_arrays(
        lm.inputs, lm.shapes, SYNTHETIC_SAMPLES, seed=1, bounds=lm.table_bounds()
    )
    return _EvalData(arrays, None, None, DataSource.SYNTHETIC, "random inputs")


def _feeds(arrays: dict[str, Any], lm: LoadedModel) -> dict[str, Any]:
    feeds = {}
    for i in lm.inputs:
        arr = shape_samples(arrays[i.name], i.name, lm.shapes[i.name])
        try:
            feeds[i.name] = arr.astype(i.dtype)
        except (TypeError, ValueError):
            raise EvaluateError(
                f"Samples for {i.name!r} ({arr.dtype}) cannot be cast to {i.dtype}.",
                f"Save them as {i.dtype}.",
            ) from None
    return feeds


def _run_original(lm: LoadedModel, feeds: dict[str, Any]) -> dict[str, Any]:
    """The SavedModel's signature on every sample, in batches."""
    import numpy as np

    tf = lm.tf
    try:
        fn = lm.signature_fn()
    except Exception as e:  # noqa: BLE001  (TF load errors are of many kinds)
        raise EvaluateError(
            f"TensorFlow could not load the original model: {error_line(e)}",
            "Check that the archive holds a complete SavedModel.",
        ) from None
    n = len(next(iter(feeds.values())))
    fixed_batch = max((i.shape[0] for i in lm.inputs if i.shape), default=-1)
    chunk = fixed_batch if fixed_batch and fixed_batch > 0 else 64
    outs: dict[str, list[Any]] = {}
    try:
        for start in range(0, n, chunk):
            batch = {k: tf.constant(v[start : start + chunk]) for k, v in feeds.items()}
            if fixed_batch > 0 and len(next(iter(batch.values()))) != fixed_batch:
                break  # a fixed batch size: the last partial batch is left out
            for k, v in fn(**batch).items():
                outs.setdefault(k, []).append(np.asarray(v))
    except Exception as e:  # noqa: BLE001  (the model's own code fails in many ways)
        raise EvaluateError(
            f"The original model failed on the evaluation data: {error_line(e)}",
            "Check that the data matches the model's inputs (names, shapes, types).",
        ) from None
    return {k: np.concatenate(v) for k, v in sorted(outs.items())}


def run(req: ReferenceRequest, workdir: Path, progress: Callable[..., None]) -> Reference:
    t_start = time.perf_counter()
    name = req.display_name or Path(req.model_path).name
    with load_model(
        req.model_path,
        name,
        req.options,
        req.unpack_limits,
        workdir,
        progress,
        refuse_tflite=_refuse_tflite,
    ) as lm:
        return reference_loaded(lm, req, name, workdir, progress, t_start)


def reference_loaded(
    lm: LoadedModel,
    req: ReferenceRequest,
    name: str,
    workdir: Path,
    progress: Callable[..., None],
    t_start: float | None = None,
) -> Reference:
    """The reference of the loaded model (a batch reuses the load)."""
    import numpy as np

    t_start = time.perf_counter() if t_start is None else t_start
    out_npz = Path(req.out_npz)
    progress("Reading the evaluation data")
    data = _eval_data(req, lm, workdir)
    dtypes = {i.name: i.dtype for i in lm.inputs}
    flags = data_flags(data.arrays, data.calibration, data.source, dtypes)
    feeds = _feeds(data.arrays, lm)
    progress(f"Running the original model on {len(next(iter(feeds.values())))} samples")
    out_arrays = _run_original(lm, feeds)
    n = len(next(iter(out_arrays.values())))
    feeds = {k: v[:n] for k, v in feeds.items()}
    labels = data.labels[:n] if data.labels is not None else None
    kinds = {k: output_kind(v, labels, req.task) for k, v in out_arrays.items()}
    blob: dict[str, Any] = {reference_key("in", k): v for k, v in feeds.items()}
    blob.update({reference_key("out", k): v for k, v in out_arrays.items()})
    if labels is not None:
        blob["labels"] = labels
    out_npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out_npz, **blob)
    return Reference(
        npz_path=str(out_npz),
        model_name=name,
        signature_key=lm.signature_key,
        data_source=data.source,
        data_name=data.name,
        samples=n,
        inputs={i.name: {"dtype": i.dtype, "shape": list(lm.shapes[i.name])} for i in lm.inputs},
        outputs=kinds,
        has_labels=labels is not None,
        flags=tuple(flags),
        tf_version=lm.tf.__version__,
        seconds=round(time.perf_counter() - t_start, 3),
    )
