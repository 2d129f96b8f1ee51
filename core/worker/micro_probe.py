"""Worker task ``micro_probe``: load one ``.tflite`` in the TFLite Micro
interpreter, allocate and invoke it once.

TFLM aborts the process on some models, so this runs only in a worker; the
interpreter's log goes to the worker log, which names the failing op even
after a crash (``core.model.compat.failed_op_from_log``).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.model.compat import MicroProbeResult, failed_op_from_log
from core.model.reader import read_model
from core.tasks.requests import MicroProbeRequest

__all__ = ["run"]

_ARENA = re.compile(r"Arena allocation total (\d+) bytes")
_TOO_SMALL = re.compile(r"Failed to allocate|missing: \d+|Requested: \d+", re.IGNORECASE)


class _CaptureFd:
    """Send a C-level fd into a temp file for a moment (to read TFLM's printouts)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = ""

    def __enter__(self) -> _CaptureFd:
        sys.stderr.flush()
        self.saved = os.dup(self.fd)
        self.file = tempfile.TemporaryFile()
        os.dup2(self.file.fileno(), self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        os.dup2(self.saved, self.fd)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read().decode("utf-8", "replace")
        self.file.close()
        sys.stderr.write(self.text)  # keep it in the log the parent sees


def run(req: MicroProbeRequest, workdir: Path, progress: Callable[..., None]) -> MicroProbeResult:
    import numpy as np
    from tflite_micro import runtime

    t0 = time.monotonic()
    read_model(req.tflite_path, check_zeros=False)  # a damaged or huge file stops here, fast
    data = Path(req.tflite_path).read_bytes()
    model = runtime.schema_fb.Model.GetRootAs(data, 0)
    n_inputs = model.Subgraphs(0).InputsLength() if model.SubgraphsLength() else 0
    interp: Any = None
    error = None
    log = ""
    memory = _address_space_limit()
    # The runtime's default arena is 10x the model; retry once with a large one.
    for arena in (max(len(data) * 10, 1 << 16), min(memory // 2, 1 << 30)):
        with _CaptureFd(2) as cap:
            try:
                interp = runtime.Interpreter.from_bytes(data, arena_size=arena)
                error = None
            except (RuntimeError, ValueError, MemoryError) as e:
                error = str(e)
        log += cap.text
        if interp is not None or not _TOO_SMALL.search(cap.text):
            break
    seconds = time.monotonic() - t0
    if interp is None:
        return MicroProbeResult(
            ok=False,
            error=error,
            failed_op=failed_op_from_log(log),
            log_tail=log[-2000:],
            seconds=seconds,
        )
    with _CaptureFd(2) as cap:
        interp.print_allocations()
    m = _ARENA.search(cap.text)
    arena_bytes = int(m.group(1)) if m else None
    try:
        for i in range(n_inputs):
            d = interp.get_input_details(i)
            interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), i)
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
