"""Worker task ``micro_probe``: load one ``.tflite`` in the TFLite Micro
interpreter, allocate and invoke it once.

TFLM aborts the process on some models, so this runs only in a worker; the
interpreter's log goes to the worker log, which names the failing op even
after a crash (``core.model.compat.failed_op_from_log``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.model.compat import MicroProbeResult, failed_op_from_log
from core.model.info import ModelInfo
from core.model.inputs import input_plans
from core.model.reader import read_model
from core.tasks.requests import MicroProbeRequest
from core.worker.capture import CaptureFd
from core.worker.feeds import valid_input

__all__ = ["run", "micro_run"]

_ARENA = re.compile(r"Arena allocation total (\d+) bytes")
_TOO_SMALL = re.compile(r"Failed to allocate|missing: \d+|Requested: \d+", re.IGNORECASE)


def run(req: MicroProbeRequest, workdir: Path, progress: Callable[..., None]) -> MicroProbeResult:
    info = read_model(req.tflite_path, check_zeros=False)  # a damaged or huge file stops here
    return micro_run(Path(req.tflite_path).read_bytes(), info)


def _load(data: bytes) -> tuple[Any, str | None, str]:
    """(interpreter or None, error, log). The runtime's default arena is 10x
    the model; retry once with a large one."""
    from tflite_micro import runtime

    interp: Any = None
    error = None
    log = ""
    memory = _address_space_limit()
    for arena in (max(len(data) * 10, 1 << 16), min(memory // 2, 1 << 30)):
        with CaptureFd(2) as cap:
            try:
                interp = runtime.Interpreter.from_bytes(data, arena_size=arena)
                error = None
            except (RuntimeError, ValueError, MemoryError) as e:
                error = str(e)
        log += cap.text
        if interp is not None or not _TOO_SMALL.search(cap.text):
            break
    return interp, error, log


def micro_run(data: bytes, info: ModelInfo) -> MicroProbeResult:
    """Load ``data`` in TFLite Micro, allocate, and invoke once on valid inputs
    (``info``: the same file, read and checked by the caller)."""
    import numpy as np

    plans = input_plans(info)
    sg = info.subgraphs[0] if info.subgraphs else None
    names = [sg.tensors[t].name for t in sg.inputs] if sg is not None else []
    t0 = time.monotonic()
    interp, error, log = _load(data)
    if interp is None:
        return MicroProbeResult(
            ok=False,
            error=error,
            failed_op=failed_op_from_log(log),
            log_tail=log[-2000:],
            seconds=time.monotonic() - t0,
        )
    with CaptureFd(2) as cap:
        interp.print_allocations()
    m = _ARENA.search(cap.text)
    arena_bytes = int(m.group(1)) if m else None
    rng = np.random.default_rng(0)
    try:
        for k, name in enumerate(names):
            d = interp.get_input_details(k)
            q = d.get("quantization_parameters") or {}
            scale = float((list(q.get("scales", [])) or [0.0])[0])
            zp = int((list(q.get("zero_points", [])) or [0])[0])
            interp.set_input(valid_input(name, d["dtype"], d["shape"], plans, rng, (scale, zp)), k)
        interp.invoke()
    except (RuntimeError, ValueError, TypeError) as e:
        return MicroProbeResult(
            ok=False,
            arena_bytes=arena_bytes,
            invoked=False,
            error=f"invoke failed: {e}",
            log_tail=log[-2000:],
            seconds=time.monotonic() - t0,
        )
    return MicroProbeResult(
        ok=True,
        arena_bytes=arena_bytes,
        invoked=True,
        log_tail=log[-2000:],
        seconds=time.monotonic() - t0,
    )


def _address_space_limit() -> int:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft if soft > 0 else 2 << 30
