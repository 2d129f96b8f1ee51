"""How large the tables are that integer inputs index (token ids, segment
ids), learned from TensorFlow itself: the signature runs once per integer
input with an id no table holds, and the gather's error names the bound.
Synthetic ids are then drawn within it, so calibration and evaluation on
made-up data run the model the way real ids would."""

from __future__ import annotations

import re
from typing import Any

from core.model.inputs import is_mask_name
from core.tasks.results import SignatureInput
from core.tasks.shapes import suggest_shape
from core.tasks.synthetic import MASK, synthetic_input

__all__ = ["table_bounds"]

_BOUND = re.compile(r"indices\[[^\]]*\] = -?\d+ is not in \[0, (\d+)\)")


def _is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def table_bounds(
    tf: Any, fn: Any, inputs: list[SignatureInput], shapes: dict[str, tuple[int, ...]]
) -> dict[str, int]:
    """Input name -> the first dimension of the table its ids index."""
    import numpy as np

    ids = [i for i in inputs if _is_int(i.dtype) and not is_mask_name(i.name)]
    if not ids:
        return {}
    rng = np.random.default_rng(0)
    one = {i.name: (1, *suggest_shape(shapes[i.name])[1:]) for i in inputs}
    base = {
        i.name: synthetic_input(
            one[i.name], i.dtype, rng, kind=MASK if is_mask_name(i.name) else "value"
        )
        for i in inputs
    }
    if any(_is_int(i.dtype) for i in ids):
        base.update({i.name: np.zeros(one[i.name], dtype=i.dtype) for i in ids})
    bounds: dict[str, int] = {}
    for i in ids:
        feeds = dict(base)
        feeds[i.name] = np.full(one[i.name], min(np.iinfo(i.dtype).max, 1 << 30), dtype=i.dtype)
        try:
            fn(**{k: tf.constant(v) for k, v in feeds.items()})
        except Exception as e:  # noqa: BLE001  (we want the error's words, whatever its kind)
            m = _BOUND.search(str(e))
            if m and int(m.group(1)) > 0:
                bounds[i.name] = int(m.group(1))
    return bounds
