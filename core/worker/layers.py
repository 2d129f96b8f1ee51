"""Worker tasks for the per-layer quantization error.

- ``run_debugger`` (int8, int8-float-io): TensorFlow's QuantizationDebugger on
  the converter configured exactly as for the conversion. It builds a model
  with a ``NumericVerify`` op after each quantized layer, which runs the float
  kernel on the same quantized input, so each layer's error is its own.
- ``run_compare`` (int16x8): TensorFlow's debugger only builds int8 debug
  models (its int16 zero points are refused by LiteRT's int16 kernels), so
  both ``.tflite`` files run in LiteRT with every tensor kept and same-named
  tensors are compared. That error accumulates through the layers.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import EvaluateError
from core.options import ConversionOptions
from core.tasks.layers import LayerError, LayerErrorReport, layer_error, layer_report
from core.tasks.metrics import dequantize_output, quantize_input
from core.tasks.requests import LayerCompareRequest, LayerDebugRequest
from core.tasks.results import SignatureInput, reference_key
from core.worker.convert import prepared_converter
from core.worker.convert_errors import parse_converter_error
from core.worker.data import load_eval_arrays, shape_samples
from core.worker.messages import error_line
from core.worker.run_tflite import match_names
from core.worker.runtime import raise_if_blocked

__all__ = ["run_debugger", "run_compare"]


def _debug_samples(
    req: LayerDebugRequest,
    inputs: list[SignatureInput],
    shapes: dict[str, Any],
    converter: Any,
    options: ConversionOptions,
    workdir: Path,
) -> list[dict[str, Any]]:
    """Samples as {signature input name: array of batch 1}."""
    import numpy as np

    n = req.max_samples
    if req.debug_npz:
        with np.load(req.debug_npz, allow_pickle=False) as z:
            keys = {i.name: reference_key("in", i.name) for i in inputs}
            arrays = {k: z[key] for k, key in keys.items() if key in z.files}
        if len(arrays) == len(inputs):
            total = min(n, len(next(iter(arrays.values()))))
            return [
                {k: v[j : j + 1].astype(_dtype(inputs, k)) for k, v in arrays.items()}
                for j in range(total)
            ]
    if req.debug_path:
        path = req.debug_path
        source = ConversionOptions(calibration_path=str(path)).calibration_source
        arrays, _ = load_eval_arrays(
            Path(path), source, inputs, shapes, options.image_range, n, workdir, "evaluation data"
        )
        total = len(next(iter(arrays.values())))
        arrays = {k: shape_samples(v, k, shapes[k]) for k, v in arrays.items()}
        return [
            {k: np.asarray(v[j : j + 1]).astype(_dtype(inputs, k)) for k, v in arrays.items()}
            for j in range(total)
        ]
    samples = []
    for s in converter.representative_dataset():
        samples.append(dict(s))
        if len(samples) >= n:
            break
    return samples


def _dtype(inputs: list[SignatureInput], name: str) -> str:
    return next(i.dtype for i in inputs if i.name == name)


def run_debugger(
    req: LayerDebugRequest, workdir: Path, progress: Callable[..., None]
) -> LayerErrorReport:
    """Task ``layer_debug``: TensorFlow's QuantizationDebugger (int8)."""
    t0 = time.perf_counter()
    options = req.options
    with prepared_converter(
        req.model_path, req.display_name, options, req.unpack_limits, workdir, progress
    ) as p:
        tf = p.tf
        lm = p.model
        samples = _debug_samples(req, lm.inputs, lm.shapes, p.converter, options, workdir)
        if not samples:
            raise EvaluateError(
                "There are no samples to run the debugger on.",
                "Give calibration or evaluation data.",
            )
        holder: dict[str, Any] = {}

        def dataset() -> Any:
            order = holder["order"]
            for s in samples:
                yield [s[name] for name in order]

        progress("Calibrating and building the debug model")
        try:
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=p.converter,
                debug_dataset=dataset,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(),
            )
        except ValueError as e:
            raise EvaluateError(
                "TensorFlow's quantization debugger cannot handle this model: " + error_line(e),
                "The model has no layer it can quantize to int8 (or none it can check).",
            ) from None
        except Exception as e:  # noqa: BLE001  (ConverterError and friends)
            raise parse_converter_error(str(e), options) from None
        holder["order"] = _input_order(debugger._quant_interpreter, lm.input_names)
        progress(f"Comparing each layer with its float version on {len(samples)} samples")
        debugger.run()
        buf = io.StringIO()
        debugger.layer_statistics_dump(buf)
    layers = []
    for k, row in enumerate(csv.DictReader(io.StringIO(buf.getvalue()))):
        layers.append(
            layer_error(
                k,
                row["op_name"],
                row["tensor_name"],
                int(float(row["tensor_idx"])),
                int(float(row["num_elements"])),
                float(row["mean_error"]),
                float(row["stddev"]),
                float(row["max_abs_error"]),
                float(row["mean_squared_error"]),
                float(row["scale"]),
                int(float(row["zero_point"])),
            )
        )
    return layer_report(options.preset.value, "quantization_debugger", len(samples), layers, t0)


def _input_order(interp: Any, names: list[str]) -> list[str]:
    """Signature input names in the order of the interpreter's input tensors."""
    details = interp.get_input_details()
    if len(names) == 1:
        return names
    try:
        sigs = interp.get_signature_list()
        key = next(iter(sigs))
        by_index = {
            d["index"]: n for n, d in interp.get_signature_runner(key).get_input_details().items()
        }
        order = [by_index[d["index"]] for d in details]
        if sorted(order) == sorted(names):
            return order
    except Exception:  # noqa: BLE001  (no signature in the debug model)
        pass
    for_name = {}
    for d in details:
        for n in names:
            if d["name"].endswith(f"_{n}:0") or d["name"] == n:
                for_name[d["name"]] = n
    if len(for_name) == len(details):
        return [for_name[d["name"]] for d in details]
    return sorted(names)


def _open_keeping_tensors(path: str) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        return Interpreter(
            model_path=path,
            experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    except (RuntimeError, ValueError) as e:
        raise EvaluateError(
            f"LiteRT could not load {Path(path).name}: {error_line(e)}",
            "Check it in Inspect.",
        ) from None


def _comparable(fi: Any, qi: Any) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(op, quantized tensor, float tensor) for each per-tensor-quantized op
    output that has a float twin of the same name."""
    import numpy as np

    ftensors = {d["name"]: d for d in fi.get_tensor_details()}
    qdetails = {d["index"]: d for d in qi.get_tensor_details()}
    out = []
    for op in qi._get_ops_details():  # LiteRT's only per-op listing
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for t in op["outputs"]:
            d = qdetails.get(int(t))
            if d is None or len(d["quantization_parameters"]["scales"]) != 1:
                continue
            f = ftensors.get(d["name"])
            if f is not None and np.dtype(f["dtype"]).kind == "f":
                out.append((op["op_name"], d, f))
    return out


def _accumulate(acc: list[float], q: Any, f: Any) -> None:
    """count, sum of errors, sum of squared errors, max |error|, sum of float²."""
    import numpy as np

    e = q - f
    acc[0] += e.size
    acc[1] += float(e.sum())
    acc[2] += float((e * e).sum())
    acc[3] = max(acc[3], float(np.abs(e).max()) if e.size else 0.0)
    acc[4] += float((f * f).sum())


def run_compare(
    req: LayerCompareRequest, workdir: Path, progress: Callable[..., None]
) -> LayerErrorReport:
    """Task ``layer_compare``: tensor by tensor against the float32 build (LiteRT only)."""
    import numpy as np

    t0 = time.perf_counter()
    ref = req.reference
    n = min(ref.samples, req.max_samples)
    raise_if_blocked(req.float_path, req.quant_path)
    fi, qi = _open_keeping_tensors(req.float_path), _open_keeping_tensors(req.quant_path)
    fr = fi.get_signature_runner(next(iter(fi.get_signature_list())))
    qr = qi.get_signature_runner(next(iter(qi.get_signature_list())))
    fin, qin = fr.get_input_details(), qr.get_input_details()
    meta = _comparable(fi, qi)
    acc = {d["name"]: [0.0, 0.0, 0.0, 0.0, 0.0] for _, d, _ in meta}
    # the .tflite may name its inputs differently from the original's signature
    fmap = match_names(list(ref.inputs), list(fin), "inputs")
    qmap = match_names(list(ref.inputs), list(qin), "inputs")
    feeds, _, _ = ref.arrays(limit=n)
    progress(f"Comparing every tensor on {n} samples")
    for i in range(n):
        if i:  # recurrent state must not leak between samples
            fi.reset_all_variables()
            qi.reset_all_variables()
        fr(**{fmap[k]: quantize_input(feeds[k][i : i + 1], fin[fmap[k]])[0] for k in feeds})
        qr(**{qmap[k]: quantize_input(feeds[k][i : i + 1], qin[qmap[k]])[0] for k in feeds})
        for _, d, fd in meta:
            try:
                q = dequantize_output(qi.get_tensor(d["index"]), d)
                f = np.asarray(fi.get_tensor(fd["index"]), dtype=np.float64)
            except ValueError:
                continue
            if q.shape == f.shape:
                _accumulate(acc[d["name"]], q, f)
    layers: list[LayerError] = []
    for op, d, _ in meta:
        cnt, s, ss, mx, fs = acc[d["name"]]
        if not cnt:
            continue
        mean, mse = s / cnt, ss / cnt
        qp = d["quantization_parameters"]
        layers.append(
            layer_error(
                len(layers),
                op,
                d["name"],
                int(d["index"]),
                int(cnt // max(n, 1)),
                mean,
                math.sqrt(max(mse - mean * mean, 0.0)),
                mx,
                mse,
                float(qp["scales"][0]),
                int(qp["zero_points"][0]),
                fs / cnt,
            )
        )
    return layer_report(req.preset or "quantized", "tensor_compare", n, layers, t0)
