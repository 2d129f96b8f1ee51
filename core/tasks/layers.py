"""Per-layer quantization error: the result type shared by both methods
(TensorFlow's QuantizationDebugger for int8, a tensor-by-tensor comparison in
LiteRT for int16x8), and the rule that ranks layers and names suspects."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from core.options import Preset
from core.serial import Serializable

__all__ = [
    "SUSPECT_RMSE_OVER_SCALE",
    "SUSPECT_RELATIVE_RMSE",
    "IDEAL_RMSE_OVER_SCALE",
    "WORST",
    "LayerError",
    "LayerErrorReport",
    "layer_error",
    "layer_report",
]

SUSPECT_RMSE_OVER_SCALE = 0.7  # TensorFlow's quantization debugger guide
SUSPECT_RELATIVE_RMSE = 0.05  # tensor_compare: error above 5% of the activation's RMS
IDEAL_RMSE_OVER_SCALE = 1 / math.sqrt(12)
WORST = 5


@dataclass(frozen=True)
class LayerError(Serializable):
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


@dataclass(frozen=True)
class LayerErrorReport(Serializable):
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
        return sorted(
            (x for x in self.layers if self.score(x) is not None),
            key=lambda x: -(self.score(x) or 0.0),
        )

    def worst_n(self, n: int) -> tuple[str, ...]:
        return tuple(x.tensor for x in self.ranked()[: max(0, n)])

    @property
    def suspects(self) -> tuple[LayerError, ...]:
        return tuple(x for x in self.layers if x.suspect)

    def to_text(self, top: int = 10) -> str:
        lines = [
            f"Per-layer quantization error ({self.preset}, {self.method}, "
            f"{self.samples} samples): {self.note}"
        ]
        label = "rmse/scale" if self.metric == "rmse_over_scale" else "rel. rmse"
        lines.append(f"{label:>10}  {'op':<18} tensor")
        for x in self.ranked()[:top]:
            v = self.score(x)
            r = "–" if v is None else f"{v:.3f}"
            mark = " !" if x.suspect else ""
            lines.append(f"{r:>10}  {x.op:<18} {x.tensor[:90]}{mark}")
        return "\n".join(lines)


def layer_error(
    index: int,
    op: str,
    tensor: str,
    tidx: int,
    n: int,
    mean: float,
    std: float,
    maxabs: float,
    mse: float,
    scale: float,
    zp: int,
    float_ms: float | None = None,
) -> LayerError:
    rmse = math.sqrt(mse) if mse >= 0 and math.isfinite(mse) else float("nan")
    ros = rmse / scale if scale and math.isfinite(rmse) else None
    rel = None
    if float_ms is not None:
        rel = rmse / math.sqrt(float_ms) if float_ms > 0 else (0.0 if rmse == 0 else None)
    if rel is not None:
        suspect = rel > SUSPECT_RELATIVE_RMSE
    else:
        suspect = ros is not None and ros > SUSPECT_RMSE_OVER_SCALE
    return LayerError(
        index=index,
        op=op,
        tensor=tensor,
        tensor_index=tidx,
        num_elements=n,
        mean_error=_f(mean),
        stddev=_f(std),
        max_abs_error=_f(maxabs),
        mean_squared_error=_f(mse),
        rmse=_f(rmse),
        scale=_f(scale),
        zero_point=int(zp),
        rmse_over_scale=None if ros is None else round(ros, 5),
        suspect=suspect,
        relative_rmse=None if rel is None else round(rel, 6),
    )


def _f(v: float) -> float:
    v = float(v)
    return float(f"{v:.6g}") if math.isfinite(v) else 0.0


def layer_report(
    preset: str, method: str, samples: int, layers: list[LayerError], t0: float
) -> LayerErrorReport:
    compare = method == "tensor_compare"
    metric = "relative_rmse" if compare else "rmse_over_scale"
    threshold = SUSPECT_RELATIVE_RMSE if compare else SUSPECT_RMSE_OVER_SCALE
    keep = (
        Preset.INT8_FLOAT_IO.value
        if preset in (Preset.INT8.value, Preset.INT8_FLOAT_IO.value)
        else None
    )
    report = LayerErrorReport(
        preset,
        method,
        samples,
        tuple(layers),
        (),
        keep,
        "",
        round(time.perf_counter() - t0, 3),
        metric,
        threshold,
    )
    ranked = report.ranked()
    sus = [x for x in layers if x.suspect]
    top = report.score(ranked[0]) if ranked else 0.0
    if not layers:
        note = "No quantized layer was found to measure."
    elif compare:
        note = (
            f"Error of each layer's output against the float32 model, relative to the "
            f"size of that output (worst {top:.1%}); errors add up along the network. "
        )
        note += (
            f"{len(sus)} of {len(layers)} layers exceed {threshold:.0%}."
            if sus
            else f"Every layer stays under {threshold:.0%}."
        )
    elif sus:
        note = (
            f"{len(sus)} of {len(layers)} layers have an error above "
            f"{SUSPECT_RMSE_OVER_SCALE} quantization steps (plain rounding gives about "
            f"{IDEAL_RMSE_OVER_SCALE:.2f}); keeping them in float usually recovers accuracy."
        )
    else:
        note = (
            f"Every layer stays within {SUSPECT_RMSE_OVER_SCALE} quantization steps "
            f"(worst {top:.2f}; plain rounding gives about {IDEAL_RMSE_OVER_SCALE:.2f})."
        )
    return replace(report, worst=report.worst_n(WORST), note=note)
