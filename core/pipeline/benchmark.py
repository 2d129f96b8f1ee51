"""Latency of a ``.tflite`` on this server's CPU with the LiteRT runtime,
measured in an isolated worker (the runtime can crash on a bad model; that
fails the measurement, not the caller). See ``core.worker.latency``."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import EvaluateError, OptionsError, Phase
from core.pipeline.isolation import RunContext, run_task, work_folder
from core.tasks.requests import LatencyRequest
from core.tasks.results import LatencyResult, ThreadLatency

__all__ = [
    "benchmark",
    "parse_threads",
    "headline_latency",
    "RUNTIMES",
    "DEFAULT_RUNTIME",
    "DEFAULT_RUNS",
    "DEFAULT_WARMUP",
]

DEFAULT_RUNS = 50
DEFAULT_WARMUP = 10
MAX_SECONDS_PER_SETTING = 30.0  # timed runs stop early on a slow model (at least 5 runs)
RUNTIMES = ("compiled_model", "interpreter")
DEFAULT_RUNTIME = "compiled_model"


def parse_threads(text: str | int | None, cpu_count: int | None = None) -> tuple[int, ...]:
    """``"2"`` → (2,); ``"1,2,4"`` → (1, 2, 4); ``"1-4"`` → (1, 2, 3, 4);
    ``"max"`` → (number of CPUs,)."""
    cpus = cpu_count or os.cpu_count() or 1
    if text is None or text == "":
        return (1,)
    if isinstance(text, int):
        vals = [text]
    else:
        t = str(text).strip().lower()
        try:
            if t == "max":
                vals = [cpus]
            elif "-" in t:
                lo, hi = (int(v) for v in t.split("-", 1))
                vals = list(range(lo, hi + 1))
            else:
                vals = [int(v) for v in t.split(",") if v.strip()]
        except ValueError:
            raise OptionsError(
                f"Cannot read the thread counts {text!r}.",
                "Give one number (2), a list (1,2,4), a range (1-4) or max.",
            ) from None
    if not vals or any(v < 1 or v > 256 for v in vals):
        raise OptionsError(
            f"Thread counts must be between 1 and 256; got {text!r}.",
            f"This server has {cpus} CPUs; 1 to {cpus} threads make sense.",
        )
    return tuple(sorted(set(vals)))


def headline_latency(lat: LatencyResult, threads: tuple[int, ...]) -> ThreadLatency:
    """The figure a sweep row shows: the fewest threads measured (every row alike)."""
    return lat.at(min(threads)) or lat.best


def benchmark(
    tflite_path: str | os.PathLike[str],
    *,
    threads: tuple[int, ...] = (1,),
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    xnnpack: bool = True,
    runtime: str = DEFAULT_RUNTIME,
    sample_npz: str | os.PathLike[str] | None = None,
    max_seconds: float = MAX_SECONDS_PER_SETTING,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> LatencyResult:
    """Time ``tflite_path`` in an isolated worker process.

    ``sample_npz``: a reference file (``core.pipeline.evaluate``) whose first
    sample is the input (else random values, as ``litert-benchmark`` does).
    ``runtime``: ``"compiled_model"`` or ``"interpreter"``; ``xnnpack=False``
    needs the interpreter and uses it. Raises ``EvaluateError`` when the model
    cannot run here (Select TF ops, custom ops) or the runtime fails on it."""
    path = Path(os.path.abspath(tflite_path))
    if not path.is_file():
        raise EvaluateError(f"{path.name} was not found.", "Check the path.")
    if runs < 1 or warmup < 0:
        raise EvaluateError(
            "Runs must be at least 1 and warm-up runs at least 0.",
            "Use for example --runs 50 --warmup 10.",
            phase=Phase.OPTIONS,
        )
    if runtime not in RUNTIMES:
        raise EvaluateError(
            f"Unknown runtime {runtime!r}.",
            f"Use one of: {', '.join(RUNTIMES)}.",
            phase=Phase.OPTIONS,
        )
    ctx = (ctx or RunContext()).without_pool()  # LiteRT only: no TensorFlow to pre-load
    with work_folder(workdir, "tflite-bench-") as wd:
        request = LatencyRequest(
            tflite_path=str(path),
            threads=tuple(int(t) for t in threads),
            runs=int(runs),
            warmup=int(warmup),
            xnnpack=bool(xnnpack),
            runtime=runtime,
            sample_npz=str(Path(sample_npz).resolve()) if sample_npz else None,
            max_seconds=float(max_seconds),
        )
        return run_task(request, LatencyResult, workdir=wd, ctx=ctx)
