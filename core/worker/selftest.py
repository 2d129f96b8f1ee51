"""Worker task ``selftest``: provokes each way a worker can die (tests)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from core.errors import StudioError
from core.tasks.requests import SelftestRequest, SelftestResult

__all__ = ["run"]


def run(req: SelftestRequest, workdir: Path, progress: Callable[..., None]) -> SelftestResult:
    progress("selftest started")
    action = req.action
    if action == "abort":
        os.abort()
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "sleep":
        time.sleep(req.seconds)
    if action == "alloc":
        _ = bytearray(req.bytes)
    if action == "write":
        with open(workdir / "big.bin", "wb") as f:
            f.write(b"\0" * req.bytes)
    if action == "missing":
        open(workdir / "no-such-file", "rb").close()
    if action == "raise":
        raise StudioError("selftest error", "selftest hint")
    if action == "tf":
        import tensorflow as tf

        return SelftestResult(tf=tf.__version__)
    return SelftestResult(echo=req.echo, cwd=os.getcwd())
