"""Error metrics of a ``.tflite`` against its original (pure NumPy), the
verdict rule, and the quantization arithmetic for inputs and outputs.

Shared by the worker that measures and the callers that judge and recommend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from core.errors import EvaluateError
from core.tasks.results import Flag, OutputMetrics, Thresholds

__all__ = [
    "output_kind",
    "compare_outputs",
    "verdict_of",
    "degenerate_flags",
    "snr_words",
    "quantize_input",
    "dequantize_output",
]


def output_kind(ref: Any, labels: Any, task: str) -> str:
    import numpy as np

    n = ref.shape[0]
    per = int(np.prod(ref.shape[1:])) if ref.ndim > 1 else 1
    if ref.dtype.kind not in "fc" and task != "classification":
        return "values"
    flat = ref.reshape(n, per).astype(np.float64) if n else ref.reshape(0, per)
    has_labels = (
        labels is not None and labels.ndim == 1 and len(labels) == n and labels.dtype.kind in "iub"
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
    cosine = _cosine(rf, gf)
    snr = _snr(rf, err)
    agree, acc_o, acc_t, classes = _agreement(kind, rf, gf, labels)
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
        nonfinite=int(np.count_nonzero(~np.isfinite(gf))),
        collapsed=n > 1 and _constant(gf) and not _constant(rf),
        constant_original=n > 1 and _constant(rf),
        original_classes=classes,
    )


def _cosine(rf: Any, gf: Any) -> float:
    """Per sample, averaged; with one value per sample, over the samples (a
    cosine of single numbers is only their sign)."""
    import numpy as np

    cr, cg = (rf, gf) if rf.shape[1] > 1 else (rf.reshape(1, -1), gf.reshape(1, -1))
    nr = np.linalg.norm(np.nan_to_num(cr), axis=1)
    ng = np.linalg.norm(np.nan_to_num(cg), axis=1)
    dot = np.sum(np.nan_to_num(cr) * np.nan_to_num(cg), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(
            (nr == 0) & (ng == 0), 1.0, np.where((nr == 0) | (ng == 0), 0.0, dot / (nr * ng))
        )
    return float(np.nanmean(np.clip(cos, -1.0, 1.0))) if rf.shape[0] else 1.0


def _snr(rf: Any, err: Any) -> float | None:
    """Signal-to-noise in dB; None when there is no noise, -999 for no signal."""
    import numpy as np

    sig = float(np.nansum(rf**2))
    noise = float(np.nansum(err**2))
    if noise == 0.0:
        return None
    if sig == 0.0:
        return -999.0
    snr = 10.0 * math.log10(sig / noise)
    return snr if math.isfinite(snr) else -999.0


def _agreement(
    kind: str, rf: Any, gf: Any, labels: Any
) -> tuple[float | None, float | None, float | None, int | None]:
    """Top-1 agreement, accuracy of both against labels, the original's class count."""
    import numpy as np

    n = rf.shape[0]
    if kind == "classifier" and rf.shape[1] >= 2:
        pr, pg = rf.argmax(axis=1), gf.argmax(axis=1)
    elif kind == "binary":
        pr, pg = rf[:, 0] > 0.5, gf[:, 0] > 0.5
    else:
        return None, None, None, None
    agree = float((pr == pg).mean()) if n else None
    classes = int(np.unique(pr).size) if n else None
    acc_o = acc_t = None
    if labels is not None and len(labels) == n:
        lab = np.asarray(labels).reshape(-1)
        if kind == "binary":
            lab = lab.astype(bool)
        acc_o, acc_t = float((pr == lab).mean()), float((pg == lab).mean())
    return agree, acc_o, acc_t, classes


def _constant(flat: Any) -> bool:
    """The same output for every sample, up to float noise: the spread across
    samples is under 0.1% of the output's scale."""
    import numpy as np

    x = np.nan_to_num(flat.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    spread = float(np.mean(np.std(x, axis=0)))
    scale = float(np.mean(np.abs(x)))
    return spread <= 1e-3 * scale or spread < 1e-9


def _r(v: float) -> float:
    return float(f"{v:.6g}") if math.isfinite(v) else v


def degenerate_flags(outputs: Sequence[OutputMetrics], th: Thresholds) -> list[Flag]:
    """Comparisons that cannot be called good, whatever one metric says."""
    flags: list[Flag] = []
    for o in outputs:
        snr = math.inf if o.snr_db is None else o.snr_db
        if o.nonfinite:
            flags.append(
                Flag(
                    "non_finite",
                    "error",
                    f"{o.name}: the .tflite gave {o.nonfinite:,} NaN or infinite values.",
                )
            )
        if o.collapsed:
            flags.append(
                Flag(
                    "collapsed_output",
                    "error",
                    f"{o.name}: the .tflite gives the same output for every input while the "
                    "original does not; the quantized model has collapsed (usually calibration "
                    "data that does not look like real inputs).",
                )
            )
        elif o.cosine < th.floor_cosine or snr < th.floor_snr_db:
            flags.append(
                Flag(
                    "low_fidelity",
                    "error",
                    f"{o.name}: the outputs differ from the original's (cosine {o.cosine:.3f}, "
                    f"SNR {snr_words(o.snr_db)}; a usable conversion keeps cosine at least "
                    f"{th.floor_cosine:g} and SNR at least {th.floor_snr_db:g} dB).",
                )
            )
        if o.constant_original:
            flags.append(
                Flag(
                    "constant_original",
                    "warning",
                    f"{o.name}: the original gives the same output for every sample, so this "
                    "comparison cannot tell a good conversion from a broken one; evaluate on "
                    "data whose outputs vary.",
                )
            )
        elif o.top1_agreement is not None and not o.top1_meaningful:
            flags.append(
                Flag(
                    "one_class_original",
                    "warning",
                    f"{o.name}: the original predicts one class for every sample, so top-1 "
                    "agreement means nothing here; judge by cosine and SNR, or evaluate on "
                    "data with several classes.",
                )
            )
    return flags


_RANK = {"good": 0, "check": 1, "bad": 2}


def verdict_of(outputs: Sequence[OutputMetrics], th: Thresholds) -> tuple[str, str]:
    """good / check / bad, with the reason in words. Degenerate comparisons
    (``degenerate_flags``) are never good."""
    worst = "good"
    reasons: list[str] = []
    measured_error = False  # a "check" from the numbers, not only from what cannot be judged

    def bump(level: str, why: str, error: bool = True) -> None:
        nonlocal worst, measured_error
        if _RANK[level] > _RANK[worst]:
            worst = level
        if level != "good":
            reasons.append(why)
            measured_error = measured_error or error

    for f in degenerate_flags(outputs, th):
        error = f.severity == "error"
        bump("bad" if error else "check", f.message.rstrip("."), error)
    for o in outputs:
        if o.is_classifier and o.top1_meaningful and o.top1_agreement is not None:
            a = o.top1_agreement
            if a < th.check_top1:
                bump("bad", f"{o.name}: agrees with the original on only {a:.1%} of samples")
            elif a < th.top1_agreement:
                bump("check", f"{o.name}: top-1 agreement {a:.1%} is below {th.top1_agreement:.0%}")
            drop = o.accuracy_drop
            if drop is not None and drop > 0.05:
                bump("bad", f"{o.name}: accuracy drops by {drop * 100:.1f} points")
            elif drop is not None and drop > 0.01:
                bump("check", f"{o.name}: accuracy drops by {drop * 100:.1f} points")
            continue
        snr = math.inf if o.snr_db is None else o.snr_db
        if o.cosine < th.check_cosine or snr < th.check_snr_db:
            bump("bad", f"{o.name}: cosine {o.cosine:.3f}, SNR {snr_words(o.snr_db)}")
        elif o.cosine < th.cosine or snr < th.snr_db:
            bump("check", f"{o.name}: cosine {o.cosine:.4f}, SNR {snr_words(o.snr_db)}")
    if worst == "good":
        return worst, _good_words(outputs)
    head = (
        "Large error against the original: "
        if worst == "bad"
        else "Some error against the original: "
        if measured_error
        else "Cannot be judged on these samples: "
    )
    return worst, head + "; ".join(dict.fromkeys(reasons)) + "."


def _good_words(outputs: Sequence[OutputMetrics]) -> str:
    o = next((o for o in outputs if o.is_classifier and o.top1_meaningful), None)
    cos = min(x.cosine for x in outputs)
    snrs = [x.snr_db for x in outputs if x.snr_db is not None]
    fidelity = f"cosine {cos:.4f}, SNR {snr_words(min(snrs) if snrs else None)}"
    if o is not None and o.top1_agreement is not None:
        return f"Matches the original on {o.top1_agreement:.1%} of samples ({fidelity})."
    return f"Outputs match the original closely ({fidelity})."


def snr_words(snr: float | None) -> str:
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
