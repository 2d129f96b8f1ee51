"""Synthetic inputs that respect the model: ids within their table, valid
padding masks, values in a stated range. One rule for every task that feeds
a model made-up data (calibration, evaluation, latency, the runs behind the
verdicts); a person's own data always wins over it."""

from __future__ import annotations

from typing import Any

__all__ = ["MASK", "synthetic_input", "mask_array"]

MASK = "mask"


def mask_array(shape: tuple[int, ...], dtype: Any, rng: Any) -> Any:
    """Per sample: ones over a random real length (at least half of the last
    axis), zeros after it, like a padded batch of sequences."""
    import numpy as np

    out = np.zeros(shape, dtype=np.float64)
    if not shape:
        return np.ones((), dtype=dtype)
    length = shape[-1]
    lead = out.reshape(-1, length) if length > 0 else out.reshape(-1, 1)
    for row in lead:
        real = int(rng.integers(max(1, (length + 1) // 2), length + 1)) if length > 0 else 0
        row[:real] = 1.0
    return lead.reshape(shape).astype(dtype)


def synthetic_input(
    shape: tuple[int, ...],
    dtype: Any,
    rng: Any,
    *,
    high: int | None = None,
    kind: str = "value",
) -> Any:
    """One input's array: ``kind`` "index" draws ids in ``[0, high)``, "mask" a
    padding mask, "value" floats uniform in [0, 1) (or small integers 0..9,
    booleans true)."""
    import numpy as np

    dt = np.dtype(dtype)
    if kind == MASK:
        return mask_array(shape, dt, rng)
    if dt == np.bool_:
        return np.ones(shape, dtype=dt)
    if np.issubdtype(dt, np.integer):
        if high is not None and high > 0:
            return rng.integers(0, high, size=shape).astype(dt)
        info = np.iinfo(dt)
        return rng.integers(max(info.min, 0), min(info.max, 9) + 1, size=shape).astype(dt)
    if np.issubdtype(dt, np.complexfloating):
        return rng.random(shape).astype(dt)
    return rng.random(shape, dtype=np.float64).astype(dt)
