"""The generic checks a rule table names (``{"check": kind, ...}``), what
they may look at for one operator (``OpContext``), and the model-wide checks.

A check returns None when the op passes, else a short text saying what is
wrong (``""`` for a note that always applies). Texts must depend only on
the op's signature, never on tensor indices: verdicts are cached per
signature (see ``engine``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from core.model.compat.tables import Rule
from core.model.info import ModelInfo, OperatorInfo, TensorInfo

__all__ = [
    "OpContext",
    "ValuesUnknown",
    "Check",
    "GENERIC_CHECKS",
    "MODEL_CHECKS",
    "NUM_INPUTS",
    "NUM_OUTPUTS",
    "RUNTIME_INPUTS",
    "CONST_INPUTS",
    "compare",
    "needs",
    "option_is",
    "activation_in",
    "const_values",
    "tensor_desc",
]

NUM_INPUTS = "number of inputs"
NUM_OUTPUTS = "number of outputs"
RUNTIME_INPUTS = "number of runtime (non-constant) inputs"
CONST_INPUTS = "number of constant inputs"


class OpContext:
    """What the checks may look at for one operator."""

    __slots__ = ("model", "op", "ins", "outs", "allow", "quasi_static")

    def __init__(
        self,
        model: ModelInfo,
        op: OperatorInfo,
        tensors: tuple[TensorInfo, ...],
        quasi_static: frozenset[int],
    ) -> None:
        self.model = model
        self.op = op
        self.ins = [tensors[i] if i >= 0 else None for i in op.inputs]
        self.outs = [tensors[i] if i >= 0 else None for i in op.outputs]
        self.allow: dict[str, list[str]] = {}  # the op entry's allow_types
        self.quasi_static = quasi_static  # outputs of DENSIFY/DEQUANTIZE over constants

    def inp(self, i: int) -> TensorInfo | None:
        return self.ins[i] if 0 <= i < len(self.ins) else None

    def out(self, i: int) -> TensorInfo | None:
        return self.outs[i] if i < len(self.outs) else None

    def num_inputs(self) -> int:
        return sum(1 for t in self.ins if t is not None)

    def runtime_inputs(self) -> int:
        return sum(1 for t in self.ins if t is not None and not t.is_constant)

    def const_inputs(self) -> int:
        return sum(1 for t in self.ins if t is not None and t.is_constant)


Check = Callable[[OpContext, Rule], str | None]


class ValuesUnknown(Exception):
    """A constant's values are not available to check (too large to preview).

    The engine turns it into a ``partial`` reason: not proven either way."""


# ----------------------------------------------------------------- helpers


def needs(value: Any, want: Any, what: str) -> str | None:
    return None if value == want else f"{what} is {value!r}, needs {want!r}"


def compare(value: Any, rule: Rule, what: str) -> str | None:
    """The shared eq/ne/min/max/in/not_in comparisons; returns a failure text."""
    if "eq" in rule and value != rule["eq"]:
        return f"{what} is {value!r}, needs {rule['eq']!r}"
    if "ne" in rule and value == rule["ne"]:
        return f"{what} must not be {value!r}"
    if "min" in rule and not (isinstance(value, (int, float)) and value >= rule["min"]):
        return f"{what} is {value!r}, needs at least {rule['min']!r}"
    if "max" in rule and not (isinstance(value, (int, float)) and value <= rule["max"]):
        return f"{what} is {value!r}, needs at most {rule['max']!r}"
    if "in" in rule and value not in rule["in"]:
        return f"{what} is {value!r}, needs one of {', '.join(map(str, rule['in']))}"
    if "not_in" in rule and value in rule["not_in"]:
        return f"{what} {value!r} is not supported"
    return None


def option_is(c: OpContext, name: str, want: Any) -> str | None:
    if name not in c.op.options:
        return None  # absent option = schema default, which the rules accept
    return needs(c.op.options[name], want, name)


def activation_in(c: OpContext, allowed: Sequence[str]) -> str | None:
    act = c.op.fused_activation
    if act is None or act in allowed:
        return None
    return f"fused activation {act} is not supported"


def const_values(c: OpContext, i: int) -> tuple[int, ...]:
    """The values of constant input ``i``; raises ``ValuesUnknown``."""
    t = c.inp(i)
    if t is None:
        raise ValuesUnknown(f"input {i} is missing")
    if not t.is_constant:
        raise ValuesUnknown(f"input {i} is not a constant, so it cannot be checked")
    if t.values is None:
        raise ValuesUnknown(f"input {i} is too large to check")
    return t.values


def tensor_desc(t: TensorInfo) -> str:
    # No tensor index: messages must depend only on the op's signature (cached).
    return f"{t.dtype}{list(t.shape)}"


# ----------------------------------------------------------------- op checks


def _max_version(c: OpContext, r: Rule) -> str | None:
    if c.op.version <= r["max"]:
        return None
    return f"op version {c.op.version} is newer than the supported {r['max']}"


def _version_not(c: OpContext, r: Rule) -> str | None:
    return f"op version {c.op.version} is not supported" if c.op.version in r["not_in"] else None


def _activation_in(c: OpContext, r: Rule) -> str | None:
    return activation_in(c, r["in"])


def _option(c: OpContext, r: Rule) -> str | None:
    name = r["name"]
    if name not in c.op.options:
        return None  # absent option = schema default, which the rules accept
    value = c.op.options[name]
    if "not_in" in r and value in r["not_in"]:
        return f"{name} = {value!r} is not supported"
    return compare(value, r, name)


def _options_equal(c: OpContext, r: Rule) -> str | None:
    values = [c.op.options.get(n) for n in r["names"]]
    if len(set(map(repr, values))) <= 1:
        return None
    return f"{' and '.join(r['names'])} differ ({values})"


def _num_inputs(c: OpContext, r: Rule) -> str | None:
    return compare(c.num_inputs(), r, NUM_INPUTS)


def _num_outputs(c: OpContext, r: Rule) -> str | None:
    return compare(len(c.outs), r, NUM_OUTPUTS)


def _runtime_inputs(c: OpContext, r: Rule) -> str | None:
    return compare(c.runtime_inputs(), r, RUNTIME_INPUTS)


def _const_inputs(c: OpContext, r: Rule) -> str | None:
    return compare(c.const_inputs(), r, CONST_INPUTS)


def _is_static(c: OpContext, t: TensorInfo, r: Rule) -> bool:
    return t.is_constant or (bool(r.get("quasi_static")) and t.index in c.quasi_static)


def _input_const(c: OpContext, r: Rule) -> str | None:
    t = c.inp(r["index"])
    want = r.get("const", True)
    if t is None:
        return f"input {r['index']} is missing" if want else None
    if _is_static(c, t, r) != want:
        return f"input {r['index']} {'must' if want else 'must not'} be a constant"
    return None


def _optional_input_const(c: OpContext, r: Rule) -> str | None:
    t = c.inp(r["index"])
    if t is None or _is_static(c, t, r):
        return None
    return f"input {r['index']} must be a constant"


def _input_dtype(c: OpContext, r: Rule) -> str | None:
    t = c.inp(r["index"])
    return None if t is None else compare(t.dtype, r, f"input {r['index']} type")


def _rank_check(t: TensorInfo | None, r: Rule, what: str) -> str | None:
    return None if t is None else compare(len(t.shape), r, f"{what} rank")


def _input_rank(c: OpContext, r: Rule) -> str | None:
    return _rank_check(c.inp(r["index"]), r, f"input {r['index']}")


def _output_rank(c: OpContext, r: Rule) -> str | None:
    return _rank_check(c.out(r["index"]), r, f"output {r['index']}")


def _input_shape(c: OpContext, r: Rule) -> str | None:
    t = c.inp(r["index"])
    if t is None:
        return f"input {r['index']} is missing"
    dims = r["dims"]
    mismatch = any(allowed and d not in allowed for d, allowed in zip(t.shape, dims))
    if len(t.shape) != len(dims) or mismatch:
        return f"input {r['index']} has shape {list(t.shape)}"
    return None


def _io_dtype_pairs(c: OpContext, r: Rule) -> str | None:
    a, b = c.inp(0), c.out(0)
    if a is None or b is None or [a.dtype, b.dtype] in r["pairs"]:
        return None
    return f"{a.dtype} to {b.dtype} is not supported"


def _scoped(c: OpContext, r: Rule) -> list[tuple[str, int, TensorInfo]]:
    """(side, position, tensor) for the tensors a rule's io/scope selects."""
    io = r.get("io", "both")
    scope = r.get("scope", "all")
    out = []
    for side, tensors in (("inputs", c.ins), ("outputs", c.outs)):
        if io != "both" and io != side:
            continue
        for pos, t in enumerate(tensors):
            if t is None:
                continue
            if (scope == "nonconst" and t.is_constant) or (scope == "const" and not t.is_constant):
                continue
            out.append((side, pos, t))
    return out


def _tensors_dtype(c: OpContext, r: Rule) -> str | None:
    allowed = r["in"]
    extra = c.allow  # every tensors_dtype check honours the op's allow_types
    for side, pos, t in _scoped(c, r):
        if t.dtype not in allowed and t.dtype not in extra.get(side, ()):
            return f"{side[:-1]} {pos} ({tensor_desc(t)}) has type {t.dtype}"
    return None


def _tensors_max_rank(c: OpContext, r: Rule) -> str | None:
    for side, pos, t in _scoped(c, r):
        if len(t.shape) > r["max"]:
            return f"{side[:-1]} {pos} ({tensor_desc(t)}) has {len(t.shape)} dimensions"
    return None


def _tensors_innermost(c: OpContext, r: Rule) -> str | None:
    keep = r["max"]
    for side, pos, t in _scoped(c, {"scope": "nonconst"}):
        if len(t.shape) > keep and any(d != 1 for d in t.shape[: len(t.shape) - keep]):
            desc = tensor_desc(t)
            return f"{side[:-1]} {pos} ({desc}) has more than {keep} dimensions larger than 1"
    return None


def _nontrivial_rank(c: OpContext, r: Rule) -> str | None:
    t = c.inp(r["index"])
    if t is None:
        return None
    n = sum(1 for d in t.shape if d != 1)
    if n <= r["max"]:
        return None
    return f"input {r['index']} {list(t.shape)} has {n} dimensions larger than 1"


def _input_elements(c: OpContext, r: Rule) -> str | None:
    t = c.inp(r["index"])
    if t is None:
        return None
    n = 1
    for d in t.shape:
        n *= max(d, 1)
    return compare(n, r, f"input {r['index']} element count")


def _note(c: OpContext, r: Rule) -> str | None:
    return ""  # always attaches its reason at its severity


GENERIC_CHECKS: dict[str, Check] = {
    "max_version": _max_version,
    "version_not": _version_not,
    "activation_in": _activation_in,
    "option": _option,
    "options_equal": _options_equal,
    "num_inputs": _num_inputs,
    "num_outputs": _num_outputs,
    "runtime_inputs": _runtime_inputs,
    "const_inputs": _const_inputs,
    "input_const": _input_const,
    "optional_input_const": _optional_input_const,
    "input_dtype": _input_dtype,
    "input_rank": _input_rank,
    "output_rank": _output_rank,
    "input_shape": _input_shape,
    "io_dtype_pairs": _io_dtype_pairs,
    "tensors_dtype": _tensors_dtype,
    "tensors_max_rank": _tensors_max_rank,
    "tensors_innermost": _tensors_innermost,
    "nontrivial_rank": _nontrivial_rank,
    "input_elements": _input_elements,
    "note": _note,
}


# ----------------------------------------------------------------- model checks


def _static_shapes(model: ModelInfo) -> str | None:
    dyn = [t for t in model.tensors if t.is_dynamic]
    if not dyn:
        return None
    t = dyn[0]
    sig = list(t.shape_signature or ())
    return f"{len(dyn)} tensors have dynamic dimensions, e.g. {t.name!r} {sig}"


def _fully_quantized(model: ModelInfo) -> str | None:
    if any(t.dtype in ("INT8", "UINT8") and not t.is_constant for t in model.tensors):
        return None
    return "no 8-bit activations: the model is float or dynamic-range quantized"


MODEL_CHECKS: dict[str, Callable[[ModelInfo], str | None]] = {
    "static_shapes": _static_shapes,
    "fully_quantized": _fully_quantized,
}
