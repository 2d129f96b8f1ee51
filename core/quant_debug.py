"""Per-layer quantization error: which layers lose the most when quantized.

Two methods, one result type (``LayerErrorReport``):

- ``debug_layers(model, options)`` — int8 and int8-float-io: TensorFlow's
  ``tf.lite.experimental.QuantizationDebugger`` (in a worker). The converter is
  configured exactly as for the conversion (``core.convert.prepared_converter``);
  the debugger builds a model with a ``NumericVerify`` op after each quantized
  layer, which runs the float kernel on the same quantized input, so each
  layer's error is its own, not the sum of the layers before it. Per layer:
  mean error, standard deviation, max absolute error, mean squared error, and
  ``rmse/scale`` — the RMSE in units of the layer's quantization step. Plain
  rounding gives about 1/sqrt(12) ≈ 0.29; TensorFlow's guide treats layers
  above about 0.7 as suspects.
- ``compare_layers(float32.tflite, int16x8.tflite, reference)`` — int16x8:
  TensorFlow's debugger only builds int8 debug models (its MLIR quantizer
  gives int16 activations a non-zero zero point, which LiteRT's int16 kernels
  refuse), so here both models run in LiteRT with every intermediate tensor
  kept and same-named tensors are compared. That error accumulates through the
  layers; the report says which method was used.

The worst layers can be kept in float: ``ConversionOptions(preset=
"int8-float-io", keep_float_ops=report.worst_n(3))`` (see ``core.convert``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import EvaluateError, OptionsError, Phase
from core.options import ConversionOptions, Preset
from core.worker import work_folder

__all__ = [
    "SUSPECT_RMSE_OVER_SCALE",
    "LayerError",
    "LayerErrorReport",
    "debug_layers",
    "compare_layers",
    "debug_layers_task",
    "compare_layers_task",
]

SUSPECT_RMSE_OVER_SCALE = 0.7  # TensorFlow's quantization debugger guide
SUSPECT_RELATIVE_RMSE = 0.05  # tensor_compare: error above 5% of the activation's RMS
IDEAL_RMSE_OVER_SCALE = 1 / math.sqrt(12)
DEFAULT_DEBUG_SAMPLES = 100
WORST = 5


@dataclass(frozen=True)
class LayerError:
    index: int  # execution order among the measured layers
    op: str  # op type, e.g. CONV_2D
    tensor: str  # output tensor name (what keep_float_ops takes)
    tensor_index: int
    num_elements: int
    mean_error: float
    stddev: float
    max_abs_error: float
    mean_squared_error: float
    rmse: float
    scale: float
    zero_point: int
    rmse_over_scale: float | None  # RMSE in quantization steps (None: scale 0)
    suspect: bool
    relative_rmse: float | None = None  # RMSE / RMS of the float tensor (tensor_compare)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LayerErrorReport:
    preset: str
    method: str  # "quantization_debugger" | "tensor_compare"
    samples: int
    layers: tuple[LayerError, ...]
    worst: tuple[str, ...]  # tensor names, worst first
    keep_float_preset: str | None  # preset that can keep the worst layers in float
    note: str
    seconds: float = 0.0
    metric: str = "rmse_over_scale"  # what ranks the layers (and the chart's y axis)
    threshold: float = SUSPECT_RMSE_OVER_SCALE  # above it a layer is a suspect

    def score(self, layer: LayerError) -> float | None:
        return getattr(layer, self.metric)

    def ranked(self) -> list[LayerError]:
        """Layers with a score, worst first."""
        return sorted((x for x in self.layers if self.score(x) is not None),
                      key=lambda x: -(self.score(x) or 0.0))

    def worst_n(self, n: int) -> tuple[str, ...]:
        return tuple(x.tensor for x in self.ranked()[: max(0, n)])

    @property
    def suspects(self) -> tuple[LayerError, ...]:
        return tuple(x for x in self.layers if x.suspect)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "method": self.method,
            "samples": self.samples,
            "layers": [x.to_dict() for x in self.layers],
            "worst": list(self.worst),
            "keep_float_preset": self.keep_float_preset,
            "note": self.note,
            "seconds": self.seconds,
            "metric": self.metric,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerErrorReport:
        return cls(
            preset=d["preset"],
            method=d["method"],
            samples=int(d["samples"]),
            layers=tuple(LayerError(**x) for x in d["layers"]),
            worst=tuple(d.get("worst") or ()),
            keep_float_preset=d.get("keep_float_preset"),
            note=d.get("note", ""),
            seconds=float(d.get("seconds", 0.0)),
            metric=d.get("metric", "rmse_over_scale"),
            threshold=float(d.get("threshold", SUSPECT_RMSE_OVER_SCALE)),
        )

    def to_text(self, top: int = 10) -> str:
        lines = [f"Per-layer quantization error ({self.preset}, {self.method}, "
                 f"{self.samples} samples): {self.note}"]
        label = "rmse/scale" if self.metric == "rmse_over_scale" else "rel. rmse"
        lines.append(f"{label:>10}  {'op':<18} tensor")
        for x in self.ranked()[:top]:
            v = self.score(x)
            r = "–" if v is None else f"{v:.3f}"
            mark = " !" if x.suspect else ""
            lines.append(f"{r:>10}  {x.op:<18} {x.tensor[:90]}{mark}")
        return "\n".join(lines)


def _layer(index: int, op: str, tensor: str, tidx: int, n: int, mean: float, std: float,
           maxabs: float, mse: float, scale: float, zp: int,
           float_ms: float | None = None) -> LayerError:
    rmse = math.sqrt(mse) if mse >= 0 and math.isfinite(mse) else float("nan")
    ros = rmse / scale if scale and math.isfinite(rmse) else None
    rel = None
    if float_ms is not None:
        rel = (rmse / math.sqrt(float_ms) if float_ms > 0 else (0.0 if rmse == 0 else None))
    if rel is not None:
        suspect = rel > SUSPECT_RELATIVE_RMSE
    else:
        suspect = ros is not None and ros > SUSPECT_RMSE_OVER_SCALE
    return LayerError(
        index=index, op=op, tensor=tensor, tensor_index=tidx, num_elements=n,
        mean_error=_f(mean), stddev=_f(std), max_abs_error=_f(maxabs),
        mean_squared_error=_f(mse), rmse=_f(rmse), scale=_f(scale), zero_point=int(zp),
        rmse_over_scale=None if ros is None else round(ros, 5),
        suspect=suspect,
        relative_rmse=None if rel is None else round(rel, 6),
    )


def _f(v: float) -> float:
    v = float(v)
    return float(f"{v:.6g}") if math.isfinite(v) else 0.0


def _finish(preset: str, method: str, samples: int, layers: list[LayerError],
            t0: float) -> LayerErrorReport:
    compare = method == "tensor_compare"
    metric = "relative_rmse" if compare else "rmse_over_scale"
    threshold = SUSPECT_RELATIVE_RMSE if compare else SUSPECT_RMSE_OVER_SCALE
    keep = Preset.INT8_FLOAT_IO.value if preset in (Preset.INT8.value,
                                                    Preset.INT8_FLOAT_IO.value) else None
    report = LayerErrorReport(preset, method, samples, tuple(layers), (), keep, "",
                              round(time.perf_counter() - t0, 3), metric, threshold)
    ranked = report.ranked()
    sus = [x for x in layers if x.suspect]
    top = report.score(ranked[0]) if ranked else 0.0
    if not layers:
        note = "No quantized layer was found to measure."
    elif compare:
        note = (f"Error of each layer's output against the float32 model, relative to the "
                f"size of that output (worst {top:.1%}); errors add up along the network. ")
        note += (f"{len(sus)} of {len(layers)} layers exceed {threshold:.0%}." if sus else
                 f"Every layer stays under {threshold:.0%}.")
    elif sus:
        note = (f"{len(sus)} of {len(layers)} layers have an error above "
                f"{SUSPECT_RMSE_OVER_SCALE} quantization steps (plain rounding gives about "
                f"{IDEAL_RMSE_OVER_SCALE:.2f}); keeping them in float usually recovers accuracy.")
    else:
        note = (f"Every layer stays within {SUSPECT_RMSE_OVER_SCALE} quantization steps "
                f"(worst {top:.2f}; plain rounding gives about {IDEAL_RMSE_OVER_SCALE:.2f}).")
    return replace(report, worst=report.worst_n(WORST), note=note)


# ---------------------------------------------------------------- caller side


def debug_layers(
    model_path: str | os.PathLike[str],
    options: ConversionOptions | dict[str, Any],
    *,
    debug_npz: str | os.PathLike[str] | None = None,
    debug_data: str | os.PathLike[str] | None = None,
    max_samples: int = DEFAULT_DEBUG_SAMPLES,
    workdir: str | os.PathLike[str] | None = None,
    display_name: str | None = None,
    limits: Any = None,
    pool: Any = None,
    on_progress: Callable[[str], None] | None = None,
    cancel: Any = None,
) -> LayerErrorReport:
    """Run TensorFlow's QuantizationDebugger on ``model_path`` converted with
    ``options`` (int8 or int8-float-io, with calibration data).

    Debug inputs: ``debug_npz`` (a ``core.evaluate`` reference file), else
    ``debug_data`` (a .npz keyed by input name / .npy), else the calibration
    samples."""
    from core.worker import run_isolated

    d = options.to_dict() if isinstance(options, ConversionOptions) else dict(options)
    if d.get("calibration_path"):
        d["calibration_path"] = os.path.abspath(d["calibration_path"])
    d["keep_float_ops"] = []
    opts = ConversionOptions.from_dict(d)
    if opts.preset not in (Preset.INT8, Preset.INT8_FLOAT_IO):
        raise OptionsError(
            f"TensorFlow's quantization debugger measures int8 models, not {opts.preset.value}.",
            "Use int8 or int8-float-io; for int16x8 compare the float32 and int16x8 .tflite "
            "files (tflite-studio layers --float32 A.tflite --quantized B.tflite).",
        )
    with work_folder(workdir, "tflite-layers-") as wd:
        payload = {
            "model_path": os.path.abspath(model_path),
            "display_name": display_name or Path(model_path).name,
            "options": opts.to_dict(),
            "debug_npz": str(Path(debug_npz).resolve()) if debug_npz else None,
            "debug_path": os.path.abspath(debug_data) if debug_data else None,
            "max_samples": int(max_samples),
        }
        out = run_isolated("quant_debug", payload, workdir=wd, limits=limits,
                           phase=Phase.EVALUATE, pool=pool, on_progress=on_progress,
                           cancel=cancel)
        return LayerErrorReport.from_dict(out)


def compare_layers(
    float_tflite: str | os.PathLike[str],
    quant_tflite: str | os.PathLike[str],
    reference: Any,
    *,
    preset: str = Preset.INT16X8.value,
    max_samples: int = DEFAULT_DEBUG_SAMPLES,
    workdir: str | os.PathLike[str] | None = None,
    limits: Any = None,
    on_progress: Callable[[str], None] | None = None,
    cancel: Any = None,
) -> LayerErrorReport:
    """Tensor-by-tensor error of ``quant_tflite`` against ``float_tflite`` on
    the reference inputs (``core.evaluate.Reference``), in a light worker."""
    from core.evaluate import runtime_blocker
    from core.worker import run_isolated

    for p in (float_tflite, quant_tflite):
        b = runtime_blocker(p)
        if b is not None:
            raise b
    with work_folder(workdir, "tflite-layers-") as wd:
        payload = {
            "mode": "layers",
            "float_path": os.path.abspath(float_tflite),
            "quant_path": os.path.abspath(quant_tflite),
            "reference": reference.to_dict(),
            "preset": preset,
            "max_samples": int(max_samples),
        }
        out = run_isolated("evaluate", payload, workdir=wd, limits=limits,
                           phase=Phase.EVALUATE, on_progress=on_progress, cancel=cancel)
        return LayerErrorReport.from_dict(out)


# ---------------------------------------------------------------- worker side


def _debug_samples(payload: dict[str, Any], inputs: list[Any], shapes: dict[str, Any],
                   converter: Any, options: ConversionOptions,
                   workdir: Path) -> list[dict[str, Any]]:
    """Samples as {signature input name: array of batch 1}."""
    import numpy as np

    n = int(payload.get("max_samples") or DEFAULT_DEBUG_SAMPLES)
    if payload.get("debug_npz"):
        with np.load(payload["debug_npz"], allow_pickle=False) as z:
            arrays = {i.name: z[f"in__{i.name}"] for i in inputs if f"in__{i.name}" in z.files}
        if len(arrays) == len(inputs):
            total = min(n, len(next(iter(arrays.values()))))
            return [{k: v[j:j + 1].astype(_dtype(inputs, k)) for k, v in arrays.items()}
                    for j in range(total)]
    if payload.get("debug_path"):
        from core.evaluate import _load_eval_arrays, _shape_samples

        path = payload["debug_path"]
        source = ConversionOptions(calibration_path=str(path)).calibration_source
        arrays, _ = _load_eval_arrays(Path(path), source, inputs, shapes, options.image_range,
                                      n, workdir, "evaluation data")
        total = len(next(iter(arrays.values())))
        arrays = {k: _shape_samples(v, k, shapes[k]) for k, v in arrays.items()}
        return [{k: np.asarray(v[j:j + 1]).astype(_dtype(inputs, k)) for k, v in arrays.items()}
                for j in range(total)]
    samples = []
    for s in converter.representative_dataset():
        samples.append(dict(s))
        if len(samples) >= n:
            break
    return samples


def _dtype(inputs: list[Any], name: str) -> str:
    return next(i.dtype for i in inputs if i.name == name)


def debug_layers_task(payload: dict[str, Any], workdir: Path,
                      progress: Callable[..., None]) -> dict[str, Any]:
    """Worker side of ``debug_layers`` (TensorFlow)."""
    from core.convert import parse_converter_error, prepared_converter

    t0 = time.perf_counter()
    options = ConversionOptions.from_dict(payload["options"])
    warnings: list[str] = []
    with prepared_converter(payload, options, workdir, progress, warnings) as p:
        tf = p.tf
        samples = _debug_samples(payload, p.inputs, p.shapes, p.converter, options, workdir)
        if not samples:
            raise EvaluateError("There are no samples to run the debugger on.",
                                "Give calibration or evaluation data.")
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
                "TensorFlow's quantization debugger cannot handle this model: "
                + str(e).splitlines()[0][:300],
                "The model has no layer it can quantize to int8 (or none it can check).",
            ) from None
        except Exception as e:  # noqa: BLE001  (ConverterError and friends)
            raise parse_converter_error(str(e), options) from None
        holder["order"] = _input_order(debugger._quant_interpreter, [i.name for i in p.inputs])
        progress(f"Comparing each layer with its float version on {len(samples)} samples")
        debugger.run()
        buf = io.StringIO()
        debugger.layer_statistics_dump(buf)
    layers = []
    for k, row in enumerate(csv.DictReader(io.StringIO(buf.getvalue()))):
        layers.append(_layer(
            k, row["op_name"], row["tensor_name"], int(float(row["tensor_idx"])),
            int(float(row["num_elements"])), float(row["mean_error"]), float(row["stddev"]),
            float(row["max_abs_error"]), float(row["mean_squared_error"]),
            float(row["scale"]), int(float(row["zero_point"])),
        ))
    return _finish(options.preset.value, "quantization_debugger", len(samples), layers,
                   t0).to_dict()


def _input_order(interp: Any, names: list[str]) -> list[str]:
    """Signature input names in the order of the interpreter's input tensors."""
    details = interp.get_input_details()
    if len(names) == 1:
        return names
    try:
        sigs = interp.get_signature_list()
        key = next(iter(sigs))
        by_index = {d["index"]: n for n, d in
                    interp.get_signature_runner(key).get_input_details().items()}
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


def compare_layers_task(payload: dict[str, Any], workdir: Path,
                        progress: Callable[..., None]) -> dict[str, Any]:
    """Worker side of ``compare_layers`` (LiteRT only)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from core.evaluate import Reference, _match_names, dequantize_output, quantize_input

    t0 = time.perf_counter()
    ref = Reference.from_dict(payload["reference"])
    n = min(ref.samples, int(payload.get("max_samples") or DEFAULT_DEBUG_SAMPLES))

    def open_(path: str) -> Any:
        try:
            return Interpreter(
                model_path=path, experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        except (RuntimeError, ValueError) as e:
            raise EvaluateError(f"LiteRT could not load {Path(path).name}: "
                                f"{str(e).splitlines()[0][:300]}", "Check it in Inspect.") from None

    fi, qi = open_(payload["float_path"]), open_(payload["quant_path"])
    fkey, qkey = next(iter(fi.get_signature_list())), next(iter(qi.get_signature_list()))
    fr, qr = fi.get_signature_runner(fkey), qi.get_signature_runner(qkey)
    fin, qin = fr.get_input_details(), qr.get_input_details()
    ftensors = {d["name"]: d for d in fi.get_tensor_details()}
    qdetails = {d["index"]: d for d in qi.get_tensor_details()}
    layers_meta = []
    for op in qi._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for t in op["outputs"]:
            d = qdetails.get(int(t))
            if d is None:
                continue
            qp = d["quantization_parameters"]
            if len(qp["scales"]) != 1 or d["name"] not in ftensors:
                continue
            if np.dtype(ftensors[d["name"]]["dtype"]).kind != "f":
                continue
            layers_meta.append((op["op_name"], d, ftensors[d["name"]]))
    # per tensor: count, sum of errors, sum of squared errors, max |error|, sum of float²
    acc = {d["name"]: [0, 0.0, 0.0, 0.0, 0.0] for _, d, _ in layers_meta}
    # the .tflite may name its inputs differently from the original's signature
    fmap = _match_names(list(ref.inputs), list(fin), "inputs")
    qmap = _match_names(list(ref.inputs), list(qin), "inputs")
    with np.load(ref.npz_path, allow_pickle=False) as z:
        feeds = {k: z[f"in__{k}"][:n] for k in ref.inputs}
    progress(f"Comparing every tensor on {n} samples")
    for i in range(n):
        if i:  # recurrent state must not leak between samples
            fi.reset_all_variables()
            qi.reset_all_variables()
        fr(**{fmap[k]: quantize_input(feeds[k][i:i + 1], fin[fmap[k]])[0] for k in feeds})
        qr(**{qmap[k]: quantize_input(feeds[k][i:i + 1], qin[qmap[k]])[0] for k in feeds})
        for _, d, fd in layers_meta:
            try:
                q = dequantize_output(qi.get_tensor(d["index"]), d)
                f = np.asarray(fi.get_tensor(fd["index"]), dtype=np.float64)
            except ValueError:
                continue
            if q.shape != f.shape:
                continue
            e = q - f
            a = acc[d["name"]]
            a[0] += e.size
            a[1] += float(e.sum())
            a[2] += float((e * e).sum())
            a[3] = max(a[3], float(np.abs(e).max()) if e.size else 0.0)
            a[4] += float((f * f).sum())
    layers = []
    for k, (op, d, _) in enumerate(layers_meta):
        cnt, s, ss, mx, fs = acc[d["name"]]
        if not cnt:
            continue
        mean = s / cnt
        mse = ss / cnt
        std = math.sqrt(max(mse - mean * mean, 0.0))
        qp = d["quantization_parameters"]
        layers.append(_layer(len(layers), op, d["name"], int(d["index"]), int(cnt // max(n, 1)),
                             mean, std, mx, mse, float(qp["scales"][0]),
                             int(qp["zero_points"][0]), fs / cnt))
    return _finish(str(payload.get("preset") or "quantized"), "tensor_compare", n, layers,
                   t0).to_dict()
