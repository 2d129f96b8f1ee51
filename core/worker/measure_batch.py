"""Worker task ``measure_batch``: every converted file of a sweep measured in
this one LiteRT process (no TensorFlow): accuracy against the reference,
then latency.

All accuracy runs come before any timing, and nothing else of the sweep runs
meanwhile, so the timings are taken on a quiet machine. Each finished item is
journaled: if LiteRT kills the process, the caller keeps what was measured
and measures the rest one file per process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import StudioError
from core.serial import to_data
from core.tasks.batch import MeasureBatchRequest, MeasureBatchResult, MeasuredItem
from core.tasks.requests import LatencyRequest, TfliteEvalRequest
from core.worker import latency
from core.worker.run_tflite import evaluate_file

__all__ = ["run"]


def _journal(path: Path, **entry: object) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def _quiet(*_a: Any, **_k: Any) -> None:
    return None


def run(
    req: MeasureBatchRequest, workdir: Path, progress: Callable[..., None]
) -> MeasureBatchResult:
    journal = workdir / req.journal_out
    acc: dict[str, dict[str, Any] | StudioError] = {}
    secs: dict[str, dict[str, float]] = {it.label: {} for it in req.items}
    for it in req.items:
        progress(f"{it.label}: evaluating")
        _journal(journal, start=it.label, step="evaluate")
        t = time.perf_counter()
        try:
            res = evaluate_file(
                TfliteEvalRequest(
                    tflite_path=it.tflite_path,
                    reference=req.reference,
                    display_name=Path(it.tflite_path).name,
                    preset=it.preset,
                    thresholds=req.thresholds,
                ),
                _quiet,
            )
            acc[it.label] = res.to_dict()
        except StudioError as e:
            acc[it.label] = e
        secs[it.label]["evaluate"] = round(time.perf_counter() - t, 4)
        progress(f"{it.label}: evaluated")
    items: list[MeasuredItem] = []
    for it in req.items:
        got = acc[it.label]
        if isinstance(got, StudioError):
            item = MeasuredItem(it.label, error=got.to_dict(), failed_step="evaluate")
        else:
            item = _timed(req, it.label, it.tflite_path, got, secs[it.label], workdir, progress)
        items.append(item)
        _journal(journal, item=to_data(item))
        progress(f"{it.label}: done")
    return MeasureBatchResult(tuple(items))


def _timed(
    req: MeasureBatchRequest,
    label: str,
    path: str,
    accuracy: dict[str, Any],
    secs: dict[str, float],
    workdir: Path,
    progress: Callable[..., None],
) -> MeasuredItem:
    progress(f"{label}: timing")
    _journal(workdir / req.journal_out, start=label, step="benchmark")
    t = time.perf_counter()
    try:
        lat = latency.run(
            LatencyRequest(
                tflite_path=path,
                threads=req.threads,
                runs=req.runs,
                warmup=req.warmup,
                sample_npz=req.reference.npz_path,
                max_seconds=req.max_seconds,
            ),
            workdir,
            _quiet,
        )
    except StudioError as e:
        secs["benchmark"] = round(time.perf_counter() - t, 4)
        return MeasuredItem(
            label, accuracy=accuracy, error=e.to_dict(), failed_step="benchmark", seconds=secs
        )
    secs["benchmark"] = round(time.perf_counter() - t, 4)
    return MeasuredItem(label, accuracy=accuracy, latency=lat.to_dict(), seconds=secs)
