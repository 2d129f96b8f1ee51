"""TFLite Micro: what its log says (the op it stopped at, a hybrid model),
which ops it has no kernels for, and what "fits a microcontroller" means
(typical boards, ``data/boards.json``)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from core.model.compat.tables import rules
from core.model.compat.verdicts import MicroProbeResult
from core.model.info import ModelInfo, OperatorInfo, OpKind

__all__ = [
    "failed_op_from_log",
    "hybrid_ops",
    "says_hybrid",
    "failed_node",
    "failure_text",
    "failed_op",
    "boards",
    "fits",
    "SOURCE",
]

SOURCE = "https://github.com/tensorflow/tflite-micro/tree/main/python/tflite_micro"

_OP_PATTERNS = (
    re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'"),
    re.compile(r"Failed to get registration from op code ([A-Za-z0-9_]+)"),
    re.compile(r"Didn't find op for custom opcode '([^']+)'"),
    re.compile(r"Node ([A-Z0-9_]+) \(number \d+\) failed"),
)


def failed_op_from_log(log: str) -> str | None:
    """The op TFLite Micro's log names as the one it has no kernel for."""
    for pattern in _OP_PATTERNS:
        m = pattern.search(log)
        if m:
            return m.group(1)
    return None


def failed_op(model: ModelInfo, probe: MicroProbeResult) -> str | None:
    failed = probe.failed_op
    if failed == "CUSTOM":
        # TFLM only says "CUSTOM"; name the first custom op it has no kernel for.
        known = rules()["targets"]["micro"]["custom_ops"]
        unknown = (
            op.name
            for op in model.operators
            if op.kind is not OpKind.BUILTIN and op.name not in known
        )
        failed = next(unknown, failed)
    return failed


def failure_text(probe: MicroProbeResult, failed: str | None) -> str:
    at = f" (at {failed})" if failed else ""
    if probe.timed_out:
        return "the TFLite Micro interpreter did not finish in time"
    if probe.crashed:
        return f"the TFLite Micro interpreter crashed while loading the model{at}"
    error = probe.error or "unknown error"
    return f"the TFLite Micro interpreter rejected the model{at}: {error}"


_HYBRID_OPS = frozenset(
    {
        "FULLY_CONNECTED",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "BATCH_MATMUL",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "BIDIRECTIONAL_SEQUENCE_LSTM",
        "LSTM",
        "SVDF",
        "RNN",
        "UNIDIRECTIONAL_SEQUENCE_RNN",
        "EMBEDDING_LOOKUP",
    }
)
_HYBRID_LOG = re.compile(r"Input type: FLOAT32 with filter type: U?INT8 not supported|[Hh]ybrid")
_NODE = re.compile(r"Node ([A-Z0-9_]+) \(number (\d+)\) failed")


def hybrid_ops(model: ModelInfo) -> list[OperatorInfo]:
    """Ops that take float activations with 8-bit constant weights (a
    dynamic-range model): LiteRT has kernels for them, TFLite Micro has none."""
    out = []
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.name not in _HYBRID_OPS or not op.inputs or op.inputs[0] < 0:
                continue
            if sg.tensors[op.inputs[0]].dtype != "FLOAT32":
                continue
            weights = (sg.tensors[i] for i in op.inputs[1:] if i >= 0)
            if any(t.is_constant and t.dtype in ("INT8", "UINT8", "INT4") for t in weights):
                out.append(op)
    return out


def says_hybrid(log: str) -> bool:
    return bool(_HYBRID_LOG.search(log))


def failed_node(log: str) -> tuple[str, int] | None:
    """("FULLY_CONNECTED", 6) from "Node FULLY_CONNECTED (number 6) failed to prepare"."""
    m = _NODE.search(log)
    return (m.group(1), int(m.group(2))) if m else None


@lru_cache(maxsize=1)
def boards() -> dict[str, Any]:
    return json.loads(resources.files("core.model").joinpath("data/boards.json").read_text())


def fits(model_bytes: int, arena_bytes: int | None) -> list[dict[str, Any]]:
    """Per typical board: does the model fit its flash and the arena its RAM."""
    out = []
    for b in boards()["boards"]:
        ram_ok = arena_bytes is not None and arena_bytes <= b["ram_bytes"]
        out.append(
            {
                "board": b["name"],
                "flash_bytes": b["flash_bytes"],
                "ram_bytes": b["ram_bytes"],
                "flash_share": round(model_bytes / b["flash_bytes"], 4),
                "ram_share": round(arena_bytes / b["ram_bytes"], 4) if arena_bytes else None,
                "fits": model_bytes <= b["flash_bytes"] and ram_ok,
                "source": b["source"],
            }
        )
    return out
