"""Worker task ``latency``: time a ``.tflite`` on this CPU with LiteRT.

Two runtimes: ``compiled_model`` (LiteRT's CompiledModel API on the CPU
accelerator, set up as ``litert-benchmark`` does: one environment, one compiled
model per thread count, buffers created and inputs written once, timed
``run_by_name``; falls back to the interpreter, with a note, when it cannot
load or run the model) and ``interpreter`` (its default delegate, XNNPACK;
timed ``invoke()``). ``warmup`` untimed runs, then ``runs`` timed calls with
``perf_counter_ns``. Memory is the resident-set growth from before the model
is built until after the warm-up. No TensorFlow.
"""

from __future__ import annotations

import gc
import math
import os
import resource
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from core.errors import EvaluateError
from core.model.inputs import InputPlan, input_plans
from core.model.reader import read_model
from core.tasks.metrics import quantize_input
from core.tasks.requests import LatencyRequest
from core.tasks.results import LatencyResult, ThreadLatency, reference_key
from core.worker.feeds import valid_input
from core.worker.runtime import litert_errors, raise_if_blocked

__all__ = ["run"]


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


_Plans = dict[str, InputPlan]  # per input: ids within their tables, masks (core.model.inputs)


def _fill(
    name: str, dtype: Any, shape: list[int], sample: dict[str, Any] | None, rng: Any, plans: _Plans
) -> Any:
    """The sample's array for ``name`` if it fits, else valid made-up values
    (``core.worker.feeds``)."""
    import numpy as np

    dtype = np.dtype(dtype)
    arr = sample.get(name) if sample is not None else None
    if arr is not None and tuple(arr.shape) == tuple(shape) and arr.dtype == dtype:
        return arr
    if dtype.kind not in "biufc":
        raise EvaluateError(
            f"Input {name!r} has type {dtype}, which the benchmark cannot fill.",
            "Benchmark a model with numeric inputs.",
        )
    return valid_input(name, dtype, shape, plans, rng)


def _inputs(interp: Any, sample: dict[str, Any] | None, rng: Any, plans: _Plans) -> dict[int, Any]:
    return {
        d["index"]: _fill(d["name"], d["dtype"], [int(v) for v in d["shape"]], sample, rng, plans)
        for d in interp.get_input_details()
    }


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


def _setting_interpreter(
    path: Path,
    n: int,
    resolver: Any,
    sample: dict[str, Any] | None,
    rng: Any,
    plans: _Plans,
    runs: int,
    warmup: int,
    max_s: float,
) -> tuple[ThreadLatency, int, bool]:
    """One thread count on the Interpreter: (latency, RSS growth, sample used)."""
    from ai_edge_litert import interpreter as litert

    gc.collect()
    rss0 = _rss_bytes()
    t0 = time.perf_counter_ns()
    with litert_errors(path, "load"):
        interp = litert.Interpreter(
            model_path=str(path), num_threads=n, experimental_op_resolver_type=resolver
        )
        interp.allocate_tensors()
    init_ms = (time.perf_counter_ns() - t0) / 1e6
    quantized_sample = _quantize_sample(interp, sample) if sample is not None else None
    for idx, arr in _inputs(interp, quantized_sample, rng, plans).items():
        interp.set_tensor(idx, arr)
    invoke = interp.invoke
    with litert_errors(path, "run"):
        first_ms = _warm_up(invoke, warmup)
    rss = max(0, _rss_bytes() - rss0)
    times = _timed(invoke, runs, max_s)
    del invoke, interp
    return _stats(n, times, init_ms, first_ms), rss, quantized_sample is not None


def _setting_compiled(
    path: Path,
    n: int,
    env: Any,
    sample: dict[str, Any] | None,
    rng: Any,
    plans: _Plans,
    runs: int,
    warmup: int,
    max_s: float,
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
            str(path),
            environment=env,
            options=Options(
                hardware_accelerators=HardwareAccelerator.CPU, cpu_options=CpuOptions(num_threads=n)
            ),
        )
        sigs = model.get_signature_list()
        key = next(iter(sigs)) if sigs else "serving_default"
        in_details = model.get_input_tensor_details(key)
        ins = {k: model.create_input_buffer_by_name(key, k) for k in in_details}
        outs = {
            k: model.create_output_buffer_by_name(key, k)
            for k in model.get_output_tensor_details(key)
        }
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        raise _CompiledModelFailed(f"could not load: {_first_line(e)}") from None
    init_ms = (time.perf_counter_ns() - t0) / 1e6
    used = False
    for k, d in in_details.items():
        arr = _fill(
            k,
            _np_dtype(d.get("dtype", "float32")),
            [int(v) for v in d.get("shape", [1])],
            sample,
            rng,
            plans,
        )
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
    except Exception:  # noqa: BLE001  (no metadata in an unusual install: the name alone)
        return "ai-edge-litert"


def _run_all(
    req: LatencyRequest, api: str, sample: dict[str, Any] | None, progress: Callable[..., None]
) -> tuple[list[ThreadLatency], int, bool, bool]:
    """Every thread count on one runtime: (settings, RSS growth of the first,
    sample used, fully accelerated)."""
    import numpy as np
    from ai_edge_litert import interpreter as litert

    path = Path(req.tflite_path)
    resolver = (
        litert.OpResolverType.AUTO
        if req.xnnpack
        else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    rng = np.random.default_rng(0)
    plans = input_plans(read_model(path, check_zeros=False))
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
    timing = (req.runs, req.warmup, req.max_seconds)
    for k, n in enumerate(list(req.threads) or [1]):
        progress(f"Timing with {n} thread{'s' if n != 1 else ''}")
        if api == "compiled_model":
            s, rss, used, f = _setting_compiled(path, n, env, cm_sample, rng, plans, *timing)
            full = full and f
        else:
            s, rss, used = _setting_interpreter(path, n, resolver, sample, rng, plans, *timing)
        settings.append(s)
        used_sample = used_sample or used
        if k == 0:
            rss_delta = rss
    return settings, rss_delta, used_sample, full


def run(req: LatencyRequest, workdir: Path, progress: Callable[..., None]) -> LatencyResult:
    """Task ``latency`` (no TensorFlow)."""
    path = Path(req.tflite_path)
    raise_if_blocked(path)
    api = req.runtime
    sample = None
    if req.sample_npz and Path(req.sample_npz).is_file():
        sample = _first_sample(Path(req.sample_npz))
    notes: list[str] = []
    if api == "compiled_model" and not req.xnnpack:
        api = "interpreter"
        notes.append("Builtin kernels only (no XNNPACK) need the interpreter; it was used.")
    try:
        settings, rss_delta, used_sample, full = _run_all(req, api, sample, progress)
    except _CompiledModelFailed as e:
        notes.append(f"CompiledModel {e}; measured with the interpreter instead.")
        api = "interpreter"
        settings, rss_delta, used_sample, full = _run_all(req, api, sample, progress)
    if api == "compiled_model" and not full:
        notes.append(
            "Not every op ran on the CPU accelerator (XNNPACK); the rest used "
            "LiteRT's builtin kernels."
        )
    name = "CompiledModel" if api == "compiled_model" else "Interpreter"
    return LatencyResult(
        model=path.name,
        size_bytes=path.stat().st_size,
        runtime=f"{_litert_version()} {name}",
        delegate="XNNPACK" if req.xnnpack else "none (builtin kernels)",
        warmup=req.warmup,
        settings=tuple(settings),
        rss_delta_bytes=rss_delta,
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        cpu_count=os.cpu_count() or 1,
        input_source="sample" if used_sample else "random",
        runtime_api=api,
        note=" ".join(notes),
    )


def _sample_by_signature_name(path: Path, sample: dict[str, Any]) -> dict[str, Any] | None:
    """Quantized sample keyed by signature input name (CompiledModel's names)."""
    from ai_edge_litert import interpreter as litert

    try:
        interp = litert.Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    except (RuntimeError, ValueError):
        return None
    by_tensor = _quantize_sample(interp, sample)
    if by_tensor is None:
        return None
    try:
        details = interp.get_signature_runner(
            next(iter(interp.get_signature_list()))
        ).get_input_details()
    except Exception:  # noqa: BLE001  (no usable signature runner: the plain inputs are used)
        return None
    finally:
        del interp
    return {name: by_tensor[d["name"]] for name, d in details.items() if d["name"] in by_tensor}


def _first_sample(path: Path) -> dict[str, Any] | None:
    """Inputs of the first sample of a reference file."""
    import numpy as np

    prefix = reference_key("in", "")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k[len(prefix) :]: z[k][:1] for k in z.files if k.startswith(prefix)}
    except (OSError, ValueError):
        return None


def _quantize_sample(interp: Any, sample: dict[str, Any]) -> dict[str, Any] | None:
    """Map signature input names to tensor names and quantize float samples."""
    try:
        sigs = interp.get_signature_list()
    except Exception:  # noqa: BLE001  (a file without signatures: the plain inputs are used)
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
