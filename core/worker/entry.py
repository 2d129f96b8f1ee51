"""Entry point of the worker process (``python -m core.worker``).

Reads one JSON line from stdin (the task's name and its typed request), runs
that one task in the given folder, writes ``result.json`` there, and exits.
``--warm`` imports TensorFlow first, before the request arrives; ``--warm-litert``
only LiteRT (the tasks that run ``.tflite`` files).
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import Phase, StudioError, WorkerError, WorkerOutOfMemory
from core.serial import from_data, to_data
from core.tasks.registry import REQUESTS
from core.worker import clock

READY_LINE = "tflite-studio-worker-ready"

# task name -> "module:function"; the function takes (request, workdir, progress)
# and returns the request's RESULT type. Modules load only for their task.
TASKS = {
    "convert": "core.worker.convert:run",
    "reference": "core.worker.reference:run",
    "tflite_eval": "core.worker.run_tflite:run",
    "latency": "core.worker.latency:run",
    "layer_debug": "core.worker.layers:run_debugger",
    "layer_compare": "core.worker.layers:run_compare",
    "micro_probe": "core.worker.micro_probe:run",
    "inspect": "core.worker.inspect:run",
    "diff": "core.worker.diff:run",
    "optimize": "core.worker.optimize:run",
    "deploy": "core.worker.deploy:run",
    "signature": "core.worker.signature:run",
    "selftest": "core.worker.selftest:run",
    "convert_batch": "core.worker.convert_batch:run",
    "measure_batch": "core.worker.measure_batch:run",
}


def _progress_writer(workdir: Path) -> Callable[..., None]:
    path = workdir / "progress.jsonl"

    def progress(message: str, **extra: Any) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"message": message, **extra}) + "\n")

    return progress


def main() -> int:
    if "--warm" in sys.argv:
        import tensorflow  # noqa: F401  (warm: pay the import before the task arrives)

        print(READY_LINE, flush=True)
    elif "--warm-litert" in sys.argv:  # LiteRT tasks: no TensorFlow at all
        for name in ("ai_edge_litert.interpreter", "ai_edge_litert.compiled_model"):
            importlib.import_module(name)
        importlib.import_module("core.worker.measure_batch")
        print(READY_LINE, flush=True)
    line = sys.stdin.readline()
    if not line:
        return 0
    req = json.loads(line)
    clock.sent_at(req.get("sent"))
    workdir = Path(req["workdir"])
    os.chdir(workdir)
    out = workdir / "result.json"
    phase = Phase(req.get("phase") or Phase.JOB.value)
    try:
        task = str(req["task"])
        request = from_data(REQUESTS[task], req.get("request") or {})
        mod_name, func_name = TASKS[task].split(":")
        func = getattr(importlib.import_module(mod_name), func_name)
        result = func(request, workdir, _progress_writer(workdir))
        body: dict[str, Any] = {"ok": True, "result": to_data(result)}
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
    except Exception as e:  # noqa: BLE001  (the process boundary: the trace stays in its log)
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
