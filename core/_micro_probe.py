"""Load one .tflite model in the TFLite Micro interpreter and report JSON.

Run as ``python -m core._micro_probe FILE [--memory-mb N]``, always in its own
process: TFLM aborts the process on some models. The last stdout line is a JSON
object ``{"ok", "arena_bytes", "invoked", "failed_op", "error"}``; interpreter
logs go to stderr so the parent can name the failing op even after a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile

__all__ = ["failed_op_from_log", "main"]

_OP_PATTERNS = (
    re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'"),
    re.compile(r"Failed to get registration from op code ([A-Za-z0-9_]+)"),
    re.compile(r"Didn't find op for custom opcode '([^']+)'"),
)
_ARENA = re.compile(r"Arena allocation total (\d+) bytes")
_TOO_SMALL = re.compile(r"Failed to allocate|missing: \d+|Requested: \d+", re.IGNORECASE)


def failed_op_from_log(log: str) -> str | None:
    for pattern in _OP_PATTERNS:
        m = pattern.search(log)
        if m:
            return m.group(1)
    return None


def _limit_resources(memory_mb: int, cpu_seconds: int) -> None:
    try:
        import resource
    except ImportError:  # not on POSIX: rely on the parent's timeout
        return
    for name, value in (
        ("RLIMIT_AS", memory_mb << 20),
        ("RLIMIT_CPU", cpu_seconds),
        ("RLIMIT_CORE", 0),
    ):
        limit = getattr(resource, name, None)
        if limit is None:
            continue
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass


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


def _run(path: str, memory_mb: int) -> dict:
    import numpy as np
    from tflite_micro import runtime

    with open(path, "rb") as f:
        data = f.read()
    model = runtime.schema_fb.Model.GetRootAs(data, 0)
    n_inputs = model.Subgraphs(0).InputsLength() if model.SubgraphsLength() else 0
    interp = None
    error = None
    log = ""
    # The runtime's default arena is 10x the model; retry once with a large one.
    for arena in (max(len(data) * 10, 1 << 16), min(memory_mb << 19, 1 << 30)):
        with _CaptureFd(2) as cap:
            try:
                interp = runtime.Interpreter.from_bytes(data, arena_size=arena)
                error = None
            except (RuntimeError, ValueError, MemoryError) as e:
                error = str(e)
        log += cap.text
        if interp is not None or not _TOO_SMALL.search(cap.text):
            break
    if interp is None:
        return {"ok": False, "error": error, "failed_op": failed_op_from_log(log)}
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
        error = f"invoke failed: {e}"
        return {"ok": False, "arena_bytes": arena_bytes, "invoked": False, "error": error}
    return {"ok": True, "arena_bytes": arena_bytes, "invoked": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core._micro_probe")
    parser.add_argument("path")
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--cpu-seconds", type=int, default=120)
    args = parser.parse_args(argv)
    _limit_resources(args.memory_mb, args.cpu_seconds)
    # Anything the C++ side prints to stdout must not corrupt the JSON line.
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        result = _run(args.path, args.memory_mb)
    except MemoryError:
        result = {"ok": False, "error": f"out of memory (limit {args.memory_mb} MB)"}
    except (OSError, RuntimeError, ValueError) as e:
        result = {"ok": False, "error": str(e)}
    with os.fdopen(json_fd, "w") as out:
        out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
