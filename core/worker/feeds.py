"""Valid made-up inputs for a ``.tflite`` run by LiteRT (the runs behind the
verdicts, latency): the graph's plan (``core.model.inputs``: ids within
their table, masks) drawn by ``core.tasks.synthetic``; quantized inputs get
quantized values of [0, 1)."""

from __future__ import annotations

from typing import Any

from core.model.inputs import InputKind, InputPlan
from core.tasks.synthetic import synthetic_input

__all__ = ["valid_input"]


def valid_input(
    name: str,
    dtype: Any,
    shape: list[int] | tuple[int, ...],
    plans: dict[str, InputPlan],
    rng: Any,
    quantization: tuple[float, int] = (0.0, 0),
) -> Any:
    import numpy as np

    dt = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    plan = plans.get(name)
    if plan is not None and plan.kind is InputKind.INDEX:
        return synthetic_input(shape, dt, rng, high=plan.high, kind="index")
    if plan is not None and plan.kind is InputKind.MASK:
        return synthetic_input(shape, dt, rng, kind="mask")
    scale, zero_point = quantization
    if scale and np.issubdtype(dt, np.integer):
        info = np.iinfo(dt)
        q = np.round(rng.random(shape) / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dt)
    return synthetic_input(shape, dt, rng)
