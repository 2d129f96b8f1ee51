"""Worker task ``selftest``: provokes each way a worker can die (tests)."""

from __future__ import annotations

import os
import signal
import socket
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
    if action in _PROBES:
        try:
            return SelftestResult(outcome=_PROBES[action](req.target))
        except OSError as e:
            return SelftestResult(outcome=f"error: {type(e).__name__}: {e.strerror or e}")
    return SelftestResult(echo=req.echo, cwd=os.getcwd())


def _read(target: str) -> str:
    with open(target, "rb") as f:
        return "read: " + f.read(4096).decode("utf-8", "replace")


def _write_at(target: str) -> str:
    with open(target, "w") as f:
        f.write("planted by a worker")
    return "wrote"


def _connect(target: str) -> str:
    host, _, port = target.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=3):
        return "connected"


def _environ(target: str) -> str:
    with open("/proc/self/environ", "rb") as f:
        own = f.read().decode("utf-8", "replace")
    try:  # pid 1 of its own namespace (bwrap), never the server
        with open("/proc/1/environ", "rb") as f:
            first = f.read().decode("utf-8", "replace")
    except OSError as e:
        first = f"not readable ({e.strerror})"
    return "environ: " + own + " | " + first


_PROBES = {"read": _read, "write_at": _write_at, "connect": _connect, "environ": _environ}
