"""What the conversion cost: accuracy against the original, latency, a sweep
over the presets with a recommendation.

Caller side (no TensorFlow in the calling process):

- ``compute_reference(model, ...)`` runs the original SavedModel / Keras model
  with TensorFlow in a worker on the evaluation inputs (the person's
  ``.npz``/``.npy``/images, else the calibration data, else synthetic data,
  flagged as such) and keeps inputs and outputs in a ``.npz``: the
  ``Reference``.
- ``evaluate_tflite(tflite, reference)`` runs the ``.tflite`` on the same
  inputs with LiteRT's signature runner in a light worker (no TensorFlow),
  quantizing inputs and dequantizing outputs with their scale and zero point,
  and returns an ``AccuracyResult``: per output max/mean absolute error, RMSE,
  cosine similarity, SNR; for classifiers top-1 agreement with the original
  and, with labels, the accuracy of each.
- ``evaluate(model, tflite, ...)`` does both.
- ``sweep(model, ...)`` converts with every preset (one worker process per
  conversion), evaluates and times each, finds the Pareto front
  (size × latency × accuracy) and recommends one preset with its rule in words.
  A failing preset becomes a row with an ``error``; it never fails the sweep.

Worker side: ``run_evaluate_task`` (modes ``reference``, ``tflite``,
``benchmark``, ``layers``) and ``run_quant_debug_task`` are the entries named in ``core._worker.TASKS``. ``register_runners()`` adds the
``sweep`` and ``evaluate`` job kinds to ``core.jobs.RUNNERS``.
"""

from __future__ import annotations

import enum
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import (
    EvaluateError,
    OptionsError,
    Phase,
    StudioError,
)
from core.options import CalibrationSource, ConversionOptions, Preset
from core.worker import work_folder

__all__ = [
    "DataSource",
    "Flag",
    "OutputMetrics",
    "AccuracyResult",
    "Reference",
    "SweepRow",
    "Recommendation",
    "SweepReport",
    "Thresholds",
    "compare_outputs",
    "quantize_input",
    "runtime_blocker",
    "compute_reference",
    "evaluate_tflite",
    "evaluate",
    "sweep",
    "recommend",
    "pareto_front",
    "render_sweep",
    "register_runners",
    "run_evaluate_task",
    "run_quant_debug_task",
]

DEFAULT_MAX_SAMPLES = 1000
SYNTHETIC_SAMPLES = 64
PRESET_ORDER = [p.value for p in Preset]  # float32 first: the baseline


class DataSource(str, enum.Enum):
    USER = "user"  # evaluation data the person gave
    CALIBRATION = "calibration"  # no evaluation data: the calibration samples
    SYNTHETIC = "synthetic"  # neither: random inputs (agreement only, no accuracy)


@dataclass(frozen=True)
class Thresholds:
    """The rule of the recommendation and of the verdicts."""

    top1_agreement: float = 0.99  # classifiers: agreement with the original
    cosine: float = 0.99  # other outputs: cosine similarity ...
    snr_db: float = 20.0  # ... and signal-to-noise ratio
    check_top1: float = 0.95  # below: "bad"; between: "check"
    check_cosine: float = 0.95
    check_snr_db: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Flag:
    """Something a person should know about a measurement, in words."""

    code: str  # e.g. large_error, calibration_constant, input_clipped, synthetic_data
    severity: str  # "error" | "warning" | "info"
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Flag:
        return cls(str(d["code"]), str(d["severity"]), str(d["message"]))


@dataclass(frozen=True)
class OutputMetrics:
    """How one output of the ``.tflite`` differs from the original's."""

    name: str
    shape: tuple[int, ...]  # per sample
    kind: str  # "classifier" | "binary" | "values"
    max_abs_error: float
    mean_abs_error: float
    rmse: float
    # cosine similarity of each sample's output vector, averaged over the samples
    # (outputs of one value per sample: of the vector over the samples)
    cosine: float
    snr_db: float | None  # 10·log10(Σ ref² / Σ error²); None: no error at all
    top1_agreement: float | None = None
    accuracy_original: float | None = None
    accuracy_tflite: float | None = None

    @property
    def is_classifier(self) -> bool:
        return self.kind in ("classifier", "binary")

    @property
    def accuracy_drop(self) -> float | None:
        if self.accuracy_original is None or self.accuracy_tflite is None:
            return None
        return self.accuracy_original - self.accuracy_tflite

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["accuracy_drop"] = self.accuracy_drop
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutputMetrics:
        kw = {k: d[k] for k in d if k in {f for f in cls.__dataclass_fields__}}
        kw["shape"] = tuple(d["shape"])
        return cls(**kw)


@dataclass(frozen=True)
class AccuracyResult:
    """The ``.tflite`` against the original on the same inputs."""

    tflite: str  # file name
    preset: str | None
    signature_key: str
    data_source: DataSource
    data_name: str
    samples: int
    outputs: tuple[OutputMetrics, ...]
    verdict: str  # "good" | "check" | "bad"
    verdict_text: str
    flags: tuple[Flag, ...] = ()
    seconds: float = 0.0

    @property
    def primary(self) -> OutputMetrics:
        """The first classifier output, else the first output."""
        return next((o for o in self.outputs if o.is_classifier), self.outputs[0])

    def summary(self) -> dict[str, Any]:
        """The headline numbers (the sweep table's ``metrics``)."""
        p = self.primary
        return {
            "output": p.name,
            "kind": p.kind,
            "top1_agreement": p.top1_agreement,
            "accuracy": p.accuracy_tflite,
            "accuracy_original": p.accuracy_original,
            "accuracy_drop": p.accuracy_drop,
            "cosine": min(o.cosine for o in self.outputs),
            "snr_db": _min_snr(self.outputs),
            "max_abs_error": max(o.max_abs_error for o in self.outputs),
            "mean_abs_error": p.mean_abs_error,
            "rmse": p.rmse,
            "verdict": self.verdict,
            "samples": self.samples,
            "data_source": self.data_source.value,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "tflite": self.tflite,
            "preset": self.preset,
            "signature_key": self.signature_key,
            "data_source": self.data_source.value,
            "data_name": self.data_name,
            "samples": self.samples,
            "outputs": [o.to_dict() for o in self.outputs],
            "verdict": self.verdict,
            "verdict_text": self.verdict_text,
            "flags": [f.to_dict() for f in self.flags],
            "seconds": self.seconds,
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AccuracyResult:
        return cls(
            tflite=d["tflite"],
            preset=d.get("preset"),
            signature_key=d["signature_key"],
            data_source=DataSource(d["data_source"]),
            data_name=d["data_name"],
            samples=int(d["samples"]),
            outputs=tuple(OutputMetrics.from_dict(o) for o in d["outputs"]),
            verdict=d["verdict"],
            verdict_text=d["verdict_text"],
            flags=tuple(Flag.from_dict(f) for f in d.get("flags", [])),
            seconds=float(d.get("seconds", 0.0)),
        )

    def to_text(self) -> str:
        lines = [
            f"{self.tflite} vs the original, on {self.samples} {_source_words(self)}:",
            f"verdict: {self.verdict} — {self.verdict_text}",
        ]
        for o in self.outputs:
            snr = "identical" if o.snr_db is None else f"{o.snr_db:.1f} dB"
            lines.append(
                f"  {o.name} {list(o.shape)} ({o.kind}): max |err| {o.max_abs_error:.4g}, "
                f"mean |err| {o.mean_abs_error:.4g}, RMSE {o.rmse:.4g}, cosine {o.cosine:.5f}, "
                f"SNR {snr}"
            )
            if o.top1_agreement is not None:
                lines.append(f"    top-1 agreement with the original: {o.top1_agreement:.2%}")
            if o.accuracy_original is not None and o.accuracy_tflite is not None:
                lines.append(
                    f"    accuracy: original {o.accuracy_original:.2%}, tflite "
                    f"{o.accuracy_tflite:.2%} (drop {o.accuracy_drop * 100:+.2f} points)"
                )
        for f in self.flags:
            lines.append(f"{f.severity}: {f.message}")
        return "\n".join(lines)


def _source_words(r: AccuracyResult) -> str:
    return {
        DataSource.USER: f"samples from {r.data_name}",
        DataSource.CALIBRATION: f"calibration samples ({r.data_name})",
        DataSource.SYNTHETIC: "random synthetic samples",
    }[r.data_source]


def _min_snr(outputs: Sequence[OutputMetrics]) -> float | None:
    vals = [o.snr_db for o in outputs if o.snr_db is not None]
    return min(vals) if vals else None


@dataclass(frozen=True)
class Reference:
    """The original model's outputs on the evaluation inputs, kept in a .npz
    (keys ``in__NAME``, ``out__NAME`` and ``labels``)."""

    npz_path: str
    model_name: str
    signature_key: str
    data_source: DataSource
    data_name: str
    samples: int
    inputs: dict[str, dict[str, Any]]  # name -> {"dtype", "shape"}
    outputs: dict[str, str]  # name -> kind ("classifier" | "binary" | "values")
    has_labels: bool
    flags: tuple[Flag, ...] = ()
    tf_version: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data_source"] = self.data_source.value
        d["flags"] = [f.to_dict() for f in self.flags]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reference:
        kw = dict(d)
        kw["data_source"] = DataSource(d["data_source"])
        kw["flags"] = tuple(Flag.from_dict(f) for f in d.get("flags", []))
        return cls(**kw)


# ---------------------------------------------------------------- metrics (pure numpy)


def _output_kind(ref: Any, labels: Any, task: str) -> str:
    import numpy as np

    n = ref.shape[0]
    per = int(np.prod(ref.shape[1:])) if ref.ndim > 1 else 1
    if ref.dtype.kind not in "fc" and task != "classification":
        return "values"
    flat = ref.reshape(n, per).astype(np.float64) if n else ref.reshape(0, per)
    has_labels = (
        labels is not None and labels.ndim == 1 and len(labels) == n
        and labels.dtype.kind in "iub"
    )
    if task == "regression":
        return "values"
    if per >= 2:
        if task == "classification":
            return "classifier"
        if has_labels and labels.min() >= 0 and labels.max() < per:
            return "classifier"
        if n and flat.min() >= -1e-6 and np.allclose(flat.sum(axis=1), 1.0, atol=1e-3):
            return "classifier"
        return "values"
    if per == 1:
        probs = n > 0 and flat.min() >= 0.0 and flat.max() <= 1.0
        if task == "classification":
            return "binary"
        if has_labels and probs and set(np.unique(labels).tolist()) <= {0, 1}:
            return "binary"
    return "values"


def compare_outputs(
    name: str, ref: Any, got: Any, *, kind: str = "values", labels: Any = None
) -> OutputMetrics:
    """Error metrics of ``got`` (the .tflite) against ``ref`` (the original),
    both shaped (samples, ...)."""
    import numpy as np

    r = np.asarray(ref, dtype=np.float64)
    g = np.asarray(got, dtype=np.float64)
    if r.shape != g.shape:
        if r.size == g.size:
            g = g.reshape(r.shape)
        else:
            raise EvaluateError(
                f"Output {name!r} has shape {list(g.shape)} in the .tflite but "
                f"{list(r.shape)} in the original.",
                "Convert again with the same input shapes as the evaluation data.",
            )
    n = r.shape[0]
    rf = r.reshape(n, -1)
    gf = g.reshape(n, -1)
    err = gf - rf
    finite = np.isfinite(err)
    if not finite.all():
        err = np.where(finite, err, np.nan)
    abs_err = np.abs(err)
    max_abs = float(np.nanmax(abs_err)) if abs_err.size else 0.0
    mean_abs = float(np.nanmean(abs_err)) if abs_err.size else 0.0
    rmse = float(math.sqrt(np.nanmean(err**2))) if err.size else 0.0
    # per sample, averaged; one value per sample: over the samples (a cosine of
    # single numbers is only their sign)
    cr, cg = (rf, gf) if rf.shape[1] > 1 else (rf.reshape(1, -1), gf.reshape(1, -1))
    nr = np.linalg.norm(np.nan_to_num(cr), axis=1)
    ng = np.linalg.norm(np.nan_to_num(cg), axis=1)
    dot = np.sum(np.nan_to_num(cr) * np.nan_to_num(cg), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(
            (nr == 0) & (ng == 0), 1.0, np.where((nr == 0) | (ng == 0), 0.0, dot / (nr * ng))
        )
    cosine = float(np.nanmean(np.clip(cos, -1.0, 1.0))) if n else 1.0
    sig = float(np.nansum(rf**2))
    noise = float(np.nansum(err**2))
    if noise == 0.0:
        snr = None
    elif sig == 0.0:
        snr = -math.inf
    else:
        snr = 10.0 * math.log10(sig / noise)
    if snr is not None and not math.isfinite(snr):
        snr = -999.0
    agree = acc_o = acc_t = None
    if kind == "classifier" and rf.shape[1] >= 2:
        pr, pg = rf.argmax(axis=1), gf.argmax(axis=1)
        agree = float((pr == pg).mean()) if n else None
        if labels is not None and len(labels) == n:
            lab = np.asarray(labels).reshape(-1)
            acc_o, acc_t = float((pr == lab).mean()), float((pg == lab).mean())
    elif kind == "binary":
        pr, pg = rf[:, 0] > 0.5, gf[:, 0] > 0.5
        agree = float((pr == pg).mean()) if n else None
        if labels is not None and len(labels) == n:
            lab = np.asarray(labels).reshape(-1).astype(bool)
            acc_o, acc_t = float((pr == lab).mean()), float((pg == lab).mean())
    return OutputMetrics(
        name=name,
        shape=tuple(int(d) for d in r.shape[1:]),
        kind=kind,
        max_abs_error=_r(max_abs),
        mean_abs_error=_r(mean_abs),
        rmse=_r(rmse),
        cosine=round(cosine, 7),
        snr_db=None if snr is None else round(snr, 3),
        top1_agreement=agree,
        accuracy_original=acc_o,
        accuracy_tflite=acc_t,
    )


def _r(v: float) -> float:
    return float(f"{v:.6g}") if math.isfinite(v) else v


def _verdict(outputs: Sequence[OutputMetrics], th: Thresholds) -> tuple[str, str]:
    """good / check / bad, with the reason in words."""
    worst = "good"
    reasons: list[str] = []
    rank = {"good": 0, "check": 1, "bad": 2}

    def bump(level: str, why: str) -> None:
        nonlocal worst
        if rank[level] > rank[worst]:
            worst = level
        if level != "good":
            reasons.append(why)

    for o in outputs:
        if o.is_classifier and o.top1_agreement is not None:
            a = o.top1_agreement
            if a < th.check_top1:
                bump("bad", f"{o.name}: agrees with the original on only {a:.1%} of samples")
            elif a < th.top1_agreement:
                bump("check", f"{o.name}: top-1 agreement {a:.1%} is below "
                              f"{th.top1_agreement:.0%}")
            drop = o.accuracy_drop
            if drop is not None and drop > 0.05:
                bump("bad", f"{o.name}: accuracy drops by {drop * 100:.1f} points")
            elif drop is not None and drop > 0.01:
                bump("check", f"{o.name}: accuracy drops by {drop * 100:.1f} points")
            continue
        snr = math.inf if o.snr_db is None else o.snr_db
        if o.cosine < th.check_cosine or snr < th.check_snr_db:
            bump("bad", f"{o.name}: cosine {o.cosine:.3f}, SNR {_snr_words(o.snr_db)}")
        elif o.cosine < th.cosine or snr < th.snr_db:
            bump("check", f"{o.name}: cosine {o.cosine:.4f}, SNR {_snr_words(o.snr_db)}")
    if worst == "good":
        p = next((o for o in outputs if o.is_classifier and o.top1_agreement is not None), None)
        if p is not None:
            text = f"Matches the original on {p.top1_agreement:.1%} of samples."
        else:
            o = outputs[0]
            text = (f"Outputs match the original closely (cosine {o.cosine:.4f}, SNR "
                    f"{_snr_words(o.snr_db)}).")
        return worst, text
    head = ("Large error against the original: " if worst == "bad"
            else "Some error against the original: ")
    return worst, head + "; ".join(reasons) + "."


def _snr_words(snr: float | None) -> str:
    return "∞ (identical)" if snr is None else f"{snr:.1f} dB"


def quantize_input(x: Any, details: dict[str, Any]) -> tuple[Any, float]:
    """Cast a float sample to a tensor's type: quantized inputs get
    ``round(x / scale + zero_point)``, clipped to the type's range. Returns the
    array and the fraction of values that were clipped."""
    import numpy as np

    dtype = np.dtype(details["dtype"])
    scale, zp = details.get("quantization") or (0.0, 0)
    qp = details.get("quantization_parameters") or {}
    scales = qp.get("scales")
    if scales is not None and len(scales) == 1:
        scale = float(scales[0])
        zp = int(qp.get("zero_points", [zp])[0])
    arr = np.asarray(x)
    if np.issubdtype(dtype, np.integer) and scale and arr.dtype.kind == "f":
        info = np.iinfo(dtype)
        q = np.round(arr.astype(np.float64) / scale + zp)
        clipped = float(np.mean((q < info.min) | (q > info.max))) if q.size else 0.0
        return np.clip(q, info.min, info.max).astype(dtype), clipped
    if arr.dtype != dtype:
        return arr.astype(dtype), 0.0
    return arr, 0.0


def dequantize_output(y: Any, details: dict[str, Any]) -> Any:
    import numpy as np

    arr = np.asarray(y)
    qp = details.get("quantization_parameters") or {}
    scales = np.asarray(qp.get("scales", []), dtype=np.float64)
    zps = np.asarray(qp.get("zero_points", []), dtype=np.float64)
    if arr.dtype.kind in "iu" and scales.size:
        if scales.size == 1:
            return (arr.astype(np.float64) - zps.reshape(-1)[0]) * scales[0]
        axis = int(qp.get("quantized_dimension", 0))
        shape = [1] * arr.ndim
        shape[axis] = -1
        return (arr.astype(np.float64) - zps.reshape(shape)) * scales.reshape(shape)
    return arr


def runtime_blocker(tflite: str | os.PathLike[str] | bytes) -> EvaluateError | None:
    """Why this server's LiteRT runtime cannot run the model, or None.

    ``ai_edge_litert`` ships no Flex delegate (and TensorFlow 2.21's own
    interpreter links none either), so Select TF ops cannot run here; custom
    ops need their implementation registered. The error says so plainly."""
    from core.errors import TFLiteFormatError
    from core.tflite_model import OpKind, read_model

    try:
        info = read_model(tflite, check_zeros=False)
    except TFLiteFormatError:
        return None  # let the runtime itself judge the file (it says what is wrong)
    flex = sorted({op.name for op in info.operators if op.kind is OpKind.SELECT_TF})
    custom = sorted({op.name for op in info.operators if op.kind is OpKind.CUSTOM})
    if flex:
        return EvaluateError(
            "This model uses Select TF ops (" + ", ".join(flex[:6])
            + ("…" if len(flex) > 6 else "") + "), which cannot run here: the LiteRT "
            "runtime on this server has no Flex delegate, so its accuracy and speed "
            "cannot be measured.",
            "On the device, link the Flex delegate (tensorflow-lite-select-tf-ops) and "
            "measure there; or change the model so it needs only builtin ops.",
            phase=Phase.EVALUATE,
            details={"reason": "select_tf_ops", "ops": flex, "cannot_run_here": True},
        )
    if custom:
        return EvaluateError(
            "This model uses custom ops (" + ", ".join(custom[:6]) + "), which cannot "
            "run here: their implementation lives in your app, not in this server's runtime.",
            "Measure accuracy and speed on the device where the custom ops are registered.",
            phase=Phase.EVALUATE,
            details={"reason": "custom_ops", "ops": custom, "cannot_run_here": True},
        )
    return None


# ---------------------------------------------------------------- worker: the original


def _load_eval_arrays(
    path: Path, source: CalibrationSource, inputs: list[Any], shapes: dict[str, tuple[int, ...]],
    image_range: tuple[float, float], max_samples: int, workdir: Path, what: str,
) -> tuple[dict[str, Any], Any]:
    """Arrays per input (+ labels or None) from a .npz/.npy or images."""
    import numpy as np

    from core.convert import _load_arrays, _load_images
    from core.errors import CalibrationError

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
            opts = ConversionOptions(calibration_path=str(path),
                                     calibration_source=CalibrationSource.IMAGES,
                                     calibration_samples=min(max_samples, 10_000),
                                     image_range=image_range)
            first = inputs[0]
            # the input's own shape: -1 height/width gets _load_images' clear error
            arrays = {first.name: _load_images(path, first, shapes[first.name], opts, workdir)}
        else:
            arrays = _load_arrays(path, inputs)
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


def _shape_samples(arr: Any, name: str, shape: tuple[int, ...]) -> Any:
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


def _data_flags(
    eval_arrays: dict[str, Any], cal_arrays: dict[str, Any] | None, source: DataSource,
    input_dtypes: dict[str, str],
) -> list[Flag]:
    """Check the data the quantization was fitted to against the data it is
    judged on: constant calibration, ranges that do not overlap (0..255 vs
    0..1), uint8 images fed unscaled to a float input."""
    import numpy as np

    flags: list[Flag] = []
    if cal_arrays:
        for name, cal in cal_arrays.items():
            c = np.asarray(cal)
            if c.dtype.kind not in "fiu" or not c.size:
                continue
            lo, hi = float(c.min()), float(c.max())
            if hi == lo:
                flags.append(Flag(
                    "calibration_constant", "error",
                    f"The calibration data for {name!r} is constant (every value is {lo:g}): "
                    "quantization ranges fitted to it cannot represent real inputs, so an "
                    "integer model will be badly wrong. Give a few hundred typical samples.",
                ))
                continue
            ev = eval_arrays.get(name)
            if ev is None or source is not DataSource.USER:
                continue
            e = np.asarray(ev, dtype=np.float64)
            span = hi - lo
            outside = float(np.mean((e < lo - 0.05 * span) | (e > hi + 0.05 * span)))
            if outside > 0.01:
                flags.append(Flag(
                    "range_mismatch", "warning",
                    f"{outside:.0%} of the evaluation values for {name!r} fall outside the "
                    f"calibration range [{lo:.4g}, {hi:.4g}] (evaluation data spans "
                    f"[{e.min():.4g}, {e.max():.4g}]): integer models clip them. If one set "
                    "is 0..255 and the other 0..1, scale them the same way.",
                ))
        if min((len(v) for v in cal_arrays.values()), default=100) < 50:
            flags.append(Flag(
                "few_calibration_samples", "warning",
                "Fewer than 50 calibration samples: the integer ranges may not cover real "
                "inputs; 100 to 500 typical samples are recommended.",
            ))
    for name, arr in eval_arrays.items():
        if np.asarray(arr).dtype == np.uint8 and input_dtypes.get(name, "").startswith("float"):
            flags.append(Flag(
                "uint8_input", "warning",
                f"The evaluation data for {name!r} is uint8 (0..255) but the model takes "
                f"{input_dtypes[name]}: the values were passed unscaled. If the model expects "
                "0..1 or -1..1, scale the data first.",
            ))
    if source is DataSource.CALIBRATION:
        flags.append(Flag(
            "calibration_is_eval", "info",
            "No evaluation data was given, so the calibration samples were used: the integer "
            "ranges were fitted to them, so the numbers may be optimistic. Give held-out "
            "data (with `labels`) for a fair check.",
        ))
    elif source is DataSource.SYNTHETIC:
        flags.append(Flag(
            "synthetic_data", "warning",
            "No evaluation or calibration data was given: the models were compared on random "
            "inputs. Agreement on random inputs says little about real accuracy; give "
            "evaluation data (a .npz keyed by input name, with `labels`).",
        ))
    return flags


def _reference_task(payload: dict[str, Any], workdir: Path,
                    progress: Callable[..., None]) -> dict[str, Any]:
    """Worker side of ``compute_reference``: TensorFlow runs the original."""
    import numpy as np

    from core.archive import ModelKind, UnpackLimits, prepare_model
    from core.convert import (
        _fixed_shapes,
        _keras_to_saved_model,
        _pick_signature,
        _read_signatures,
        synthetic_arrays,
    )

    t_start = time.perf_counter()
    name = str(payload.get("display_name") or Path(payload["model_path"]).name)
    opts = ConversionOptions.from_dict(payload.get("options") or {})
    max_samples = int(payload.get("max_samples") or DEFAULT_MAX_SAMPLES)
    task = str(payload.get("task") or "auto")
    out_npz = Path(payload["out_npz"])
    ul = UnpackLimits(**payload.get("unpack_limits", {}))
    progress("Unpacking the original model")
    with prepare_model(payload["model_path"], workdir, ul, display_name=name) as pm:
        if pm.kind is ModelKind.TFLITE:
            raise EvaluateError(
                f"{name} is a .tflite model; accuracy is measured against an original "
                "SavedModel or Keras model.",
                "Give the SavedModel (zip) or .keras file the .tflite was converted from.",
            )
        progress("Loading TensorFlow")
        import tensorflow as tf

        sm_dir = pm.path
        if pm.kind in (ModelKind.KERAS, ModelKind.H5):
            progress("Loading the Keras model (safe mode)")
            sm_dir = _keras_to_saved_model(pm.path, pm.kind, workdir, opts)
        sigs = _read_signatures(sm_dir)
        key = _pick_signature(sigs, opts.signature_key)
        inputs = sigs[key]
        shapes = _fixed_shapes(inputs, opts, [])
        progress("Reading the evaluation data")
        eval_path = payload.get("eval_path")
        cal_path = opts.calibration_path
        labels = None
        cal_arrays = None
        if cal_path:
            try:
                cal_arrays, _ = _load_eval_arrays(
                    Path(cal_path), opts.calibration_source, inputs, shapes, opts.image_range,
                    opts.calibration_samples, workdir, "calibration data")
            except EvaluateError:
                cal_arrays = None  # the conversion reports unusable calibration data
        if eval_path:
            src = DataSource.USER
            data_name = Path(eval_path).name
            eval_source = ConversionOptions(calibration_path=str(eval_path)).calibration_source
            arrays, labels = _load_eval_arrays(
                Path(eval_path), eval_source, inputs, shapes, opts.image_range, max_samples,
                workdir, "evaluation data")
        elif cal_arrays is not None:
            src = DataSource.CALIBRATION
            data_name = Path(cal_path).name
            arrays = {k: v[:max_samples] for k, v in cal_arrays.items()}
        else:
            src = DataSource.SYNTHETIC
            data_name = "random inputs"
            arrays = synthetic_arrays(inputs, shapes, SYNTHETIC_SAMPLES, seed=1)
        dtypes = {i.name: i.dtype for i in inputs}
        flags = _data_flags(arrays, cal_arrays, src, dtypes)
        feeds = {}
        for i in inputs:
            arr = _shape_samples(arrays[i.name], i.name, shapes[i.name])
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
                batch = {k: tf.constant(v[start:start + chunk]) for k, v in feeds.items()}
                if fixed_batch > 0 and len(next(iter(batch.values()))) != fixed_batch:
                    break  # a fixed batch size: the last partial batch is left out
                res = fn(**batch)
                for k, v in res.items():
                    outs.setdefault(k, []).append(np.asarray(v))
        except Exception as e:  # noqa: BLE001
            raise EvaluateError(
                f"The original model failed on the evaluation data: "
                f"{str(e).splitlines()[0][:300]}",
                "Check that the data matches the model's inputs (names, shapes, types).",
            ) from None
        out_arrays = {k: np.concatenate(v) for k, v in sorted(outs.items())}
        n = len(next(iter(out_arrays.values())))
        feeds = {k: v[:n] for k, v in feeds.items()}
        if labels is not None:
            labels = labels[:n]
        kinds = {k: _output_kind(v, labels, task) for k, v in out_arrays.items()}
        blob: dict[str, Any] = {f"in__{k}": v for k, v in feeds.items()}
        blob.update({f"out__{k}": v for k, v in out_arrays.items()})
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
    ).to_dict()


# ---------------------------------------------------------------- worker: the .tflite


def _match_names(want: Sequence[str], have: Sequence[str], what: str) -> dict[str, str]:
    """want-name -> have-name: by name, else by sorted position."""
    if set(want) <= set(have):
        return {w: w for w in want}
    if len(want) == len(have):
        return dict(zip(sorted(want), sorted(have)))
    raise EvaluateError(
        f"The .tflite {what} {sorted(have)} do not match the original's {sorted(want)}.",
        "Evaluate the .tflite against the model (and signature) it was converted from.",
    )


def _tflite_task(payload: dict[str, Any], workdir: Path,
                 progress: Callable[..., None]) -> dict[str, Any]:
    """Worker side of ``evaluate_tflite`` (LiteRT only, no TensorFlow)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    t0 = time.perf_counter()
    ref = Reference.from_dict(payload["reference"])
    path = Path(payload["tflite_path"])
    th = Thresholds(**(payload.get("thresholds") or {}))
    try:  # runtime_blocker was checked by the caller, evaluate_tflite
        interp = Interpreter(model_path=str(path), num_threads=1)
    except (RuntimeError, ValueError) as e:
        raise EvaluateError(
            f"The LiteRT runtime could not load {path.name}: {str(e).splitlines()[0][:300]}",
            "Check the file in Inspect.",
        ) from None
    sigs = interp.get_signature_list()
    if not sigs:
        raise EvaluateError(
            f"{path.name} has no signature, so its inputs cannot be matched by name.",
            "Convert with TFLite Studio (or TFLiteConverter.from_saved_model), which keeps "
            "the signature.",
        )
    key = ref.signature_key if ref.signature_key in sigs else (
        next(iter(sigs)) if len(sigs) == 1 else None)
    if key is None:
        raise EvaluateError(
            f"{path.name} has signatures {sorted(sigs)}; none is {ref.signature_key!r}.",
            "Evaluate the signature that was converted.",
        )
    runner = interp.get_signature_runner(key)
    in_details = runner.get_input_details()
    out_details = runner.get_output_details()
    in_map = _match_names(list(ref.inputs), list(in_details), "inputs")
    out_map = _match_names(list(ref.outputs), list(out_details), "outputs")
    with np.load(ref.npz_path, allow_pickle=False) as z:
        feeds = {k: z[f"in__{k}"] for k in ref.inputs}
        refs = {k: z[f"out__{k}"] for k in ref.outputs}
        labels = z["labels"] if "labels" in z.files else None
    n = ref.samples
    progress(f"Running {path.name} on {n} samples")
    got: dict[str, list[Any]] = {k: [] for k in ref.outputs}
    clipped: dict[str, float] = {}
    flags: list[Flag] = list(ref.flags)
    try:
        for i in range(n):
            kw = {}
            for name, tname in in_map.items():
                q, c = quantize_input(feeds[name][i:i + 1], in_details[tname])
                if c:
                    clipped[name] = clipped.get(name, 0.0) + c
                kw[tname] = q
            if i:  # recurrent state (LSTM variables) must not leak between samples
                interp.reset_all_variables()
            res = runner(**kw)
            for name, tname in out_map.items():
                got[name].append(dequantize_output(res[tname], out_details[tname]))
    except (RuntimeError, ValueError) as e:
        raise EvaluateError(
            f"{path.name} failed while running: {str(e).splitlines()[0][:300]}",
            "Check the input shapes; a model with dynamic shapes may need --input-shape "
            "when converting.",
        ) from None
    for name, total in clipped.items():
        frac = total / max(n, 1)
        if frac > 0.01:
            d = in_details[in_map[name]]
            scale, zp = d["quantization"]
            info = np.iinfo(np.dtype(d["dtype"]))
            lo, hi = (info.min - zp) * scale, (info.max - zp) * scale
            flags.append(Flag(
                "input_clipped", "warning",
                f"{frac:.1%} of the input values for {name!r} fall outside what the "
                f"{np.dtype(d['dtype']).name} input can represent ([{lo:.4g}, {hi:.4g}]) and "
                "were clipped: the calibration data did not cover the data the model sees "
                "(for example 0..255 against 0..1).",
            ))
    outputs = []
    for name in ref.outputs:
        g = np.concatenate(got[name]) if got[name] else np.zeros((0,))
        outputs.append(compare_outputs(name, refs[name], g, kind=ref.outputs[name],
                                       labels=labels))
    verdict, text = _verdict(outputs, th)
    if verdict == "bad":
        flags.insert(0, Flag("large_error", "error", text))
    return AccuracyResult(
        tflite=str(payload.get("display_name") or path.name),
        preset=payload.get("preset"),
        signature_key=key,
        data_source=ref.data_source,
        data_name=ref.data_name,
        samples=n,
        outputs=tuple(outputs),
        verdict=verdict,
        verdict_text=text,
        flags=tuple(flags),
        seconds=round(time.perf_counter() - t0, 3),
    ).to_dict()


# ---------------------------------------------------------------- caller side


def _resolved(p: str | os.PathLike[str] | None) -> str | None:
    return os.path.abspath(p) if p else None  # keep the name (links are not followed)


def _base_options(
    options: ConversionOptions | dict[str, Any] | None, calibration_data: Any
) -> ConversionOptions:
    if isinstance(options, ConversionOptions):
        d = options.to_dict()
    else:
        d = dict(options or {})
    if calibration_data:
        d["calibration_path"] = _resolved(calibration_data)
        d["calibration_source"] = "none"
    elif d.get("calibration_path"):
        d["calibration_path"] = _resolved(d["calibration_path"])
    d.setdefault("preset", Preset.FLOAT32.value)
    d["keep_float_ops"] = list(d.get("keep_float_ops") or [])
    if d["keep_float_ops"] and Preset(d["preset"]) is not Preset.INT8_FLOAT_IO:
        d["keep_float_ops"] = []
    return ConversionOptions.from_dict(d)


def compute_reference(
    model_path: str | os.PathLike[str],
    *,
    workdir: str | os.PathLike[str],
    eval_data: str | os.PathLike[str] | None = None,
    calibration_data: str | os.PathLike[str] | None = None,
    options: ConversionOptions | dict[str, Any] | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    task: str = "auto",
    display_name: str | None = None,
    limits: Any = None,
    pool: Any = None,
    on_progress: Callable[[str], None] | None = None,
    cancel: Any = None,
) -> Reference:
    """Run the original model (TensorFlow, in a worker) on the evaluation
    inputs; the result is kept in ``workdir/reference.npz``."""
    from core.worker import run_isolated

    if task not in ("auto", "classification", "regression"):
        raise OptionsError(f"Unknown task {task!r}.",
                           "Use auto, classification or regression.")
    wd = Path(workdir).resolve()
    opts = _base_options(options, calibration_data)
    payload = {
        "mode": "reference",
        "model_path": os.path.abspath(model_path),
        "display_name": display_name or Path(model_path).name,
        "options": opts.to_dict(),
        "eval_path": _resolved(eval_data),
        "max_samples": int(max_samples),
        "task": task,
        "out_npz": str(wd / "reference.npz"),
    }
    out = run_isolated("evaluate", payload, workdir=wd / "reference", limits=limits,
                       phase=Phase.EVALUATE, pool=pool, on_progress=on_progress, cancel=cancel)
    return Reference.from_dict(out)


def evaluate_tflite(
    tflite_path: str | os.PathLike[str],
    reference: Reference,
    *,
    workdir: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    display_name: str | None = None,
    thresholds: Thresholds | None = None,
    limits: Any = None,
    on_progress: Callable[[str], None] | None = None,
    cancel: Any = None,
) -> AccuracyResult:
    """Run the .tflite on the reference inputs (LiteRT, in a light worker
    without TensorFlow) and compare. Raises ``EvaluateError`` when it cannot
    run here (``details["cannot_run_here"]``)."""
    from core.worker import run_isolated

    path = Path(os.path.abspath(tflite_path))
    blocker = runtime_blocker(path)
    if blocker is not None:
        raise blocker
    with work_folder(workdir, "tflite-eval-") as wd:
        payload = {
            "mode": "tflite",
            "tflite_path": str(path),
            "reference": reference.to_dict(),
            "preset": preset,
            "display_name": display_name or path.name,
            "thresholds": (thresholds or Thresholds()).to_dict(),
        }
        out = run_isolated("evaluate", payload, workdir=wd, limits=limits,
                           phase=Phase.EVALUATE, on_progress=on_progress, cancel=cancel)
        return AccuracyResult.from_dict(out)


def evaluate(
    model_path: str | os.PathLike[str],
    tflite_path: str | os.PathLike[str],
    *,
    eval_data: str | os.PathLike[str] | None = None,
    calibration_data: str | os.PathLike[str] | None = None,
    options: ConversionOptions | dict[str, Any] | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    task: str = "auto",
    preset: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    limits: Any = None,
    pool: Any = None,
    on_progress: Callable[[str], None] | None = None,
    cancel: Any = None,
) -> AccuracyResult:
    """The .tflite against the original model it was converted from."""
    with work_folder(workdir, "tflite-eval-") as wd:
        ref = compute_reference(model_path, workdir=wd, eval_data=eval_data,
                                calibration_data=calibration_data, options=options,
                                max_samples=max_samples, task=task, limits=limits, pool=pool,
                                on_progress=on_progress, cancel=cancel)
        return evaluate_tflite(tflite_path, ref, workdir=wd / "tflite", preset=preset,
                               limits=limits, on_progress=on_progress, cancel=cancel)


# ---------------------------------------------------------------- sweep


@dataclass(frozen=True)
class SweepRow:
    """One preset (or variant) of a sweep."""

    preset: str
    label: str  # "int8", or "int8-float-io, 3 layers in float"
    size_bytes: int | None = None
    latency_ms: float | None = None  # median, at ``latency_threads``
    latency_threads: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # AccuracyResult.summary()
    error: dict[str, Any] | None = None  # StudioError.to_dict() of the failed step
    failed_step: str | None = None  # "convert" | "evaluate" | "benchmark"
    note: str = ""  # a plain sentence for the table
    warnings: tuple[str, ...] = ()
    conversion_seconds: float | None = None
    sha256: str | None = None
    tflite_path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] | None = None  # AccuracyResult.to_dict()
    latency: dict[str, Any] | None = None  # LatencyResult.to_dict()
    pareto: bool = False
    artifact_sha: str | None = None  # set by the job runner

    @property
    def converted(self) -> bool:
        return self.size_bytes is not None

    @property
    def measured(self) -> bool:
        return bool(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepRow:
        kw = {k: d[k] for k in d if k in cls.__dataclass_fields__}
        kw["warnings"] = tuple(d.get("warnings") or ())
        return cls(**kw)


@dataclass(frozen=True)
class Recommendation:
    preset: str | None  # None: nothing can be recommended (the text says why)
    label: str | None
    rule: str  # e.g. "top1_agreement >= 0.99"
    text: str  # plain words, rule explained
    passing: tuple[str, ...] = ()  # labels of the rows that met the rule

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passing"] = list(self.passing)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recommendation:
        return cls(d.get("preset"), d.get("label"), d["rule"], d["text"],
                   tuple(d.get("passing") or ()))


@dataclass(frozen=True)
class SweepReport:
    model: str
    model_size: int
    signature_key: str | None
    data: dict[str, Any]  # source, name, samples, has_labels
    calibration: str | None  # calibration file name, None: synthetic
    rows: tuple[SweepRow, ...]
    recommendation: Recommendation
    thresholds: Thresholds
    flags: tuple[Flag, ...] = ()
    layer_errors: tuple[dict[str, Any], ...] = ()  # LayerErrorReport.to_dict() per preset
    threads: tuple[int, ...] = (1,)
    runs: int = 50
    seconds: float = 0.0
    tf_version: str = ""

    def row(self, label: str) -> SweepRow | None:
        return next((r for r in self.rows if r.label == label or r.preset == label), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "tool": "tflite-studio",
            "kind": "sweep",
            "model": {"name": self.model, "size_bytes": self.model_size,
                      "signature_key": self.signature_key},
            "data": self.data,
            "calibration": self.calibration,
            "rows": [r.to_dict() for r in self.rows],
            "recommendation": self.recommendation.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "flags": [f.to_dict() for f in self.flags],
            "layer_errors": list(self.layer_errors),
            "threads": list(self.threads),
            "runs": self.runs,
            "seconds": self.seconds,
            "tf_version": self.tf_version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepReport:
        return cls(
            model=d["model"]["name"],
            model_size=int(d["model"]["size_bytes"]),
            signature_key=d["model"].get("signature_key"),
            data=dict(d.get("data") or {}),
            calibration=d.get("calibration"),
            rows=tuple(SweepRow.from_dict(r) for r in d["rows"]),
            recommendation=Recommendation.from_dict(d["recommendation"]),
            thresholds=Thresholds(**(d.get("thresholds") or {})),
            flags=tuple(Flag.from_dict(f) for f in d.get("flags", [])),
            layer_errors=tuple(d.get("layer_errors") or ()),
            threads=tuple(d.get("threads") or (1,)),
            runs=int(d.get("runs", 50)),
            seconds=float(d.get("seconds", 0.0)),
            tf_version=d.get("tf_version", ""),
        )


def _accuracy_key(m: dict[str, Any]) -> float:
    """Higher is better: agreement for classifiers, else cosine."""
    if m.get("top1_agreement") is not None:
        return float(m["top1_agreement"])
    return float(m.get("cosine") or 0.0)


def pareto_front(rows: Sequence[SweepRow]) -> set[str]:
    """Labels of the measured rows no other row beats on size, latency and
    accuracy at once (smaller, faster, more accurate; one strictly)."""
    cand = [r for r in rows if r.measured and r.size_bytes is not None]
    front = set()
    for r in cand:
        rl = r.latency_ms if r.latency_ms is not None else math.inf
        ra = _accuracy_key(r.metrics)
        dominated = False
        for o in cand:
            if o is r:
                continue
            ol = o.latency_ms if o.latency_ms is not None else math.inf
            oa = _accuracy_key(o.metrics)
            if (o.size_bytes <= r.size_bytes and ol <= rl and oa >= ra
                    and (o.size_bytes < r.size_bytes or ol < rl or oa > ra)):
                dominated = True
                break
        if not dominated:
            front.add(r.label)
    return front


def _passes(m: dict[str, Any], th: Thresholds) -> bool:
    if m.get("top1_agreement") is not None:
        return float(m["top1_agreement"]) >= th.top1_agreement
    snr = m.get("snr_db")
    snr_ok = snr is None or float(snr) >= th.snr_db
    return float(m.get("cosine") or 0.0) >= th.cosine and snr_ok


def recommend(rows: Sequence[SweepRow], thresholds: Thresholds | None = None,
              *, synthetic_data: bool = False) -> Recommendation:
    """The smallest measured row that meets the rule (ties: the faster one).

    Rule for classifiers: top-1 agreement with the original ≥ 99 %; for other
    outputs: cosine similarity ≥ 0.99 and SNR ≥ 20 dB on every output."""
    th = thresholds or Thresholds()
    measured = [r for r in rows if r.measured]
    classifier = any(r.metrics.get("top1_agreement") is not None for r in measured)
    if classifier:
        rule = f"top1_agreement >= {th.top1_agreement:g}"
        rule_words = (f"the smallest model whose top-1 prediction agrees with the original "
                      f"model's on at least {th.top1_agreement:.0%} of the evaluation samples")
    else:
        rule = f"cosine >= {th.cosine:g} and snr_db >= {th.snr_db:g}"
        rule_words = (f"the smallest model whose outputs stay close to the original's: "
                      f"cosine similarity at least {th.cosine:g} and signal-to-noise ratio at "
                      f"least {th.snr_db:g} dB on every output")
    if not measured:
        converted = [r for r in rows if r.converted]
        cannot = [r for r in rows if (r.error or {}).get("details", {}).get("cannot_run_here")]
        if cannot:
            text = ("Nothing could be measured on this server: " + cannot[0].note + " "
                    "Pick by size only after checking accuracy on the device"
                    + (f"; the smallest converted file is {min(converted, key=_size).label}."
                       if converted else "."))
        elif converted:
            text = "The converted models could not be run here, so no preset is recommended."
        else:
            text = "No preset converted, so there is nothing to recommend; see each row's error."
        return Recommendation(None, None, rule, text, ())
    passing = [r for r in measured if _passes(r.metrics, th)]
    if not passing:
        best = max(measured, key=lambda r: _accuracy_key(r.metrics))
        text = (f"No preset meets the rule ({rule_words}). The closest is {best.label} "
                f"({_acc_words(best.metrics)}). Ship float32, or improve the calibration data "
                "(more typical samples, the same scaling as real inputs) and run the sweep again.")
        return Recommendation(None, None, rule, text, ())
    pick = min(passing, key=lambda r: (_size(r), r.latency_ms if r.latency_ms is not None
                                       else math.inf))
    parts = [f"Ship **{pick.label}**: {_size_words(pick, rows)}, "
             f"{_latency_words(pick, rows)}, {_acc_words(pick.metrics)}."]
    parts.append(f"Rule: {rule_words}; ties go to the faster one.")
    timed = [r for r in passing if r.latency_ms]
    fastest = min(timed, key=lambda r: r.latency_ms) if timed else None
    if (fastest is not None and fastest is not pick and pick.latency_ms
            and pick.latency_ms > 1.2 * fastest.latency_ms):
        parts.append(f"If speed matters more than size, {fastest.label} is the fastest within "
                     f"the rule ({_ms_words(fastest.latency_ms)}, {_size_words(fastest, rows)}).")
    others = [r.label for r in passing if r.label != pick.label]
    if others:
        parts.append("Also within the rule: " + ", ".join(others) + ".")
    failing = [r for r in measured if r not in passing]
    if failing:
        parts.append("Outside the rule: " + ", ".join(
            f"{r.label} ({_acc_words(r.metrics)})" for r in failing) + ".")
    if any("random synthetic data" in w for w in pick.warnings):
        parts.append("Careful: this preset was calibrated on random data; give real "
                     "calibration samples before shipping it.")
    if synthetic_data:
        parts.append("The comparison ran on random inputs, so this says little about real "
                     "accuracy; give evaluation data.")
    return Recommendation(pick.preset, pick.label, rule, " ".join(parts),
                          tuple(r.label for r in passing))


def _size(r: SweepRow) -> int:
    return r.size_bytes if r.size_bytes is not None else 1 << 62


def _size_words(r: SweepRow, rows: Sequence[SweepRow]) -> str:
    base = next((x for x in rows if x.preset == Preset.FLOAT32.value and x.converted), None)
    s = f"{r.size_bytes / 1024:,.1f} KB"
    if base and base is not r and base.size_bytes:
        s += f" ({r.size_bytes / base.size_bytes:.0%} of float32)"
    return s


def _latency_words(r: SweepRow, rows: Sequence[SweepRow]) -> str:
    if r.latency_ms is None:
        return "latency not measured"
    s = f"{_ms_words(r.latency_ms)} median"
    base = next((x for x in rows if x.preset == Preset.FLOAT32.value and x.latency_ms), None)
    if base and base is not r and r.latency_ms > 0:
        ratio = base.latency_ms / r.latency_ms
        s += (f" ({ratio:.1f}× faster than float32)" if ratio >= 1.05 else
              f" ({1 / ratio:.1f}× slower than float32)" if ratio <= 0.95 else
              " (as fast as float32)")
    return s


def _ms_words(ms: float) -> str:
    """0.00129 -> "1.3 µs"; 12.3456 -> "12.3 ms"."""
    if ms < 0.1:
        return f"{ms * 1000:.3g} µs"
    return f"{ms:.3g} ms"


def _acc_words(m: dict[str, Any]) -> str:
    if m.get("top1_agreement") is not None:
        s = f"top-1 agreement {m['top1_agreement']:.1%}"
        if m.get("accuracy") is not None:
            s += f", accuracy {m['accuracy']:.1%}"
            drop = m.get("accuracy_drop")
            if drop is not None:
                s += (" (unchanged)" if abs(drop) < 0.0005
                      else f" ({-drop * 100:+.1f} points)")
        return s
    snr = m.get("snr_db")
    return f"cosine {m.get('cosine', 0):.4f}, SNR {_snr_words(snr)}"


def _label(options: ConversionOptions, base: ConversionOptions | None = None) -> str:
    """The row's name: the preset, plus what a variant changes."""
    parts = [options.preset.value]
    if options.keep_float_ops:
        n = len(options.keep_float_ops)
        parts.append(f"{n} layer{'s' if n != 1 else ''} in float")
    if base is not None and options.select_tf_ops != base.select_tf_ops:
        parts.append("Select TF ops" if options.select_tf_ops else "no Select TF ops")
    if base is not None and options.signature_key != base.signature_key:
        parts.append(f"signature {options.signature_key}")
    return ", ".join(parts)


def _check_cancel(cancel: Any) -> None:
    from core.worker import Cancelled

    if cancel is not None and cancel.is_set():
        raise Cancelled("The job was cancelled.", "", phase=Phase.EVALUATE)


def _err_dict(e: StudioError) -> dict[str, Any]:
    return e.to_dict()


def _plain(e: StudioError) -> str:
    return e.message


def sweep(
    model_path: str | os.PathLike[str],
    *,
    presets: Sequence[str] | None = None,
    variants: Sequence[ConversionOptions | dict[str, Any]] = (),
    calibration_data: str | os.PathLike[str] | None = None,
    eval_data: str | os.PathLike[str] | None = None,
    options: ConversionOptions | dict[str, Any] | None = None,
    threads: Sequence[int] = (1,),
    runs: int = 50,
    warmup: int = 10,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    task: str = "auto",
    layer_errors: bool = True,
    keep_worst: int = 0,
    thresholds: Thresholds | None = None,
    workdir: str | os.PathLike[str] | None = None,
    keep_dir: str | os.PathLike[str] | None = None,
    display_name: str | None = None,
    limits: Any = None,
    pool: Any = None,
    on_progress: Callable[[str], None] | None = None,
    cancel: Any = None,
) -> SweepReport:
    """Convert with each preset (each in its own worker), evaluate and time
    each, and recommend one. See the module doc.

    ``presets``: preset ids (None: all; empty: only the variants). ``variants``: extra
    ``ConversionOptions`` to try (e.g. int8-float-io with layers kept in
    float). ``options``: base converter options (select TF ops, signature,
    input shapes...). ``keep_worst``: also try int8-float-io with the N layers
    the int8 debugger finds worst kept in float (mixed precision; needs
    ``layer_errors``). ``keep_dir``: where the ``.tflite`` files are kept
    (default: deleted with the work folder)."""
    from core.benchmark import benchmark
    from core.convert import convert_model
    from core.worker import Cancelled, WarmPool

    t0 = time.perf_counter()
    th = thresholds or Thresholds()
    say = on_progress or (lambda m: None)
    model = Path(os.path.abspath(model_path))
    name = display_name or model.name
    base = _base_options(options, calibration_data)
    ids = list(PRESET_ORDER) if presets is None else list(presets)
    for p in ids:
        try:
            Preset(p)
        except ValueError:
            raise OptionsError(
                f"Unknown preset {p!r}.",
                "Choose from: " + ", ".join(PRESET_ORDER) + ".",
            ) from None
    ids = [p for p in PRESET_ORDER if p in ids]
    plans: list[ConversionOptions] = []
    for p in ids:
        plans.append(ConversionOptions.from_dict({**base.to_dict(), "preset": p,
                                                  "keep_float_ops": []}))
    for v in variants:
        vd = v.to_dict() if isinstance(v, ConversionOptions) else dict(v)
        plans.append(ConversionOptions.from_dict({**base.to_dict(), **vd,
                                                  "calibration_path": base.calibration_path,
                                                  "calibration_source":
                                                      base.calibration_source.value}))
    labels: list[str] = []
    for opts in plans:
        labels.append(_unique_label(_label(opts, base), labels))
    own_wd = workdir is None
    wd = Path(workdir or tempfile.mkdtemp(prefix="tflite-sweep-")).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    out_dir = Path(keep_dir).resolve() if keep_dir else wd / "models"
    out_dir.mkdir(parents=True, exist_ok=True)
    own_pool = pool is None
    if own_pool:
        # two warm workers: the next conversion's TensorFlow import overlaps this one
        pool = WarmPool(size=min(2, os.cpu_count() or 1), limits=limits, log_dir=wd / "logs")
        pool.fill()
    rows: dict[str, SweepRow] = {}
    flags: list[Flag] = []
    layer_reports: list[dict[str, Any]] = []
    ref: Reference | None = None
    try:
        # 1. the original, once
        say("Running the original model on the evaluation data")
        ref = compute_reference(model, workdir=wd / "ref", eval_data=eval_data,
                                options=base, max_samples=max_samples, task=task,
                                display_name=name, limits=limits, pool=pool,
                                on_progress=say, cancel=cancel)
        flags.extend(ref.flags)
        # 2. one conversion per worker process
        paths: dict[str, Path] = {}

        def convert(k: int, opts: ConversionOptions, label: str, total: int) -> None:
            _check_cancel(cancel)
            say(f"Converting with {label} ({k}/{total})")
            stem = label.replace(", ", "-").replace(" ", "_")
            out = out_dir / f"{Path(name).stem}-{stem}.tflite"
            try:
                res = convert_model(model, out, opts, workdir=wd / "convert" / f"{k}",
                                    display_name=name, limits=limits, pool=pool, cancel=cancel)
            except Cancelled:
                raise
            except StudioError as e:
                rows[label] = SweepRow(
                    preset=opts.preset.value, label=label, error=_err_dict(e),
                    failed_step="convert", note="Did not convert: " + _plain(e),
                    options=opts.to_dict())
                return
            paths[label] = out
            rows[label] = SweepRow(
                preset=opts.preset.value, label=label, size_bytes=res.output_size,
                warnings=res.warnings, conversion_seconds=res.seconds,
                sha256=res.output_sha256, tflite_path=str(out), options=opts.to_dict())

        total = len(plans) + (1 if keep_worst > 0 and layer_errors else 0)
        for k, opts in enumerate(plans, 1):
            convert(k, opts, labels[k - 1], total)
        # 3. per-layer quantization error (TensorFlow's debugger, in a worker)
        if layer_errors:
            layer_reports.extend(_layer_reports(model, name, plans, rows, paths, ref, eval_data,
                                                base, wd, limits, pool, say, cancel, flags))
        # 3b. mixed precision: the worst int8 layers kept in float
        debugged = next((le for le in layer_reports
                         if le.get("method") == "quantization_debugger"), None)
        if keep_worst > 0 and debugged is not None:
            from core.quant_debug import LayerErrorReport

            keep = LayerErrorReport.from_dict(debugged).worst_n(keep_worst)
            if keep:
                opts = ConversionOptions.from_dict({
                    **base.to_dict(), "preset": Preset.INT8_FLOAT_IO.value,
                    "keep_float_ops": list(keep)})
                label = _unique_label(_label(opts, base), labels)
                plans.append(opts)
                labels.append(label)
                convert(len(plans), opts, label, len(plans))
        if own_pool:
            pool.close()  # nothing of ours competes with the timing below
        # 4. accuracy and latency, each in a light worker without TensorFlow
        for label, out in paths.items():
            _check_cancel(cancel)
            row = rows[label]
            say(f"Measuring accuracy of {label}")
            try:
                acc = evaluate_tflite(out, ref, workdir=wd / "eval" / _safe(label),
                                      preset=row.preset, thresholds=th, limits=limits,
                                      cancel=cancel)
            except Cancelled:
                raise
            except StudioError as e:
                note = ("Cannot run here: " if e.details.get("cannot_run_here")
                        else "Could not be measured: ") + _plain(e)
                rows[label] = replace(row, error=_err_dict(e), failed_step="evaluate",
                                      note=note)
                continue
            row = replace(row, metrics=acc.summary(), accuracy=acc.to_dict(),
                          note=acc.verdict_text)
            say(f"Timing {label}")
            try:
                lat = benchmark(out, threads=tuple(threads), runs=runs, warmup=warmup,
                                sample_npz=ref.npz_path, workdir=wd / "bench" / _safe(label),
                                limits=limits, cancel=cancel)
                first = _headline_latency(lat, threads)
                row = replace(row, latency_ms=first.p50_ms, latency_threads=first.threads,
                              latency=lat.to_dict())
            except Cancelled:
                raise
            except StudioError as e:
                row = replace(row, error=_err_dict(e), failed_step="benchmark",
                              note=row.note + " Latency could not be measured: " + _plain(e))
            rows[label] = row
    except BaseException:
        if own_wd:  # a failed or cancelled sweep leaves no files behind
            shutil.rmtree(wd, ignore_errors=True)
        raise
    finally:
        if own_pool:
            pool.close()
    ordered = [rows[lab] for lab in labels if lab in rows]
    front = pareto_front(ordered)
    ordered = [replace(r, pareto=r.label in front) for r in ordered]
    synthetic = ref is not None and ref.data_source is DataSource.SYNTHETIC
    rec = recommend(ordered, th, synthetic_data=synthetic)
    if not base.calibration_path and any(Preset(p).needs_calibration for p in ids):
        flags.append(Flag(
            "synthetic_calibration", "warning",
            "No calibration data was given: the int8 and 16x8 presets were calibrated on "
            "random data and their accuracy is likely far worse than with real samples.",
        ))
    report = SweepReport(
        model=name,
        model_size=model.stat().st_size if model.is_file() else _dir_size(model),
        signature_key=ref.signature_key if ref else None,
        data={"source": ref.data_source.value if ref else None,
              "name": ref.data_name if ref else None,
              "samples": ref.samples if ref else 0,
              "has_labels": ref.has_labels if ref else False,
              "outputs": ref.outputs if ref else {}},
        calibration=Path(base.calibration_path).name if base.calibration_path else None,
        rows=tuple(ordered),
        recommendation=rec,
        thresholds=th,
        flags=tuple(_dedupe(flags)),
        layer_errors=tuple(layer_reports),
        threads=tuple(threads),
        runs=runs,
        seconds=round(time.perf_counter() - t0, 2),
        tf_version=ref.tf_version if ref else "",
    )
    if own_wd:
        shutil.rmtree(wd, ignore_errors=True)
        if keep_dir is None:  # the files went with the work folder
            report = replace(report, rows=tuple(replace(r, tflite_path=None)
                                                for r in report.rows))
    return report


def _headline_latency(lat: Any, threads: Sequence[int]) -> Any:
    """The figure a row shows: the fewest threads measured (every row alike)."""
    return lat.at(min(threads)) or lat.best


def _unique_label(label: str, taken: Sequence[str]) -> str:
    while label in taken:
        label += " (again)"
    return label


def _dedupe(flags: Sequence[Flag]) -> list[Flag]:
    seen, out = set(), []
    for f in flags:
        if (f.code, f.message) not in seen:
            seen.add((f.code, f.message))
            out.append(f)
    return out


def _dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _layer_reports(model: Path, name: str, plans: Sequence[ConversionOptions],
                   rows: dict[str, SweepRow], paths: dict[str, Path], ref: Reference,
                   eval_data: Any, base: ConversionOptions, wd: Path, limits: Any, pool: Any,
                   say: Callable[[str], None], cancel: Any,
                   flags: list[Flag]) -> list[dict[str, Any]]:
    """int8 (the debugger; also stands for int8-float-io) and int16x8 (tensor
    by tensor against float32)."""
    from core.quant_debug import compare_layers, debug_layers
    from core.worker import Cancelled

    out: list[dict[str, Any]] = []
    plain = {p.preset.value for p in plans if not p.keep_float_ops}
    int8 = next((p for p in (Preset.INT8_FLOAT_IO.value, Preset.INT8.value)
                 if p in plain and p in paths), None)
    if int8 is not None:
        _check_cancel(cancel)
        say("Measuring the quantization error of each layer (int8)")
        try:
            rep = debug_layers(model, {**base.to_dict(), "preset": int8},
                               debug_npz=ref.npz_path, workdir=wd / "layers-int8",
                               display_name=name, limits=limits, pool=pool, cancel=cancel)
            out.append(rep.to_dict())
        except Cancelled:
            raise
        except StudioError as e:
            flags.append(Flag("layer_errors_failed", "warning",
                              "The per-layer error of int8 could not be measured: " + e.message))
    f32 = paths.get(Preset.FLOAT32.value)
    i16 = paths.get(Preset.INT16X8.value)
    if f32 is not None and i16 is not None and Preset.INT16X8.value in plain:
        _check_cancel(cancel)
        say("Measuring the quantization error of each layer (int16x8)")
        try:
            rep = compare_layers(f32, i16, ref, preset=Preset.INT16X8.value,
                                 workdir=wd / "layers-int16", limits=limits, cancel=cancel)
            out.append(rep.to_dict())
        except Cancelled:
            raise
        except StudioError as e:
            if not e.details.get("cannot_run_here"):
                flags.append(Flag("layer_errors_failed", "warning",
                                  "The per-layer error of int16x8 could not be measured: "
                                  + e.message))
    return out


def render_sweep(report: SweepReport, fmt: str = "text") -> str:
    """``json``, ``text`` (terminal) or ``md``."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, default=_json_default)
    md = fmt == "md"
    head = ["preset", "size", "latency ms", "top-1 agree", "accuracy", "cosine", "SNR dB",
            "verdict", "pareto"]
    rows = []
    for r in report.rows:
        m = r.metrics
        rows.append([
            r.label,
            f"{r.size_bytes:,}" if r.size_bytes is not None else "–",
            f"{r.latency_ms:.4f}" if r.latency_ms is not None else "–",
            f"{m['top1_agreement']:.2%}" if m.get("top1_agreement") is not None else "–",
            f"{m['accuracy']:.2%}" if m.get("accuracy") is not None else "–",
            f"{m['cosine']:.5f}" if m.get("cosine") is not None else "–",
            ("∞" if m.get("snr_db") is None else f"{m['snr_db']:.1f}") if m else "–",
            m.get("verdict", "failed" if r.error else "–") if m else (
                "can't run here" if (r.error or {}).get("details", {}).get("cannot_run_here")
                else "failed" if r.error else "–"),
            "yes" if r.pareto else "",
        ])
    lines = [f"Sweep of {report.model}: {report.data.get('samples')} samples from "
             f"{report.data.get('name')} ({report.data.get('source')}), "
             f"latency at {min(report.threads)} thread(s), {report.runs} runs", ""]
    if md:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines.extend("| " + " | ".join(r) + " |" for r in rows)
    else:
        widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i])
                  for i in range(len(head))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    notes = [(r.label, r.note) for r in report.rows if r.error]
    if notes:
        lines.append("")
        lines.extend(f"{lab}: {n}" for lab, n in notes)
    lines.append("")
    lines.append("Recommendation: " + report.recommendation.text.replace("**", ""))
    for f in report.flags:
        lines.append(f"{f.severity}: {f.message}")
    for le in report.layer_errors:
        by_name = {x["tensor"]: x for x in le.get("layers", [])}
        metric = le.get("metric", "rmse_over_scale")
        words = "rmse/scale" if metric == "rmse_over_scale" else "relative rmse"
        worst = [by_name[w] for w in (le.get("worst") or [])[:3] if w in by_name]
        if worst:
            lines.append(f"worst layers ({le.get('preset')}, {words}): " + "; ".join(
                f"{w['tensor'][:60]} ({w[metric]:.3g})" for w in worst))
    return "\n".join(lines) + "\n"


def _json_default(o: Any) -> Any:
    if isinstance(o, enum.Enum):
        return o.value
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


# ---------------------------------------------------------------- worker entries


def run_evaluate_task(payload: dict[str, Any], workdir: Path,
                      progress: Callable[..., None]) -> dict[str, Any]:
    """``core._worker`` task ``evaluate``; ``payload["mode"]`` picks the step:
    ``reference`` (TensorFlow runs the original), ``tflite`` (LiteRT runs the
    .tflite and compares), ``benchmark`` (latency), ``layers`` (tensor-by-tensor
    error of a quantized model against its float32 build)."""
    mode = payload.get("mode", "reference")
    if mode == "reference":
        return _reference_task(payload, workdir, progress)
    if mode == "tflite":
        return _tflite_task(payload, workdir, progress)
    if mode == "benchmark":
        from core.benchmark import measure_latency

        return measure_latency(payload, progress)
    if mode == "layers":
        from core.quant_debug import compare_layers_task

        return compare_layers_task(payload, workdir, progress)
    raise EvaluateError(f"Unknown evaluation step {mode!r}.", "This is a bug in TFLite Studio.")


def run_quant_debug_task(payload: dict[str, Any], workdir: Path,
                         progress: Callable[..., None]) -> dict[str, Any]:
    """``core._worker`` task ``quant_debug``: TensorFlow's QuantizationDebugger."""
    from core.quant_debug import debug_layers_task

    return debug_layers_task(payload, workdir, progress)


# ---------------------------------------------------------------- jobs


def _job_options(ctx: Any) -> dict[str, Any]:
    d = dict(ctx.job.params.get("options") or {})
    d.pop("calibration_path", None)
    d.pop("calibration_source", None)
    cal = ctx.file("calibration")
    if cal is not None:
        d["calibration_path"] = str(cal)
    return d


def _store_rows(ctx: Any, report: SweepReport) -> SweepReport:
    rows = []
    for r in report.rows:
        if r.tflite_path and Path(r.tflite_path).is_file():
            sha, _ = ctx.store.put_artifact(r.tflite_path)
            r = replace(r, artifact_sha=sha, tflite_path=None)
        else:
            r = replace(r, tflite_path=None)
        rows.append(r)
    return replace(report, rows=tuple(rows))


def _run_sweep_job(ctx: Any) -> dict[str, Any]:
    """JobKind.SWEEP: params ``presets``, ``variants``, ``options``, ``threads``,
    ``runs``, ``task``, ``layer_errors``, ``keep_worst``; files ``calibration``,
    ``eval``."""
    p = ctx.job.params
    report = sweep(
        ctx.input_path,
        presets=p.get("presets") or None,
        variants=p.get("variants") or (),
        options=_job_options(ctx),
        eval_data=ctx.file("eval"),
        threads=tuple(p.get("threads") or (1,)),
        runs=int(p.get("runs", 50)),
        task=str(p.get("task") or "auto"),
        layer_errors=bool(p.get("layer_errors", True)),
        keep_worst=int(p.get("keep_worst") or 0),
        workdir=ctx.workdir / "sweep",
        keep_dir=ctx.workdir / "models",
        display_name=ctx.job.model_name,
        limits=ctx.limits,
        pool=ctx.pool,
        on_progress=ctx.progress,
        cancel=ctx.cancel,
    )
    report = _store_rows(ctx, report)
    ctx.progress("Saving the report")
    data = report.to_dict()
    report_sha, _ = ctx.store.put_artifact(
        json.dumps(data, indent=2, default=_json_default).encode())
    rec = report.row(report.recommendation.label) if report.recommendation.label else None
    return {"sweep": data, "report_sha": report_sha,
            "output_sha": rec.artifact_sha if rec else None,
            "output_size": rec.size_bytes if rec else None}


def _run_evaluate_job(ctx: Any) -> dict[str, Any]:
    """JobKind.EVALUATE: one conversion (``options``), or a given ``tflite``
    file, checked against the original: a single sweep row. Used by the
    "re-convert keeping the worst layers in float" button."""
    p = ctx.job.params
    given = ctx.file("tflite")
    if given is None:
        report = sweep(
            ctx.input_path, presets=[], variants=[dict(p.get("options") or {})],
            options=_job_options(ctx), eval_data=ctx.file("eval"),
            threads=tuple(p.get("threads") or (1,)), runs=int(p.get("runs", 50)),
            task=str(p.get("task") or "auto"), layer_errors=False,
            workdir=ctx.workdir / "sweep", keep_dir=ctx.workdir / "models",
            display_name=ctx.job.model_name, limits=ctx.limits, pool=ctx.pool,
            on_progress=ctx.progress, cancel=ctx.cancel,
        )
        report = _store_rows(ctx, report)
        row = report.rows[0] if report.rows else None
        return {"row": row.to_dict() if row else None, "sweep": report.to_dict(),
                "output_sha": row.artifact_sha if row else None,
                "output_size": row.size_bytes if row else None}
    from core.benchmark import benchmark

    limits = ctx.limits
    ref = compute_reference(ctx.input_path, workdir=ctx.workdir / "ref",
                            eval_data=ctx.file("eval"), options=_job_options(ctx),
                            task=str(p.get("task") or "auto"), display_name=ctx.job.model_name,
                            limits=limits, pool=ctx.pool, on_progress=ctx.progress,
                            cancel=ctx.cancel)
    ctx.progress(f"Measuring accuracy of {given.name}")
    acc = evaluate_tflite(given, ref, workdir=ctx.workdir / "eval", limits=limits,
                          cancel=ctx.cancel)
    ctx.progress(f"Timing {given.name}")
    threads = tuple(p.get("threads") or (1,))
    lat = benchmark(given, threads=threads, runs=int(p.get("runs", 50)),
                    sample_npz=ref.npz_path, workdir=ctx.workdir / "bench", limits=limits,
                    cancel=ctx.cancel)
    first = _headline_latency(lat, threads)  # comparable with the sweep's rows
    row = SweepRow(preset="given", label=given.name, size_bytes=given.stat().st_size,
                   latency_ms=first.p50_ms, latency_threads=first.threads,
                   metrics=acc.summary(), accuracy=acc.to_dict(), latency=lat.to_dict(),
                   note=acc.verdict_text, artifact_sha=ctx.job.params["files"]["tflite"]["sha"])
    return {"row": row.to_dict(), "accuracy": acc.to_dict(), "latency": lat.to_dict()}


def register_runners() -> None:
    """Add the ``sweep`` and ``evaluate`` job kinds to ``core.jobs.RUNNERS``."""
    from core import jobs

    jobs.RUNNERS[jobs.JobKind.SWEEP] = _run_sweep_job
    jobs.RUNNERS[jobs.JobKind.EVALUATE] = _run_evaluate_job
