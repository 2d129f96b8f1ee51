"""What valid inputs of a ``.tflite`` look like, read from its graph: integer
inputs that index an embedding table (GATHER, EMBEDDING_LOOKUP) get indices
within the table, mask-like inputs get masks, the rest get values in a
stated range. Every synthetic input (probes, latency, evaluation of a file
alone) is drawn from this plan, so random ids never fall outside a table.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from core.model.info import ModelInfo, SubgraphInfo

__all__ = ["InputKind", "InputPlan", "input_plans", "is_mask_name"]

# Ops that pass an index tensor through unchanged in value (a cast, a reshape).
_PASS_THROUGH = frozenset({"CAST", "RESHAPE", "EXPAND_DIMS", "SQUEEZE", "IDENTITY"})
_MASK = re.compile(r"(^|[^a-z])(mask|attention_mask|padding_mask|input_mask)($|[^a-z])", re.I)


def is_mask_name(name: str) -> bool:
    """``padding_mask``, ``attention_mask``, ``mask``: by name, the one clue a graph gives."""
    return bool(_MASK.search(name.replace("-", "_")))


class InputKind(str, enum.Enum):
    INDEX = "index"  # ids into a table: 0 <= id < high
    MASK = "mask"  # 1 where a position is real, 0 where it is padding
    VALUE = "value"  # anything else


@dataclass(frozen=True)
class InputPlan:
    name: str
    kind: InputKind
    high: int | None = None  # INDEX: the table's first dimension (exclusive bound)
    why: str = ""  # where the plan came from, in words

    def words(self) -> str:
        if self.kind is InputKind.INDEX:
            return f"{self.name}: ids in [0, {self.high}) ({self.why})"
        if self.kind is InputKind.MASK:
            return f"{self.name}: a padding mask (ones, then zeros)"
        return f"{self.name}: random values"


def _consumers(sg: SubgraphInfo) -> dict[int, list[tuple[int, int]]]:
    """tensor -> [(op index, input position)]."""
    out: dict[int, list[tuple[int, int]]] = {}
    for op in sg.operators:
        for pos, t in enumerate(op.inputs):
            if t >= 0:
                out.setdefault(t, []).append((op.index, pos))
    return out


def _table_bound(
    sg: SubgraphInfo, tensor: int, consumers: dict[int, list[tuple[int, int]]]
) -> int | None:
    """The smallest table the values of ``tensor`` index, following casts and reshapes."""
    bounds: list[int] = []
    seen: set[int] = set()
    todo = [tensor]
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        for op_index, pos in consumers.get(t, ()):
            op = sg.operators[op_index]
            if op.name in _PASS_THROUGH and pos == 0:
                todo.extend(o for o in op.outputs if o >= 0)
            elif op.name == "GATHER" and pos == 1 and op.inputs[0] >= 0:
                params = sg.tensors[op.inputs[0]]
                axis = int(op.options.get("axis", 0) or 0)
                if params.shape and -len(params.shape) <= axis < len(params.shape):
                    dim = params.shape[axis]
                    if dim > 0:
                        bounds.append(dim)
            elif op.name == "EMBEDDING_LOOKUP" and pos == 0 and len(op.inputs) > 1:
                table = sg.tensors[op.inputs[1]]
                if table.shape and table.shape[0] > 0:
                    bounds.append(table.shape[0])
    return min(bounds) if bounds else None


def input_plans(model: ModelInfo, signature: str | None = None) -> dict[str, InputPlan]:
    """Per input of ``signature`` (the first, or the main subgraph's inputs): how
    to fill it with valid values. Keyed by the signature's input name and by
    the tensor's own name (runtimes report one or the other)."""
    sig = next((s for s in model.signatures if signature in (None, s.key)), None)
    if sig is not None:
        sg = model.subgraphs[sig.subgraph]
        named = dict(sig.inputs)
    elif model.subgraphs:
        sg = model.subgraphs[0]
        named = {sg.tensors[t].name: t for t in sg.inputs if 0 <= t < len(sg.tensors)}
    else:
        return {}
    consumers = _consumers(sg)
    plans = {}
    for name, t in named.items():
        if not 0 <= t < len(sg.tensors):
            continue
        tensor = sg.tensors[t]
        quantized = tensor.quantization is not None and bool(tensor.quantization.scales)
        integer = tensor.dtype.startswith(("INT", "UINT")) and not quantized
        high = _table_bound(sg, t, consumers) if integer else None
        if is_mask_name(name) or is_mask_name(tensor.name):
            plan = InputPlan(name, InputKind.MASK, why="named like a mask")
        elif high is not None:
            plan = InputPlan(name, InputKind.INDEX, high, "it indexes a table this size")
        else:
            plan = InputPlan(name, InputKind.VALUE)
        plans[name] = plan
        plans.setdefault(tensor.name, plan)
    return plans
