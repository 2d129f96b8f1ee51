"""Worker task ``optimize``: LiteRT's quantizer (``litert-quantizer``) on a
float ``.tflite``, in the sandbox like every model task. No TensorFlow.

1. read the file; refuse one that is already quantized;
2. normalize old operator codes (``core.model.writer``), else the quantizer
   reads every op as ADD and returns the model unchanged;
3. check a custom recipe's scopes against the model's layers;
4. calibrate (static recipes) on the person's data, else on random data, said so;
5. quantize, and refuse a result that is no smaller or quantizes nothing;
6. the quantizer's own tensor-by-tensor comparison (MSE, SNR, cosine), and our
   evaluation of the optimized file against the float one on the same inputs
   (``core.worker.run_tflite.evaluate_file``: the run-backed verdict rules).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import EvaluateError, QuantizeError, RecipeError, StudioError
from core.model.info import ModelInfo
from core.model.reader import read_model
from core.model.writer import normalize_op_codes
from core.options import ConversionOptions
from core.tasks.metrics import dequantize_output, output_kind, quantize_input
from core.tasks.optimize import OptimizeResult
from core.tasks.requests import OptimizeRequest, TfliteEvalRequest
from core.tasks.results import DataSource, Flag, Reference, SignatureInput, reference_key
from core.worker.data import SYNTHETIC_WARNING, load_eval_arrays, shape_samples, synthetic_arrays
from core.worker.messages import error_line
from core.worker.optimize_checks import (
    check_result,
    check_scopes,
    comparison_rows,
    kept_float,
    kept_float_words,
    refuse_quantized,
    signature_of,
)
from core.worker.run_tflite import evaluate_file, open_runner
from core.worker.runtime import runtime_blocker

__all__ = ["run", "quantize_bytes"]

Progress = Callable[..., None]


class _Data:
    """The inputs one run feeds: arrays per input (samples first), labels, source."""

    def __init__(self, arrays: dict[str, Any], labels: Any, source: DataSource, name: str) -> None:
        self.arrays, self.labels, self.source, self.name = arrays, labels, source, name

    @property
    def samples(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def feeds(self, n: int | None = None) -> list[dict[str, Any]]:
        """One dict per sample, each array with a batch of 1 (what the model takes)."""
        k = self.samples if n is None else min(n, self.samples)
        return [{name: a[i : i + 1] for name, a in self.arrays.items()} for i in range(k)]


def _shapes(inputs: list[SignatureInput], info: ModelInfo, key: str) -> dict[str, tuple[int, ...]]:
    sig = next(s for s in info.signatures if s.key == key)
    tensors = info.subgraphs[sig.subgraph].tensors
    return {i.name: tuple(tensors[sig.inputs[i.name]].shape) for i in inputs}


def _load(
    path: str,
    inputs: list[SignatureInput],
    shapes: dict[str, tuple[int, ...]],
    req: OptimizeRequest,
    workdir: Path,
    what: str,
    source: DataSource,
    limit: int,
) -> _Data:
    p = Path(path)
    kind = ConversionOptions(calibration_path=str(p)).calibration_source
    arrays, labels = load_eval_arrays(
        p, kind, inputs, shapes, req.image_range, limit, workdir, what
    )
    arrays = {n: shape_samples(a, n, shapes[n]) for n, a in arrays.items()}
    return _Data(arrays, labels, source, p.name)


def _data(
    req: OptimizeRequest,
    inputs: list[SignatureInput],
    shapes: dict[str, tuple[int, ...]],
    workdir: Path,
    *,
    for_calibration: bool,
) -> _Data:
    """Calibration data, or evaluation data (the person's, else the calibration
    file, else random samples)."""
    import numpy as np

    # (path, what it is, where it came from, samples at most), first given wins
    cal = (req.calibration_path, "calibration data", DataSource.CALIBRATION)
    evaluation = (req.eval_path, "evaluation data", DataSource.USER, req.max_samples)
    choices = (
        [(*cal, req.calibration_samples)]
        if for_calibration
        else [evaluation, (*cal, req.max_samples)]
    )
    for path, what, source, most in choices:
        if path:
            return _load(path, inputs, shapes, req, workdir, what, source, most)
    n = 64 if not for_calibration else min(req.calibration_samples, 100)
    arrays = synthetic_arrays(inputs, shapes, n, seed=1)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    return _Data(arrays, None, DataSource.SYNTHETIC, "random samples")


def _quantizer(data: bytes, entries: list[dict[str, Any]]) -> Any:
    from litert_quantizer import quantizer

    qt = quantizer.Quantizer(bytearray(data))
    try:
        qt.load_quantization_recipe(entries)
    except (ValueError, KeyError, TypeError) as e:
        raise RecipeError(
            f"The quantizer refused the recipe: {error_line(e)}",
            "Check each entry's op_config against the quantizer's recipe format "
            "(`tflite-studio recipes --json ID` prints a working one).",
        ) from None
    return qt


def quantize_bytes(
    data: bytes, entries: list[dict[str, Any]], calibration: dict[str, list[dict[str, Any]]] | None
) -> tuple[Any, bytes]:
    """(quantizer, quantized model): the quantizer called the way its README
    shows (``load_quantization_recipe``, ``calibrate``, ``quantize``)."""
    qt = _quantizer(data, entries)
    qsv = None
    try:
        if qt.need_calibration:
            if not calibration:
                raise QuantizeError("This recipe needs calibration data.", "Give samples.")
            qsv = qt.calibrate(calibration, num_threads=1)
        result = qt.quantize(qsv, enable_progress_report=False)
    except StudioError:
        raise
    except (ValueError, RuntimeError, KeyError, IndexError, TypeError) as e:
        raise QuantizeError(
            f"The quantizer failed: {error_line(e)}",
            "Try another recipe (weight-only-int8 is the most widely supported); if a custom "
            "recipe sets skip_checks, remove it.",
        ) from None
    return qt, bytes(result.quantized_model)


def _validate(qt: Any, key: str, data: _Data, n: int) -> tuple[Any, int]:
    from litert_quantizer.utils.validation_utils import ValidationErrorMetric as M

    feeds = data.feeds(n)
    res = qt.validate(
        test_data={key: feeds},
        error_metrics=[M.MSE, M.SNR, M.COSINE_SIMILARITY],
        use_xnnpack=True,
        num_threads=1,
    )
    return comparison_rows(res, key), len(feeds)


def _reference(float_path: Path, key: str, data: _Data, workdir: Path, name: str) -> Reference:
    """The float file's own outputs on the evaluation inputs, as a ``Reference``
    (the layout ``evaluate_file`` reads), computed the way it runs a file."""
    import numpy as np

    interp, runner, key = open_runner(float_path, key)
    in_d, out_d = runner.get_input_details(), runner.get_output_details()
    outs: dict[str, list[Any]] = {k: [] for k in out_d}
    for i, feed in enumerate(data.feeds()):
        if i:
            interp.reset_all_variables()
        res = runner(**{k: quantize_input(v, in_d[k])[0] for k, v in feed.items()})
        for k in out_d:
            outs[k].append(dequantize_output(res[k], out_d[k]))
    npz = workdir / "float_reference.npz"
    arrays = {reference_key("in", k): v for k, v in data.arrays.items()}
    ref_out = {k: np.concatenate(v) for k, v in outs.items()}
    arrays.update({reference_key("out", k): v for k, v in ref_out.items()})
    if data.labels is not None:
        arrays["labels"] = data.labels
    np.savez(npz, **arrays)
    flags: tuple[Flag, ...] = ()
    if data.source is DataSource.SYNTHETIC:
        flags = (
            Flag(
                "synthetic_data",
                "warning",
                "The comparison ran on random inputs; give "
                "evaluation data for a verdict about real inputs.",
            ),
        )
    return Reference(
        npz_path=str(npz),
        model_name=name,
        signature_key=key,
        data_source=data.source,
        data_name=data.name,
        samples=data.samples,
        inputs={
            k: {"dtype": str(v.dtype), "shape": list(v.shape[1:])} for k, v in data.arrays.items()
        },
        outputs={k: output_kind(v, data.labels, "auto") for k, v in ref_out.items()},
        has_labels=data.labels is not None,
        flags=flags,
    )


def _evaluate(
    req: OptimizeRequest,
    float_path: Path,
    out: Path,
    key: str,
    data: _Data,
    workdir: Path,
    progress: Progress,
) -> Any:
    ref = _reference(float_path, key, data, workdir, req.display_name)
    return evaluate_file(
        TfliteEvalRequest(
            tflite_path=str(out),
            reference=ref,
            display_name=out.name,
            preset=req.recipe.label,
            thresholds=req.thresholds,
        ),
        progress,
    )


def _prepare(
    req: OptimizeRequest, progress: Progress
) -> tuple[bytes, ModelInfo, int, list[str], int]:
    src = Path(req.tflite_path)
    progress(f"Reading {req.display_name}")
    raw = src.read_bytes()
    info = read_model(raw)
    refuse_quantized(info, req.display_name)
    data, fixed = normalize_op_codes(raw)
    warnings = []
    if fixed:
        warnings.append(
            f"{fixed} operator code(s) were stored only in the schema's deprecated field "
            "(an older converter); they were normalized first, or the quantizer would have "
            "read every op as ADD."
        )
    return data, info, fixed, warnings, len(raw)


def _calibration(
    req: OptimizeRequest,
    info: ModelInfo,
    key: str,
    inputs: list[SignatureInput],
    workdir: Path,
    warnings: list[str],
    progress: Progress,
) -> tuple[dict[str, list[dict[str, Any]]] | None, str | None, int]:
    if not req.recipe.needs_calibration:
        return None, None, 0
    blocker = runtime_blocker(req.tflite_path)
    if blocker is not None:
        raise QuantizeError(
            f"Static quantization calibrates by running the model, and {blocker.message}",
            "Use a weight-only or dynamic recipe, which needs no run.",
        )
    cal = _data(req, inputs, _shapes(inputs, info, key), workdir, for_calibration=True)
    name = cal.name if cal.source is not DataSource.SYNTHETIC else "synthetic"
    if cal.source is DataSource.SYNTHETIC:
        warnings.append(SYNTHETIC_WARNING)
    progress(f"Calibrating on {cal.samples} samples from {cal.name}")
    return {key: cal.feeds()}, name, cal.samples


def run(req: OptimizeRequest, workdir: Path, progress: Progress) -> OptimizeResult:
    t0 = time.perf_counter()
    data, info, fixed, warnings, in_size = _prepare(req, progress)
    entries = req.recipe.quantizer_entries()
    if req.recipe.is_custom:
        check_scopes(entries, info)
    key, inputs = signature_of(info, req.signature_key, req.display_name)
    calibration, cal_name, cal_n = _calibration(req, info, key, inputs, workdir, warnings, progress)
    progress(f"Quantizing with {req.recipe.label}")
    import litert_quantizer.quantizer  # noqa: F401  (its import is not the quantizing time)

    tq = time.perf_counter()
    qt, out_bytes = quantize_bytes(data, entries, calibration)
    seconds = time.perf_counter() - tq
    out_info = read_model(out_bytes)
    n_quant, dtypes = check_result(info, out_info, in_size, len(out_bytes), req.recipe.label)
    out = workdir / req.out_path
    out.write_bytes(out_bytes)
    kept = kept_float(out_info, max(4096, in_size // 100))
    if kept:
        warnings.append(kept_float_words(kept))
    if len(out_bytes) > 0.95 * in_size:  # smaller, but not so a device would notice
        warnings.append(
            f"Only {1 - len(out_bytes) / in_size:.1%} smaller: {req.recipe.label} covers "
            "few of this model's weights. The float file may serve as well."
        )
    extra = _checks(req, qt, data, out, key, inputs, info, workdir, progress)
    return OptimizeResult(
        input_name=req.display_name,
        input_size=in_size,
        output_size=len(out_bytes),
        output_sha256=hashlib.sha256(out_bytes).hexdigest(),
        recipe=req.recipe,
        recipe_entries=tuple(entries),
        signature_key=key,
        seconds=round(seconds, 4),
        total_seconds=round(time.perf_counter() - t0, 3),
        normalized_op_codes=fixed,
        quantized_tensors=n_quant,
        weight_dtypes=dtypes,
        kept_float=kept,
        warnings=tuple(warnings + extra.pop("warnings")),
        calibration=cal_name,
        calibration_samples=cal_n,
        quantizer_version=_version(),
        **extra,
    )


def _checks(
    req: OptimizeRequest,
    qt: Any,
    data: bytes,
    out: Path,
    key: str,
    inputs: list[SignatureInput],
    info: ModelInfo,
    workdir: Path,
    progress: Progress,
) -> dict[str, Any]:
    """The quantizer's comparison and our evaluation (skipped, with the reason,
    where this server's runtime cannot run the model)."""
    found: dict[str, Any] = {"warnings": []}
    if not (req.validate or req.evaluate):
        return found
    blocker = runtime_blocker(out)
    if blocker is not None:
        found["accuracy_error"] = blocker.to_dict()
        found["warnings"].append(blocker.message)
        return found
    sample = _data(req, inputs, _shapes(inputs, info, key), workdir, for_calibration=False)
    if req.validate:
        progress(f"Comparing every tensor on {min(req.validation_samples, sample.samples)} samples")
        try:
            rows, n = _validate(qt, key, sample, req.validation_samples)
            found.update(validation=rows, validation_samples=n, validation_data=sample.name)
        except (ValueError, RuntimeError, KeyError) as e:
            found["warnings"].append(f"The quantizer's tensor comparison failed: {error_line(e)}")
    if req.evaluate:
        float_path = workdir / "float_input.tflite"
        float_path.write_bytes(data)
        try:
            found["accuracy"] = _evaluate(req, float_path, out, key, sample, workdir, progress)
        except EvaluateError as e:
            found["accuracy_error"] = e.to_dict()
            found["warnings"].append(e.message)
    return found


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("litert-quantizer")
    except PackageNotFoundError:
        return ""
