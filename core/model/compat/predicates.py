"""Named predicates: op conditions too particular for a generic check
(alternatives, tests of constant values), written out in Python.

A rule table names one as ``{"check": "predicate", "name": ...}``, with its
reason and source as for any check. A predicate returns None when the op
passes, else what is wrong; one that needs a constant's values raises
``ValuesUnknown`` when they are not available.
"""

from __future__ import annotations

from collections.abc import Callable

from core.model.compat.checks import (
    CONST_INPUTS,
    NUM_INPUTS,
    NUM_OUTPUTS,
    RUNTIME_INPUTS,
    OpContext,
    activation_in,
    const_values,
    needs,
    option_is,
    tensor_desc,
)
from core.model.compat.tables import Rule

__all__ = ["Predicate", "PREDICATES", "run_predicate"]

Predicate = Callable[[OpContext], str | None]


def _first(*failures: str | None) -> str | None:
    """Conditions that must all hold: the first failure."""
    return next((f for f in failures if f is not None), None)


def _either(*alternatives: str | None) -> str | None:
    """Alternatives of which one must hold: None, or every failure joined."""
    if any(f is None for f in alternatives):
        return None
    return "; ".join(f for f in alternatives if f)


def _operands(c: OpContext, runtime: int, const: int) -> str | None:
    return _first(
        needs(c.runtime_inputs(), runtime, RUNTIME_INPUTS),
        needs(c.const_inputs(), const, CONST_INPUTS),
    )


def _binary_operands(c: OpContext) -> str | None:
    """Two runtime operands, or one runtime operand and one constant."""
    return _either(_operands(c, 2, 0), _operands(c, 1, 1))


def _input_dim_is(c: OpContext, index: int, dim: int, want: int) -> str | None:
    t = c.inp(index)
    if t is None or len(t.shape) <= dim:
        return f"input {index} has no dimension {dim}"
    return needs(t.shape[dim], want, f"input {index} dimension {dim}")


def _depth_multiplier_one_or_single_channel(c: OpContext) -> str | None:
    return _either(option_is(c, "depth_multiplier", 1), _input_dim_is(c, 0, 3, 1))


def _keep_num_dims_same_rank(c: OpContext) -> str | None:
    a, b = c.inp(0), c.out(0)
    if a is None or b is None or len(a.shape) == len(b.shape):
        same_rank = None
    else:
        same_rank = f"input rank {len(a.shape)} differs from output rank {len(b.shape)}"
    return _either(option_is(c, "keep_num_dims", False), same_rank)


def _lstm_full_or_basic_kernel(c: OpContext) -> str | None:
    """A FULL kernel with 20 or 24 inputs, or a BASIC one with 3 runtime inputs
    and 2 constants and 4 outputs and no clipping; tanh either way."""
    n = c.num_inputs()
    full = _first(
        option_is(c, "kernel_type", "FULL"),
        None if n in (20, 24) else f"has {n} inputs, needs 20 or 24",
        needs(len(c.outs), 1, NUM_OUTPUTS),
        activation_in(c, ("TANH",)),
    )
    basic = _first(
        option_is(c, "kernel_type", "BASIC"),
        _operands(c, 3, 2),
        needs(len(c.outs), 4, NUM_OUTPUTS),
        activation_in(c, ("TANH",)),
        option_is(c, "cell_clip", 0.0),
        option_is(c, "proj_clip", 0.0),
    )
    return _either(full, basic)


def _not_align_corners_and_half_pixel(c: OpContext) -> str | None:
    return _either(option_is(c, "align_corners", False), option_is(c, "half_pixel_centers", False))


def _constants_all_zero(c: OpContext) -> str | None:
    for t in c.ins:
        if t is not None and t.is_constant:
            buffers = c.model.buffers
            buf = buffers[t.buffer] if t.buffer < len(buffers) else None
            if buf is None or buf.all_zero is not True:
                return f"constant input ({tensor_desc(t)}) is not all zeros"
    return None


def _concat_zero_constant(c: OpContext) -> str | None:
    """No constant input, or two inputs whose constants are all zeros (padding)."""
    two_with_zeros = _first(needs(c.num_inputs(), 2, NUM_INPUTS), _constants_all_zero(c))
    return _either(needs(c.const_inputs(), 0, CONST_INPUTS), two_with_zeros)


def _strides_all_one(c: OpContext) -> str | None:
    values = const_values(c, 3)
    return None if all(v == 1 for v in values) else f"input 3 is {list(values)}"


def _axes_exclude_batch(c: OpContext, index: int) -> str | None:
    bad = [v for v in const_values(c, index) if v == 0]
    return f"input {index} contains {bad}" if bad else None


def _reduce_axes_not_batch(c: OpContext) -> str | None:
    return _axes_exclude_batch(c, 1)


def _split_axis_not_batch(c: OpContext) -> str | None:
    return _axes_exclude_batch(c, 0)


def _reduce_axes_height_width(c: OpContext) -> str | None:
    values = const_values(c, 1)
    return None if set(values) <= {1, 2} else f"input 1 is {list(values)}"


PREDICATES: dict[str, Predicate] = {
    "binary_operands": _binary_operands,
    "depth_multiplier_one_or_single_channel": _depth_multiplier_one_or_single_channel,
    "keep_num_dims_same_rank": _keep_num_dims_same_rank,
    "lstm_full_or_basic_kernel": _lstm_full_or_basic_kernel,
    "not_align_corners_and_half_pixel": _not_align_corners_and_half_pixel,
    "concat_zero_constant": _concat_zero_constant,
    "strides_all_one": _strides_all_one,
    "reduce_axes_not_batch": _reduce_axes_not_batch,
    "split_axis_not_batch": _split_axis_not_batch,
    "reduce_axes_height_width": _reduce_axes_height_width,
}


def run_predicate(c: OpContext, r: Rule) -> str | None:
    return PREDICATES[r["name"]](c)
