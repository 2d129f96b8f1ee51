"""The parallel, warm work of a sweep.

Conversions: the presets are split over warm TensorFlow workers (one per
core), each loading the model once, the first also running the reference.
The converter leaks memory across calls and can abort its process, so a
batch is a handful of presets, a model over ``BATCH_LIMIT_BYTES`` is
converted one preset per process, and a batch that dies leaves the presets
it did not finish to one process each (where a crash fails only its row).

Measuring: every converted file in one LiteRT worker (no TensorFlow), warmed
up while the last conversions run; a crash there leaves the rest to one
process per file.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import Cancelled, StudioError, WorkerError, WorkerTimeout
from core.options import ConversionOptions
from core.pipeline.convert import convert_model
from core.pipeline.isolation import RunContext, WarmPool, run_task
from core.pipeline.journal import read_journal
from core.serial import DataError, from_data
from core.tasks.batch import (
    BatchItem,
    ConvertBatchRequest,
    ConvertBatchResult,
    MeasureBatchRequest,
    MeasureBatchResult,
    MeasuredItem,
    MeasureItem,
)
from core.tasks.requests import ReferenceRequest
from core.tasks.results import ConversionResult, Reference

__all__ = [
    "BATCH_LIMIT_BYTES",
    "Status",
    "Converted",
    "convert_all",
    "measure_all",
    "split",
    "workers_for",
]

BATCH_LIMIT_BYTES = 256 << 20  # above: one conversion per process (the converter's leaks)


class Status:
    """Where each preset is (waiting, converting, evaluating, timing, done,
    failed), said as one line whenever one of them moves."""

    def __init__(self, labels: list[str], ctx: RunContext) -> None:
        self.state = dict.fromkeys(labels, "waiting")
        self.ctx = ctx
        self.lock = threading.Lock()

    def set(self, label: str, state: str) -> None:
        with self.lock:
            if label not in self.state or self.state[label] == state:
                return
            self.state[label] = state
            line = " · ".join(f"{k}: {v}" for k, v in self.state.items())
        self.ctx.say(line)

    def hears(self, labels: list[str]) -> Callable[[str], None]:
        """A progress sink for a worker whose lines start with a label or ``#k``."""

        def on(message: str) -> None:
            head, _, state = message.partition(": ")
            if head.startswith("#") and head[1:].isdigit() and int(head[1:]) < len(labels):
                head = labels[int(head[1:])]
            if state:
                self.set(head, state)

        return on


@dataclass
class Converted:
    """What the conversions produced, per sweep plan index."""

    results: dict[int, ConversionResult] = field(default_factory=dict)
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    reference: Reference | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _cost(options: ConversionOptions) -> float:
    return 3.0 if options.preset.needs_calibration else 1.0


def split(plans: list[ConversionOptions], workers: int, reference: bool) -> list[list[int]]:
    """Plan indices per worker, longest first onto the least loaded (the
    reference, about one conversion, goes with bin 0)."""
    bins: list[list[int]] = [[] for _ in range(max(1, workers))]
    load = [1.0 if reference else 0.0] + [0.0] * (len(bins) - 1)
    for k in sorted(range(len(plans)), key=lambda k: -_cost(plans[k])):
        b = min(range(len(bins)), key=load.__getitem__)
        bins[b].append(k)
        load[b] += _cost(plans[k])
    return [sorted(b) for b in bins if b]


@dataclass
class _Batch:
    model: Path
    name: str
    plans: list[ConversionOptions]
    labels: list[str]
    outs: list[Path]
    calibration: str | None
    reference: ReferenceRequest | None
    wd: Path
    ctx: RunContext
    status: Status


def _run_batch(b: _Batch, indices: list[int], with_ref: bool, into: Converted) -> None:
    wd = b.wd / f"batch-{indices[0]}"
    labels = [b.labels[k] for k in indices]
    request = ConvertBatchRequest(
        model_path=str(b.model),
        display_name=b.name,
        plans=tuple(b.plans[k] for k in indices),  # the worker points them at its copy
        calibration_path=b.calibration,
        reference=b.reference if with_ref else None,
    )
    ctx = replace(b.ctx, on_progress=b.status.hears(labels))
    t = time.perf_counter()
    try:
        res = run_task(request, ConvertBatchResult, workdir=wd, ctx=ctx)
        items, reference, timings = list(res.items), res.reference, res.timings
    except (WorkerError, WorkerTimeout) as e:
        items, reference = _after_crash(wd / request.journal_out)
        timings = {"batch crashed": round(time.perf_counter() - t, 3)}
        b.ctx.say(f"A conversion batch stopped ({e.message[:120]}); converting the rest one by one")
    done = {it.index for it in items}
    for it in items:
        _keep(b, indices[it.index], it, wd / request.out_dir / f"{it.index}.tflite", into)
    if reference is not None:
        into.reference = replace(reference, npz_path=str(wd / "reference.npz"))
    tag = "+".join(labels)
    into.timings.update(
        {f"{key} ({tag})" if key == "load" else key: v for key, v in timings.items()}
    )
    for j, k in enumerate(indices):
        if j not in done:
            _convert_one(b, k, into)


def _after_crash(journal: Path) -> tuple[list[BatchItem], Reference | None]:
    items, reference = [], None
    for e in read_journal(journal):
        try:
            if "item" in e:
                items.append(from_data(BatchItem, e["item"]))
            elif "reference" in e:
                reference = from_data(Reference, e["reference"])
        except DataError:
            continue
    return items, reference


def _keep(b: _Batch, k: int, item: BatchItem, produced: Path, into: Converted) -> None:
    label = b.labels[k]
    if item.result is None or not produced.is_file():
        into.errors[k] = item.error or {"message": "The conversion wrote no file."}
        b.status.set(label, "failed")
        return
    b.outs[k].parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(produced), str(b.outs[k]))
    into.results[k] = replace(item.result, output_path=str(b.outs[k]))
    b.status.set(label, "converted")


def _convert_one(b: _Batch, k: int, into: Converted) -> None:
    """One preset in a process of its own (after a batch died, or a big model)."""
    label = b.labels[k]
    b.status.set(label, "converting")
    t = time.perf_counter()
    try:
        res = convert_model(
            b.model,
            b.outs[k],
            b.plans[k],
            workdir=b.wd / f"one-{k}",
            display_name=b.name,
            ctx=b.ctx.quiet().without_pool(),
        )
        into.results[k] = res
        b.status.set(label, "converted")
    except Cancelled:
        raise
    except StudioError as e:
        into.errors[k] = e.to_dict()
        b.status.set(label, "failed")
    into.timings[f"convert {label}"] = round(time.perf_counter() - t, 4)


def _load_key(o: ConversionOptions) -> tuple[Any, ...]:
    return (o.signature_key, tuple(sorted(o.input_shapes)))


def convert_all(
    model: Path,
    name: str,
    plans: list[ConversionOptions],
    labels: list[str],
    outs: list[Path],
    reference: ReferenceRequest | None,
    wd: Path,
    ctx: RunContext,
    status: Status,
    workers: int,
    on_first_done: Callable[[], None] | None = None,
) -> Converted:
    """Every plan converted (and the reference run), in parallel batches;
    ``on_first_done`` is called once, when the first batch is through (the
    caller warms up what comes next on the core that just became free)."""
    into = Converted()
    cal = next((p.calibration_path for p in plans if p.calibration_path), None)
    b = _Batch(model, name, plans, labels, outs, cal, reference, wd, ctx, status)
    size = model.stat().st_size if model.is_file() else 0
    groups: dict[tuple[Any, ...], list[int]] = {}
    for k, p in enumerate(plans):
        groups.setdefault(_load_key(p), []).append(k)
    work: list[list[int]] = []
    for members in groups.values():
        if size > BATCH_LIMIT_BYTES:
            work += [[k] for k in members]
        else:
            parts = split([plans[k] for k in members], workers, reference is not None and not work)
            work += [[members[j] for j in part] for part in parts]
    once = threading.Lock()
    fired: list[bool] = []

    def batch(part: list[int], with_ref: bool) -> None:
        _run_batch(b, part, with_ref, into)
        with once:
            if on_first_done is not None and not fired:
                fired.append(True)
                on_first_done()

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [
            pool.submit(batch, part, reference is not None and i == 0)
            for i, part in enumerate(work)
        ]
        for f in futures:
            f.result()
    return into


def measure_all(
    rows: Sequence[tuple[str, Path, str | None]],
    reference: Reference,
    request: MeasureBatchRequest,
    wd: Path,
    ctx: RunContext,
    status: Status,
    pool: WarmPool | None,
) -> MeasureBatchResult:
    """Accuracy and latency of every (label, file, preset) in one LiteRT
    worker; ``request`` carries the settings (its items are replaced)."""
    req = replace(
        request,
        items=tuple(MeasureItem(label, str(path), preset) for label, path, preset in rows),
        reference=reference,
    )
    run_ctx = replace(ctx, on_progress=status.hears([r[0] for r in rows]), pool=pool)
    try:
        return run_task(req, MeasureBatchResult, workdir=wd, ctx=run_ctx)
    except (WorkerError, WorkerTimeout) as e:
        ctx.say(f"Measuring stopped ({e.message[:120]}); measuring the rest one by one")
        done = {}
        for entry in read_journal(wd / req.journal_out):
            if "item" in entry:
                try:
                    item = from_data(MeasuredItem, entry["item"])
                except DataError:
                    continue
                done[item.label] = item
        return MeasureBatchResult(tuple(done.values()))


def workers_for() -> int:
    """One TensorFlow worker per core, at most 4 (each holds a model and
    TensorFlow in memory)."""
    return max(1, min(4, os.cpu_count() or 1))
