"""Worker task ``reference``: TensorFlow runs the original model on the
evaluation inputs (the person's data, else the calibration data, else
synthetic samples, flagged) and keeps inputs and outputs in a ``.npz``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import EvaluateError, StudioError
from core.options import ConversionOptions
from core.tasks.metrics import output_kind
from core.tasks.requests import ReferenceRequest
from core.tasks.results import DataSource, Reference, reference_key
from core.worker.data import data_flags, load_eval_arrays, shape_samples, synthetic_arrays
from core.worker.loader import load_model

__all__ = ["run"]

SYNTHETIC_SAMPLES = 64


def _refuse_tflite(name: str) -> StudioError:
    return EvaluateError(
        f"{name} is a .tflite model; accuracy is measured against an original "
        "SavedModel or Keras model.",
        "Give the SavedModel (zip) or .keras file the .tflite was converted from.",
    )


def run(req: ReferenceRequest, workdir: Path, progress: Callable[..., None]) -> Reference:
    import numpy as np

    t_start = time.perf_counter()
    name = req.display_name or Path(req.model_path).name
    opts = req.options
    max_samples = req.max_samples
    out_npz = Path(req.out_npz)
    with load_model(
        req.model_path,
        name,
        opts,
        req.unpack_limits,
        workdir,
        progress,
        refuse_tflite=_refuse_tflite,
    ) as lm:
        tf = lm.tf
        sm_dir, key, inputs, shapes = lm.saved_model_dir, lm.signature_key, lm.inputs, lm.shapes
        progress("Reading the evaluation data")
        eval_path = req.eval_path
        cal_path = opts.calibration_path
        labels = None
        cal_arrays = None
        if cal_path:
            try:
                cal_arrays, _ = load_eval_arrays(
                    Path(cal_path),
                    opts.calibration_source,
                    inputs,
                    shapes,
                    opts.image_range,
                    opts.calibration_samples,
                    workdir,
                    "calibration data",
                )
            except EvaluateError:
                cal_arrays = None  # the conversion reports unusable calibration data
        if eval_path:
            src = DataSource.USER
            data_name = Path(eval_path).name
            eval_source = ConversionOptions(calibration_path=str(eval_path)).calibration_source
            arrays, labels = load_eval_arrays(
                Path(eval_path),
                eval_source,
                inputs,
                shapes,
                opts.image_range,
                max_samples,
                workdir,
                "evaluation data",
            )
        elif cal_arrays is not None:
            src = DataSource.CALIBRATION
            data_name = Path(cal_path).name
            arrays = {k: v[:max_samples] for k, v in cal_arrays.items()}
        else:
            src = DataSource.SYNTHETIC
            data_name = "random inputs"
            arrays = synthetic_arrays(inputs, shapes, SYNTHETIC_SAMPLES, seed=1)
        dtypes = {i.name: i.dtype for i in inputs}
        flags = data_flags(arrays, cal_arrays, src, dtypes)
        feeds = {}
        for i in inputs:
            arr = shape_samples(arrays[i.name], i.name, shapes[i.name])
            try:
                feeds[i.name] = arr.astype(i.dtype)
            except (TypeError, ValueError):
                raise EvaluateError(
                    f"Samples for {i.name!r} ({arr.dtype}) cannot be cast to {i.dtype}.",
                    f"Save them as {i.dtype}.",
                ) from None
        n = len(next(iter(feeds.values())))
        progress(f"Running the original model on {n} samples")
        try:
            loaded = tf.saved_model.load(str(sm_dir))
            fn = loaded.signatures[key]
        except Exception as e:  # noqa: BLE001  (TF load errors are of many kinds)
            raise EvaluateError(
                f"TensorFlow could not load the original model: {str(e).splitlines()[0][:300]}",
                "Check that the archive holds a complete SavedModel.",
            ) from None
        fixed_batch = max((i.shape[0] for i in inputs if i.shape), default=-1)
        chunk = fixed_batch if fixed_batch and fixed_batch > 0 else 64
        outs: dict[str, list[Any]] = {}
        try:
            for start in range(0, n, chunk):
                batch = {k: tf.constant(v[start : start + chunk]) for k, v in feeds.items()}
                if fixed_batch > 0 and len(next(iter(batch.values()))) != fixed_batch:
                    break  # a fixed batch size: the last partial batch is left out
                res = fn(**batch)
                for k, v in res.items():
                    outs.setdefault(k, []).append(np.asarray(v))
        except Exception as e:  # noqa: BLE001
            raise EvaluateError(
                f"The original model failed on the evaluation data: {str(e).splitlines()[0][:300]}",
                "Check that the data matches the model's inputs (names, shapes, types).",
            ) from None
        out_arrays = {k: np.concatenate(v) for k, v in sorted(outs.items())}
        n = len(next(iter(out_arrays.values())))
        feeds = {k: v[:n] for k, v in feeds.items()}
        if labels is not None:
            labels = labels[:n]
        kinds = {k: output_kind(v, labels, req.task) for k, v in out_arrays.items()}
        blob: dict[str, Any] = {reference_key("in", k): v for k, v in feeds.items()}
        blob.update({reference_key("out", k): v for k, v in out_arrays.items()})
        if labels is not None:
            blob["labels"] = labels
        out_npz.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out_npz, **blob)
        tf_version = tf.__version__
    return Reference(
        npz_path=str(out_npz),
        model_name=name,
        signature_key=key,
        data_source=src,
        data_name=data_name,
        samples=n,
        inputs={i.name: {"dtype": i.dtype, "shape": list(shapes[i.name])} for i in inputs},
        outputs=kinds,
        has_labels=labels is not None,
        flags=tuple(flags),
        tf_version=tf_version,
        seconds=round(time.perf_counter() - t_start, 3),
    )
