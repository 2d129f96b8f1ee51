"""Latency of a ``.tflite`` file on this server's CPU, with the LiteRT runtime.

``benchmark(path, threads=(1, 2), runs=50, warmup=10)`` runs the model in an
isolated worker process (the runtime can crash on a bad model; that fails the
measurement, not the caller) and returns a frozen ``LatencyResult``.

How it measures, like LiteRT's own ``benchmark_model`` / ``litert-benchmark``:
one ``ai_edge_litert.interpreter.Interpreter`` per thread count with its
default delegate (XNNPACK) applied, inputs set once, ``warmup`` untimed
invocations, then ``runs`` timed calls of ``invoke()`` alone (no copying of
inputs or outputs), each timed with ``perf_counter_ns``. The figures are mean,
median (p50), p90, min, max and standard deviation in milliseconds. Memory is
the resident-set growth of the process from before the interpreter is built
until after the warm-up (model, arena, delegate), plus the process's peak.

No TensorFlow is imported here.
"""

from __future__ import annotations

import gc
import math
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import EvaluateError, Phase
from core.worker import work_folder

__all__ = ["ThreadLatency", "LatencyResult", "benchmark", "parse_threads", "measure_latency"]

DEFAULT_RUNS = 50
DEFAULT_WARMUP = 10
MAX_SECONDS_PER_SETTING = 30.0  # timed runs stop early on a slow model (at least 5 runs)


@dataclass(frozen=True)
class ThreadLatency:
    threads: int
    runs: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    init_ms: float  # building the interpreter and allocating tensors
    first_ms: float  # the first (cold) invocation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LatencyResult:
    model: str
    size_bytes: int
    runtime: str  # e.g. "ai-edge-litert 2.3.0 Interpreter"
    delegate: str  # "XNNPACK" or "none (builtin kernels)"
    warmup: int
    settings: tuple[ThreadLatency, ...]
    rss_delta_bytes: int  # resident memory the model added (first setting)
    peak_rss_bytes: int  # peak resident memory of the measuring process
    cpu_count: int
    input_source: str  # "random" | "sample"

    @property
    def best(self) -> ThreadLatency:
        return min(self.settings, key=lambda s: s.p50_ms)

    def at(self, threads: int) -> ThreadLatency | None:
        return next((s for s in self.settings if s.threads == threads), None)

    @property
    def p50_ms(self) -> float:
        return self.best.p50_ms

    def to_dict(self) -> dict[str, Any]:
        b = self.best
        return {
            "model": self.model,
            "size_bytes": self.size_bytes,
            "runtime": self.runtime,
            "delegate": self.delegate,
            "threads": b.threads,
            "p50_ms": b.p50_ms,
            "mean_ms": b.mean_ms,
            "p90_ms": b.p90_ms,
            "min_ms": b.min_ms,
            "runs": b.runs,
            "warmup": self.warmup,
            "rss_delta_bytes": self.rss_delta_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
            "cpu_count": self.cpu_count,
            "input_source": self.input_source,
            "settings": [s.to_dict() for s in self.settings],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyResult:
        return cls(
            model=d["model"],
            size_bytes=int(d["size_bytes"]),
            runtime=d["runtime"],
            delegate=d["delegate"],
            warmup=int(d["warmup"]),
            settings=tuple(ThreadLatency(**s) for s in d["settings"]),
            rss_delta_bytes=int(d["rss_delta_bytes"]),
            peak_rss_bytes=int(d["peak_rss_bytes"]),
            cpu_count=int(d["cpu_count"]),
            input_source=d.get("input_source", "random"),
        )

    def to_text(self) -> str:
        lines = [
            f"{self.model} ({self.size_bytes:,} bytes) on {self.runtime}, delegate "
            f"{self.delegate}, {self.warmup} warm-up runs, {self.cpu_count} CPUs",
            f"{'threads':>7}  {'p50 ms':>9}  {'mean ms':>9}  {'p90 ms':>9}  {'min ms':>9}  "
            f"{'runs':>5}",
        ]
        for s in self.settings:
            lines.append(
                f"{s.threads:>7}  {s.p50_ms:>9.4f}  {s.mean_ms:>9.4f}  {s.p90_ms:>9.4f}  "
                f"{s.min_ms:>9.4f}  {s.runs:>5}"
            )
        lines.append(
            f"memory: +{self.rss_delta_bytes / (1 << 20):.1f} MiB resident for the model "
            f"(process peak {self.peak_rss_bytes / (1 << 20):.0f} MiB)"
        )
        b = self.best
        lines.append(f"fastest: {b.p50_ms:.4f} ms median with {b.threads} thread(s)")
        return "\n".join(lines)


def parse_threads(text: str | int | None, cpu_count: int | None = None) -> tuple[int, ...]:
    """``"2"`` → (2,); ``"1,2,4"`` → (1, 2, 4); ``"1-4"`` → (1, 2, 3, 4);
    ``"max"`` → (number of CPUs,)."""
    from core.errors import OptionsError

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


# ---------------------------------------------------------------- caller side


def benchmark(
    tflite_path: str | os.PathLike[str],
    *,
    threads: tuple[int, ...] | list[int] = (1,),
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    xnnpack: bool = True,
    sample_npz: str | os.PathLike[str] | None = None,
    max_seconds: float = MAX_SECONDS_PER_SETTING,
    workdir: str | os.PathLike[str] | None = None,
    limits: Any = None,
    cancel: Any = None,
    on_progress: Callable[[str], None] | None = None,
) -> LatencyResult:
    """Time ``tflite_path`` in an isolated worker process (see module doc).

    ``sample_npz``: a reference file from ``core.evaluate`` whose first sample
    is used as input (else random values, as ``litert-benchmark`` does).
    Raises ``EvaluateError`` when the model cannot run here (Select TF ops,
    custom ops) or the runtime fails on it."""
    from core.evaluate import runtime_blocker
    from core.worker import run_isolated

    path = Path(os.path.abspath(tflite_path))
    if not path.is_file():
        raise EvaluateError(f"{path.name} was not found.", "Check the path.")
    if runs < 1 or warmup < 0:
        raise EvaluateError("Runs must be at least 1 and warm-up runs at least 0.",
                            "Use for example --runs 50 --warmup 10.", phase=Phase.OPTIONS)
    blocker = runtime_blocker(path)
    if blocker is not None:
        raise blocker
    with work_folder(workdir, "tflite-bench-") as wd:
        payload = {
            "mode": "benchmark",
            "tflite_path": str(path),
            "threads": [int(t) for t in threads],
            "runs": int(runs),
            "warmup": int(warmup),
            "xnnpack": bool(xnnpack),
            "sample_npz": str(Path(sample_npz).resolve()) if sample_npz else None,
            "max_seconds": float(max_seconds),
        }
        out = run_isolated("evaluate", payload, workdir=wd, limits=limits,
                           phase=Phase.EVALUATE, cancel=cancel, on_progress=on_progress)
        return LatencyResult.from_dict(out)


# ---------------------------------------------------------------- worker side


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _percentile(sorted_ms: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_ms:
        return 0.0
    k = (len(sorted_ms) - 1) * p / 100.0
    f = math.floor(k)
    c = min(f + 1, len(sorted_ms) - 1)
    return sorted_ms[f] + (k - f) * (sorted_ms[c] - sorted_ms[f])


def _inputs(interp: Any, sample: dict[str, Any] | None, rng: Any) -> dict[int, Any]:
    import numpy as np

    out = {}
    for d in interp.get_input_details():
        dtype = np.dtype(d["dtype"])
        shape = [int(v) for v in d["shape"]]
        arr = None
        if sample is not None:
            arr = sample.get(d["name"])
        if arr is not None and tuple(arr.shape) == tuple(shape) and arr.dtype == dtype:
            out[d["index"]] = arr
            continue
        if np.issubdtype(dtype, np.floating):
            out[d["index"]] = rng.uniform(-1.0, 1.0, shape).astype(dtype)
        elif np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            out[d["index"]] = rng.integers(max(info.min, -128), min(info.max, 127) + 1,
                                           size=shape).astype(dtype)
        elif dtype == np.bool_:
            out[d["index"]] = np.zeros(shape, dtype=dtype)
        else:
            raise EvaluateError(
                f"Input {d['name']!r} has type {dtype}, which the benchmark cannot fill.",
                "Benchmark a model with numeric inputs.",
            )
    return out


def measure_latency(payload: dict[str, Any], progress: Callable[..., None]) -> dict[str, Any]:
    """Worker side of ``benchmark`` (no TensorFlow)."""
    import numpy as np
    from ai_edge_litert import interpreter as litert

    path = Path(payload["tflite_path"])
    threads = [int(t) for t in payload.get("threads") or [1]]
    runs = int(payload.get("runs", DEFAULT_RUNS))
    warmup = int(payload.get("warmup", DEFAULT_WARMUP))
    max_s = float(payload.get("max_seconds", MAX_SECONDS_PER_SETTING))
    xnnpack = bool(payload.get("xnnpack", True))
    resolver = (litert.OpResolverType.AUTO if xnnpack
                else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    sample = None
    sample_path = payload.get("sample_npz")
    if sample_path and Path(sample_path).is_file():
        sample = _first_sample(Path(sample_path))
    rng = np.random.default_rng(0)
    settings: list[ThreadLatency] = []
    rss_delta = 0
    used_sample = False
    for k, n in enumerate(threads):
        progress(f"Timing with {n} thread{'s' if n != 1 else ''}")
        gc.collect()
        rss0 = _rss_bytes()
        t0 = time.perf_counter_ns()
        try:
            interp = litert.Interpreter(model_path=str(path), num_threads=n,
                                        experimental_op_resolver_type=resolver)
            interp.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            raise EvaluateError(
                f"The LiteRT runtime could not load {path.name}: {str(e).splitlines()[0][:300]}",
                "Check the model in Inspect; a model that needs Select TF ops or custom ops "
                "cannot run in this server's runtime.",
            ) from None
        init_ms = (time.perf_counter_ns() - t0) / 1e6
        quantized_sample = _quantize_sample(interp, sample) if sample is not None else None
        feeds = _inputs(interp, quantized_sample, rng)
        used_sample = used_sample or quantized_sample is not None
        for idx, arr in feeds.items():
            interp.set_tensor(idx, arr)
        invoke = interp.invoke
        clock = time.perf_counter_ns
        try:
            t = clock()
            invoke()
            first_ms = (clock() - t) / 1e6
            for _ in range(max(0, warmup - 1)):
                invoke()
        except RuntimeError as e:
            raise EvaluateError(
                f"The model failed while running: {str(e).splitlines()[0][:300]}",
                "Check the input shapes; a model with dynamic shapes may need "
                "--input-shape when converting.",
            ) from None
        if k == 0:
            rss_delta = max(0, _rss_bytes() - rss0)
        times: list[float] = []
        deadline = clock() + int(max_s * 1e9)
        for i in range(runs):
            t = clock()
            invoke()
            times.append((clock() - t) / 1e6)
            if i >= 4 and clock() > deadline:
                break
        times_sorted = sorted(times)
        settings.append(ThreadLatency(
            threads=n,
            runs=len(times),
            mean_ms=round(statistics.fmean(times), 6),
            p50_ms=round(_percentile(times_sorted, 50), 6),
            p90_ms=round(_percentile(times_sorted, 90), 6),
            min_ms=round(times_sorted[0], 6),
            max_ms=round(times_sorted[-1], 6),
            std_ms=round(statistics.stdev(times) if len(times) > 1 else 0.0, 6),
            init_ms=round(init_ms, 3),
            first_ms=round(first_ms, 4),
        ))
        del invoke, interp
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        from importlib.metadata import version

        runtime = f"ai-edge-litert {version('ai-edge-litert')} Interpreter"
    except Exception:  # noqa: BLE001
        runtime = "ai-edge-litert Interpreter"
    return LatencyResult(
        model=path.name,
        size_bytes=path.stat().st_size,
        runtime=runtime,
        delegate="XNNPACK" if xnnpack else "none (builtin kernels)",
        warmup=warmup,
        settings=tuple(settings),
        rss_delta_bytes=rss_delta,
        peak_rss_bytes=peak,
        cpu_count=os.cpu_count() or 1,
        input_source="sample" if used_sample else "random",
    ).to_dict()


def _first_sample(path: Path) -> dict[str, Any] | None:
    """Inputs of the first sample of a reference file (keys ``in__NAME``)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k[4:]: z[k][:1] for k in z.files if k.startswith("in__")}
    except (OSError, ValueError):
        return None


def _quantize_sample(interp: Any, sample: dict[str, Any]) -> dict[str, Any] | None:
    """Map signature input names to tensor names and quantize float samples."""
    from core.evaluate import quantize_input

    try:
        sigs = interp.get_signature_list()
    except Exception:  # noqa: BLE001
        return None
    if not sigs:
        return None
    key = next(iter(sigs))
    runner = interp.get_signature_runner(key)
    details = runner.get_input_details()
    out = {}
    for name, d in details.items():
        arr = sample.get(name)
        if arr is None:
            return None
        q, _ = quantize_input(arr, d)
        out[d["name"]] = q
    return out
