"""Worker task ``convert_batch``: unpack and load the model once, run the
reference (when asked), then convert it with each plan in turn.

The converter leaks memory across calls and can abort its process, so the
caller keeps batches short (a sweep's presets, split over its workers) and
sends a large model one conversion per process. Each finished conversion is
journaled: if the process dies, the caller keeps those and converts the rest
one per process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from core.errors import StudioError
from core.serial import to_data
from core.tasks.batch import BatchItem, ConvertBatchRequest, ConvertBatchResult
from core.worker import clock
from core.worker.convert import convert_loaded, refuse_tflite
from core.worker.loader import load_model
from core.worker.reference import reference_loaded

__all__ = ["run"]


def _journal(path: Path, **entry: object) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def run(
    req: ConvertBatchRequest, workdir: Path, progress: Callable[..., None]
) -> ConvertBatchResult:
    name = req.display_name or Path(req.model_path).name
    journal = workdir / req.journal_out
    out_dir = workdir / req.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = [
        replace(p, calibration_path=req.calibration_path) if p.calibration_path else p
        for p in req.plans
    ]
    timings: dict[str, float] = {}
    wait = clock.waited()
    if wait is not None:
        timings["waiting for the worker"] = wait
    t = time.perf_counter()
    items: list[BatchItem] = []
    with load_model(
        req.model_path,
        name,
        plans[0],
        req.unpack_limits,
        workdir,
        progress,
        refuse_tflite=refuse_tflite,
    ) as lm:
        timings["load"] = time.perf_counter() - t
        reference = None
        if req.reference is not None:
            t = time.perf_counter()
            progress("reference: running the original model")
            reference = reference_loaded(lm, req.reference, name, workdir, lambda *a, **k: None)
            timings["reference"] = time.perf_counter() - t
            _journal(journal, reference=to_data(reference))
        for k, options in enumerate(plans):
            t = time.perf_counter()
            progress(f"{options.preset.value}: converting", index=k)
            _journal(journal, start=k)
            try:
                res = convert_loaded(
                    lm, name, options, out_dir / f"{k}.tflite", workdir, lambda *a, **kw: None
                )
                item = BatchItem(k, result=res)
            except StudioError as e:
                item = BatchItem(k, error=e.to_dict())
            items.append(item)
            _journal(journal, item=to_data(item))
            timings[f"convert {options.preset.value}"] = time.perf_counter() - t
            progress(f"{options.preset.value}: converted", index=k)
    return ConvertBatchResult(
        items=tuple(items),
        reference=reference,
        timings={k: round(v, 4) for k, v in timings.items()},
    )
