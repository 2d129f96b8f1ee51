"""Latency of a ``.tflite`` file on this server's CPU, with the LiteRT runtime.

``benchmark(path, threads=(1, 2), runs=50, warmup=10)`` runs the model in an
isolated worker process (the runtime can crash on a bad model; that fails the
measurement, not the caller) and returns a frozen ``LatencyResult``.

Two runtimes (``runtime=``):

* ``"compiled_model"`` (default): LiteRT's ``CompiledModel`` API on the CPU
  accelerator, set up as ``litert-benchmark`` does (one environment, one
  compiled model per thread count with ``CpuOptions(num_threads=N)``, input and
  output buffers created once, inputs written once, timed ``run_by_name``).
  If it cannot load or run a model, the interpreter is used instead and
  ``note`` says so.
* ``"interpreter"``: ``ai_edge_litert.interpreter.Interpreter`` with its default
  delegate (XNNPACK), inputs set once, timed ``invoke()``.

Both: ``warmup`` untimed runs, then ``runs`` timed calls (no copying of inputs
or outputs), each timed with ``perf_counter_ns``. The figures are mean,
median (p50), p90, min, max and standard deviation in milliseconds. Memory is
the resident-set growth of the process from before the model is built
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
from functools import partial
from pathlib import Path
from typing import Any

from core.errors import EvaluateError, Phase
from core.worker import work_folder

__all__ = ["ThreadLatency", "LatencyResult", "benchmark", "parse_threads", "measure_latency",
           "RUNTIMES", "DEFAULT_RUNTIME"]

DEFAULT_RUNS = 50
DEFAULT_WARMUP = 10
MAX_SECONDS_PER_SETTING = 30.0  # timed runs stop early on a slow model (at least 5 runs)
RUNTIMES = ("compiled_model", "interpreter")
DEFAULT_RUNTIME = "compiled_model"


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
    runtime: str  # e.g. "ai-edge-litert 2.3.0 CompiledModel"
    delegate: str  # "XNNPACK" or "none (builtin kernels)"
    warmup: int
    settings: tuple[ThreadLatency, ...]
    rss_delta_bytes: int  # resident memory the model added (first setting)
    peak_rss_bytes: int  # peak resident memory of the measuring process
    cpu_count: int
    input_source: str  # "random" | "sample"
    runtime_api: str = "interpreter"  # "compiled_model" | "interpreter" (the one that ran)
    note: str = ""  # e.g. why CompiledModel fell back to the interpreter

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
            "runtime_api": self.runtime_api,
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
            "note": self.note,
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
            runtime_api=d.get("runtime_api", "interpreter"),  # older results: Interpreter
            note=d.get("note", ""),
        )

    def to_text(self) -> str:
        lines = [
            f"{self.model} ({self.size_bytes:,} bytes) on {self.runtime} "
            f"(runtime {self.runtime_api}), delegate "
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
        if self.note:
            lines.append(f"note: {self.note}")
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
    runtime: str = DEFAULT_RUNTIME,
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
    ``runtime``: ``"compiled_model"`` or ``"interpreter"`` (see module doc);
    ``xnnpack=False`` needs the interpreter and uses it.
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
    if runtime not in RUNTIMES:
        raise EvaluateError(f"Unknown runtime {runtime!r}.",
                            f"Use one of: {', '.join(RUNTIMES)}.", phase=Phase.OPTIONS)
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
            "runtime": runtime,
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


def _fill(name: str, dtype: Any, shape: list[int], sample: dict[str, Any] | None,
          rng: Any) -> Any:
    """The sample's array for ``name`` if it fits, else random values."""
    import numpy as np

    dtype = np.dtype(dtype)
    arr = sample.get(name) if sample is not None else None
    if arr is not None and tuple(arr.shape) == tuple(shape) and arr.dtype == dtype:
        return arr
    if np.issubdtype(dtype, np.floating):
        return rng.uniform(-1.0, 1.0, shape).astype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -128), min(info.max, 127) + 1,
                            size=shape).astype(dtype)
    if dtype == np.bool_:
        return np.zeros(shape, dtype=dtype)
    raise EvaluateError(
        f"Input {name!r} has type {dtype}, which the benchmark cannot fill.",
        "Benchmark a model with numeric inputs.",
    )


def _inputs(interp: Any, sample: dict[str, Any] | None, rng: Any) -> dict[int, Any]:
    return {d["index"]: _fill(d["name"], d["dtype"], [int(v) for v in d["shape"]], sample, rng)
            for d in interp.get_input_details()}


class _CompiledModelFailed(Exception):
    """CompiledModel could not load or run the model (the caller falls back)."""


def _warm_up(run: Callable[[], None], warmup: int) -> float:
    """Run ``max(1, warmup)`` times untimed; returns the first (cold) run's ms."""
    t = time.perf_counter_ns()
    run()
    first_ms = (time.perf_counter_ns() - t) / 1e6
    for _ in range(max(0, warmup - 1)):
        run()
    return first_ms


def _timed(run: Callable[[], None], runs: int, max_s: float) -> list[float]:
    clock = time.perf_counter_ns
    times: list[float] = []
    deadline = clock() + int(max_s * 1e9)
    for i in range(runs):
        t = clock()
        run()
        times.append((clock() - t) / 1e6)
        if i >= 4 and clock() > deadline:
            break
    return times


def _stats(n: int, times: list[float], init_ms: float, first_ms: float) -> ThreadLatency:
    times_sorted = sorted(times)
    return ThreadLatency(
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
    )


def _setting_interpreter(path: Path, n: int, resolver: Any, sample: dict[str, Any] | None,
                         rng: Any, runs: int, warmup: int, max_s: float
                         ) -> tuple[ThreadLatency, int, bool]:
    """One thread count on the Interpreter: (latency, RSS growth, sample used)."""
    from ai_edge_litert import interpreter as litert

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
    for idx, arr in _inputs(interp, quantized_sample, rng).items():
        interp.set_tensor(idx, arr)
    invoke = interp.invoke
    try:
        first_ms = _warm_up(invoke, warmup)
    except RuntimeError as e:
        raise EvaluateError(
            f"The model failed while running: {str(e).splitlines()[0][:300]}",
            "Check the input shapes; a model with dynamic shapes may need "
            "--input-shape when converting.",
        ) from None
    rss = max(0, _rss_bytes() - rss0)
    times = _timed(invoke, runs, max_s)
    del invoke, interp
    return _stats(n, times, init_ms, first_ms), rss, quantized_sample is not None


def _setting_compiled(path: Path, n: int, env: Any, sample: dict[str, Any] | None,
                      rng: Any, runs: int, warmup: int, max_s: float
                      ) -> tuple[ThreadLatency, int, bool, bool]:
    """One thread count on CompiledModel, as litert-benchmark sets it up:
    (latency, RSS growth, sample used, fully accelerated)."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import CpuOptions, Options

    gc.collect()
    rss0 = _rss_bytes()
    t0 = time.perf_counter_ns()
    try:
        model = CompiledModel.from_file(
            str(path), environment=env,
            options=Options(hardware_accelerators=HardwareAccelerator.CPU,
                            cpu_options=CpuOptions(num_threads=n)))
        sigs = model.get_signature_list()
        key = next(iter(sigs)) if sigs else "serving_default"
        in_details = model.get_input_tensor_details(key)
        ins = {k: model.create_input_buffer_by_name(key, k) for k in in_details}
        outs = {k: model.create_output_buffer_by_name(key, k)
                for k in model.get_output_tensor_details(key)}
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        raise _CompiledModelFailed(f"could not load: {_first_line(e)}") from None
    init_ms = (time.perf_counter_ns() - t0) / 1e6
    used = False
    for k, d in in_details.items():
        arr = _fill(k, _np_dtype(d.get("dtype", "float32")),
                    [int(v) for v in d.get("shape", [1])], sample, rng)
        used = used or (sample is not None and sample.get(k) is arr)
        try:
            ins[k].write(arr)
        except (RuntimeError, ValueError, TypeError) as e:
            raise _CompiledModelFailed(f"could not set input {k!r}: {_first_line(e)}") from None

    run = partial(model.run_by_name, key, ins, outs)  # what litert-benchmark times
    try:
        first_ms = _warm_up(run, warmup)
    except (RuntimeError, ValueError) as e:
        raise _CompiledModelFailed(f"failed while running: {_first_line(e)}") from None
    rss = max(0, _rss_bytes() - rss0)
    times = _timed(run, runs, max_s)
    full = model.is_fully_accelerated()
    del run, ins, outs, model
    return _stats(n, times, init_ms, first_ms), rss, used, full


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:300]


def _np_dtype(name: str) -> Any:
    import numpy as np

    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))


def _litert_version() -> str:
    try:
        from importlib.metadata import version

        return f"ai-edge-litert {version('ai-edge-litert')}"
    except Exception:  # noqa: BLE001
        return "ai-edge-litert"


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
    api = str(payload.get("runtime") or DEFAULT_RUNTIME)
    resolver = (litert.OpResolverType.AUTO if xnnpack
                else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    sample = None
    sample_path = payload.get("sample_npz")
    if sample_path and Path(sample_path).is_file():
        sample = _first_sample(Path(sample_path))
    notes: list[str] = []
    if api == "compiled_model" and not xnnpack:
        api = "interpreter"
        notes.append("Builtin kernels only (no XNNPACK) need the interpreter; it was used.")

    def run_all(api: str) -> tuple[list[ThreadLatency], int, bool, bool]:
        rng = np.random.default_rng(0)
        settings: list[ThreadLatency] = []
        rss_delta, used_sample, full = 0, False, True
        env = cm_sample = None
        if api == "compiled_model":
            from ai_edge_litert.environment import Environment, EnvironmentOptions

            try:
                env = Environment.create(options=EnvironmentOptions())
            except (RuntimeError, ValueError) as e:
                raise _CompiledModelFailed(f"no environment: {_first_line(e)}") from None
            if sample is not None:
                cm_sample = _sample_by_signature_name(path, sample)
        for k, n in enumerate(threads):
            progress(f"Timing with {n} thread{'s' if n != 1 else ''}")
            if api == "compiled_model":
                s, rss, used, f = _setting_compiled(path, n, env, cm_sample, rng, runs,
                                                    warmup, max_s)
                full = full and f
            else:
                s, rss, used = _setting_interpreter(path, n, resolver, sample, rng, runs,
                                                    warmup, max_s)
            settings.append(s)
            used_sample = used_sample or used
            if k == 0:
                rss_delta = rss
        return settings, rss_delta, used_sample, full

    try:
        settings, rss_delta, used_sample, full = run_all(api)
    except _CompiledModelFailed as e:
        notes.append(f"CompiledModel {e}; measured with the interpreter instead.")
        api = "interpreter"
        settings, rss_delta, used_sample, full = run_all(api)
    if api == "compiled_model" and not full:
        notes.append("Not every op ran on the CPU accelerator (XNNPACK); the rest used "
                     "LiteRT's builtin kernels.")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    name = "CompiledModel" if api == "compiled_model" else "Interpreter"
    return LatencyResult(
        model=path.name,
        size_bytes=path.stat().st_size,
        runtime=f"{_litert_version()} {name}",
        delegate="XNNPACK" if xnnpack else "none (builtin kernels)",
        warmup=warmup,
        settings=tuple(settings),
        rss_delta_bytes=rss_delta,
        peak_rss_bytes=peak,
        cpu_count=os.cpu_count() or 1,
        input_source="sample" if used_sample else "random",
        runtime_api=api,
        note=" ".join(notes),
    ).to_dict()


def _sample_by_signature_name(path: Path, sample: dict[str, Any]) -> dict[str, Any] | None:
    """Quantized sample keyed by signature input name (CompiledModel's names)."""
    from ai_edge_litert import interpreter as litert

    try:
        interp = litert.Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    except (RuntimeError, ValueError):
        return None
    by_tensor = _quantize_sample(interp, sample)
    if by_tensor is None:
        return None
    try:
        details = interp.get_signature_runner(next(iter(interp.get_signature_list()))
                                              ).get_input_details()
    except Exception:  # noqa: BLE001
        return None
    finally:
        del interp
    return {name: by_tensor[d["name"]] for name, d in details.items() if d["name"] in by_tensor}


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
