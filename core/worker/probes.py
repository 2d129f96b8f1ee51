"""The runs behind a report's verdicts, all in this one sandboxed process:
LiteRT's Interpreter (built-in kernels, then with XNNPACK), its CompiledModel
API (XNNPACK, then built-in kernels), then TFLite Micro. Each loads,
allocates and invokes once on valid inputs (``core.worker.feeds``).

A runtime can abort the process. Before each stage a line goes to the
journal (``probes.jsonl``), so the caller knows which run and stage died,
records it as a crash, and starts the task again with that run done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.model.compat import (
    MICRO_PROBE,
    PROBE_ORDER,
    MicroProbeResult,
    Probes,
    Runtime,
    RuntimeRun,
)
from core.model.info import ModelInfo, OpKind
from core.model.inputs import InputPlan, input_plans
from core.model.runtime_words import first_lines
from core.serial import to_data
from core.tasks.shapes import suggest_shape
from core.worker.capture import CaptureFd
from core.worker.feeds import valid_input
from core.worker.micro_probe import micro_run

__all__ = ["JOURNAL", "RUNTIME_LOG", "run_probes", "delegation"]

JOURNAL = "probes.jsonl"


RUNTIME_LOG = "runtime.log"  # what the runtimes printed (kept if one of them crashes)
_ERROR_LINE = ("ERROR", "Error", "error:", "Encountered", "Didn't find", "not supported")


class _Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.log = path.with_name(RUNTIME_LOG)

    def write(self, **entry: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()


class _Run:
    """One run's progress: each stage is journaled before it starts."""

    def __init__(self, runtime: str, journal: _Journal) -> None:
        self.runtime, self.journal = runtime, journal
        self.fields: dict[str, Any] = {"runtime": runtime}
        self.t0 = time.perf_counter()

        self.printed: list[str] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.journal.write(probe=self.runtime, stage=name)
        self.fields["stage"] = name
        cap = CaptureFd(2, self.journal.log)
        try:
            with cap:
                yield
        finally:
            self.printed += [
                ln.strip()
                for ln in cap.text.splitlines()
                if ln.strip().startswith(_ERROR_LINE) or "not supported" in ln
            ]
        done = {"load": "loaded", "allocate": "allocated", "invoke": "invoked"}[name]
        self.fields[done] = True

    def result(self, error: BaseException | None = None) -> RuntimeRun:
        if error is None:
            self.fields.pop("stage", None)
        else:
            # the runtime's own reason is printed, the exception only says it failed
            said = [ln.removeprefix("ERROR:").strip() for ln in self.printed]
            text = "\n".join(dict.fromkeys([*said, str(error) or type(error).__name__]))
            self.fields["error"] = first_lines(text, 4, 600)
        self.fields["seconds"] = round(time.perf_counter() - self.t0, 4)
        run = RuntimeRun(**self.fields)
        self.journal.write(probe=self.runtime, run=to_data(run))
        return run


def _fill_interpreter(interp: Any, plans: dict[str, InputPlan], rng: Any) -> None:
    for d in interp.get_input_details():
        scale, zp = d.get("quantization") or (0.0, 0)
        arr = valid_input(d["name"], d["dtype"], d["shape"], plans, rng, (scale, zp))
        interp.set_tensor(d["index"], arr)


def _resize_dynamic(interp: Any) -> None:
    """Open dimensions get the one shape rule (batch 1, sequence 32, image 224)."""
    for d in interp.get_input_details():
        sig = tuple(int(v) for v in d.get("shape_signature", d["shape"]))
        if any(v < 0 for v in sig):
            interp.resize_tensor_input(d["index"], list(suggest_shape(sig)))


def delegation(interp: Any) -> tuple[int, int, int, tuple[int, ...]] | None:
    """(delegated nodes, original nodes, partitions, nodes left to the CPU
    kernels) of the main subgraph, read
    from the graph LiteRT built: delegate kernels come after the original
    nodes, and a partition's nodes are those that lead, through tensors it
    does not take as inputs, to its outputs."""
    try:
        ops = interp._get_ops_details()  # the one view of the execution graph LiteRT's Python gives
    except (AttributeError, RuntimeError, ValueError):
        return None
    first = next((k for k, o in enumerate(ops) if o.get("op_name") == "DELEGATE"), len(ops))
    original, delegates = ops[:first], ops[first:]
    producer = {int(t): k for k, o in enumerate(original) for t in o.get("outputs", ())}
    replaced: set[int] = set()
    for d in delegates:
        boundary = {int(t) for t in d.get("inputs", ())}
        todo = [int(t) for t in d.get("outputs", ())]
        while todo:
            node = producer.get(todo.pop())
            if node is None or node in replaced:
                continue
            replaced.add(node)
            todo += [int(t) for t in original[node].get("inputs", ()) if int(t) not in boundary]
    left = tuple(k for k in range(len(original)) if k not in replaced)[:10_000]
    return len(replaced), len(original), len(delegates), left


def _interpreter(
    path: Path, xnnpack: bool, plans: dict[str, InputPlan], journal: _Journal
) -> RuntimeRun:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    key = Runtime.XNNPACK.value if xnnpack else Runtime.INTERPRETER.value
    run = _Run(key, journal)
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with run.stage("load"):
            interp = Interpreter(
                model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver
            )
        with run.stage("allocate"):
            _resize_dynamic(interp)
            interp.allocate_tensors()
        if xnnpack:
            found = delegation(interp)
            if found is not None:
                n, total, parts, left = found
                run.fields.update(
                    delegated_nodes=n, total_nodes=total, partitions=parts, cpu_nodes=left
                )
        with run.stage("invoke"):
            _fill_interpreter(interp, plans, np.random.default_rng(0))
            interp.invoke()
    except (RuntimeError, ValueError, TypeError, MemoryError) as e:
        return run.result(e)
    return run.result()


def _compiled(
    path: Path, builtin: bool, plans: dict[str, InputPlan], journal: _Journal
) -> RuntimeRun:
    import numpy as np
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.cpu_kernel_mode import CpuKernelMode
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import CpuOptions, Options

    key = Runtime.COMPILED_MODEL_BUILTIN.value if builtin else Runtime.COMPILED_MODEL.value
    run = _Run(key, journal)
    cpu = CpuOptions(num_threads=1, kernel_mode=CpuKernelMode.BUILTIN if builtin else None)
    rng = np.random.default_rng(0)
    try:
        with run.stage("load"):
            model = CompiledModel.from_file(
                str(path),
                options=Options(hardware_accelerators=HardwareAccelerator.CPU, cpu_options=cpu),
            )
        with run.stage("allocate"):
            sigs = model.get_signature_list()
            sig = next(iter(sigs)) if sigs else "serving_default"
            details = model.get_input_tensor_details(sig)
            for name, d in details.items():
                shape = tuple(int(v) for v in d.get("shape", ()))
                if any(v <= 0 for v in shape[1:]) or (shape and shape[0] < 0):
                    model.resize_input_tensor_by_name(sig, name, list(suggest_shape(shape)))
            details = model.get_input_tensor_details(sig)
            ins = {k: model.create_input_buffer_by_name(sig, k) for k in details}
            outs = {
                k: model.create_output_buffer_by_name(sig, k)
                for k in model.get_output_tensor_details(sig)
            }
        if not builtin:
            run.fields["fully_accelerated"] = bool(model.is_fully_accelerated())
        with run.stage("invoke"):
            for name, d in details.items():
                dtype = np.dtype(d.get("dtype", "float32"))
                ins[name].write(valid_input(name, dtype, d.get("shape", [1]), plans, rng))
            model.run_by_name(sig, ins, outs)
    except (RuntimeError, ValueError, TypeError, KeyError, MemoryError) as e:
        return run.result(e)
    return run.result()


def _skip_reason(info: ModelInfo) -> str | None:
    """Why no LiteRT run can work here (known before trying)."""
    flex = sorted({op.name for op in info.operators if op.kind is OpKind.SELECT_TF})
    if flex:
        return (
            "it uses Select TF ops (" + ", ".join(flex[:4]) + "), and this server's LiteRT "
            "has no Flex delegate"
        )
    return None


def run_probes(
    path: Path,
    info: ModelInfo,
    *,
    done: tuple[RuntimeRun, ...] = (),
    micro_done: MicroProbeResult | None = None,
    micro: bool = True,
    workdir: Path,
    progress: Callable[..., None],
) -> Probes:
    """Every run not in ``done`` (from an earlier attempt that crashed)."""
    journal = _Journal(workdir / JOURNAL)
    plans = input_plans(info)
    runs = {r.runtime: r for r in done}
    skip = _skip_reason(info)
    jobs: dict[str, Callable[[], RuntimeRun]] = {
        Runtime.INTERPRETER.value: lambda: _interpreter(path, False, plans, journal),
        Runtime.XNNPACK.value: lambda: _interpreter(path, True, plans, journal),
        Runtime.COMPILED_MODEL.value: lambda: _compiled(path, False, plans, journal),
        Runtime.COMPILED_MODEL_BUILTIN.value: lambda: _compiled(path, True, plans, journal),
    }
    for key, job in jobs.items():
        if key in runs:
            continue
        if skip:
            runs[key] = RuntimeRun(key, skipped=skip)
            continue
        progress(f"Running the model in LiteRT ({key.replace('_', ' ')})")
        runs[key] = job()
    result = micro_done
    if micro and result is None:
        progress("Running the model in TFLite Micro")
        journal.write(probe=MICRO_PROBE, stage="load")
        result = micro_run(path.read_bytes(), info)
        journal.write(probe=MICRO_PROBE, micro=to_data(result))
    words = tuple(dict.fromkeys(p.words() for p in plans.values() if p.kind.value != "value"))
    return Probes(runs=tuple(runs[k] for k in PROBE_ORDER if k in runs), micro=result, inputs=words)
