"""Entry point of the isolated worker process: ``python -m core._worker``.

Reads one JSON request line from stdin, runs one task in the given folder,
writes ``result.json`` there, and exits. ``--warm`` imports TensorFlow first.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from core.errors import Phase, StudioError, WorkerError, WorkerOutOfMemory

READY_LINE = "tflite-studio-worker-ready"

# task name -> "module:function"; the function takes (payload, workdir, progress)
TASKS = {
    "convert": "core.convert:run_convert_task",
    "micro_probe": "core._micro_probe:run_task",
    "evaluate": "core.evaluate:run_evaluate_task",
    "quant_debug": "core.evaluate:run_quant_debug_task",
    "selftest": "core._worker:_selftest",
}


def _selftest(payload: dict[str, Any], workdir: Path, progress: Any) -> dict[str, Any]:
    """Used by tests to provoke each way a worker can die."""
    import signal

    action = payload.get("action")
    progress("selftest started")
    if action == "abort":
        os.abort()
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "sleep":
        import time

        time.sleep(float(payload.get("seconds", 60)))
    if action == "alloc":
        _ = bytearray(int(payload["bytes"]))
    if action == "write":
        with open(workdir / "big.bin", "wb") as f:
            f.write(b"\0" * int(payload["bytes"]))
    if action == "missing":
        open(workdir / "no-such-file", "rb").close()
    if action == "raise":
        raise StudioError("selftest error", "selftest hint")
    if action == "tf":
        import tensorflow as tf

        return {"tf": tf.__version__}
    return {"echo": payload.get("echo"), "cwd": os.getcwd()}


def _progress_writer(workdir: Path):
    path = workdir / "progress.jsonl"

    def progress(message: str, **extra: Any) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"message": message, **extra}) + "\n")

    return progress


def main() -> int:
    if "--warm" in sys.argv:
        import tensorflow  # noqa: F401  (warm: pay the import before the task arrives)

        print(READY_LINE, flush=True)
    line = sys.stdin.readline()
    if not line:
        return 0
    req = json.loads(line)
    workdir = Path(req["workdir"])
    os.chdir(workdir)
    out = workdir / "result.json"
    phase = Phase(req.get("phase") or Phase.JOB.value)
    try:
        mod_name, func_name = TASKS[req["task"]].split(":")
        func = getattr(importlib.import_module(mod_name), func_name)
        result = func(req.get("payload") or {}, workdir, _progress_writer(workdir))
        body: dict[str, Any] = {"ok": True, "result": result}
    except StudioError as e:
        body = {"ok": False, "error": e.to_dict()}
    except MemoryError:
        body = {
            "ok": False,
            "error": WorkerOutOfMemory(
                "The task ran out of memory.",
                "Use fewer calibration samples or a smaller model.",
                phase=phase,
            ).to_dict(),
        }
    except Exception as e:  # noqa: BLE001  (unknown failure: keep the trace in the log only)
        if isinstance(e, OSError) and e.errno == errno.EFBIG:
            err: StudioError = WorkerError(
                "The task tried to write a file larger than the server allows.",
                "The output is too large for this server; the admin can raise "
                "TFLITE_STUDIO_FILE_MB.",
                phase=phase,
            )
        else:
            traceback.print_exc()
            err = StudioError(
                f"Unexpected error: {type(e).__name__}: {str(e)[:500]}",
                "This is a bug in TFLite Studio or TensorFlow; the worker log has details.",
                phase=phase,
            )
        body = {"ok": False, "error": err.to_dict()}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, out)
    sys.stdout.flush()
    # Skip TensorFlow's atexit work, which can hang or crash after a conversion.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
