"""``tflite-studio inspect`` against a plain process doing the same checks (a script,
not a test).

    .venv/bin/python bench/bench_inspect.py [--quick] [--repeat 5] [--file X.tflite ...]
                                            [--scaling] [--tool-root DIR]

Per file, alternately (median of ``--repeat``, the order swapped every run):

- **tool**: ``tflite-studio inspect FILE -o REPORT.json`` (the whole process, the
  report written);
- **plain**: ``bench/plain_inspect.py FILE REPORT.txt`` in a fresh ``python``:
  LiteRT's C++ analyzer with the GPU check (``ai_edge_litert``, no TensorFlow),
  one LiteRT load + invoke, one TFLite Micro load + invoke, the text written.

Files: a MobileNet-like convnet converted with dynamic-range quantization
(about 2.5 MB) and the digits sample converted to full integer (14 KB), both
built in code by ``bench/bench_models.py`` and cached; or ``--file`` (repeat).
``--quick``: one run of each side.

Then a breakdown of the tool's time, from what it exposes, measured once per
file after the timed runs: the bare interpreter start (``python -c``), the CLI
process's imports (``PYTHONPROFILEIMPORTTIME``), and the pipeline call the CLI
makes (``core.pipeline.inspect.inspect_file`` with the CLI's sandbox and limits,
in this process) split at its progress lines (read, validation/rules, each probe,
report writing); what is left of the median is the CLI's own work and exit.
Every ``seconds`` in the report JSON (probes, runs) is printed next to it.
``--scaling`` adds build_report against the
analyzer on synthetic models of 1k..50k ops (time per op should stay flat).
``--tool-root DIR``: the tool from another source tree (see bench_sweep.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import flatbuffers
import numpy as np
from bench_models import ensure
from bench_sweep import Tool, plain_steps, run_timed

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")


def plain_run(path: Path, tmp: Path) -> tuple[float, dict[str, float], str]:
    run = run_timed([PYTHON, str(BENCH / "plain_inspect.py"), str(path), str(tmp / "r.txt")])
    result = next((s[7:] for _, s in run.text("out") if s.startswith("RESULT ")), "")
    return run.seconds, plain_steps(run), result


def report_seconds(node: object, path: str = "") -> list[tuple[str, float]]:
    """Every number under a key named ``seconds`` or ``*_seconds`` (``*_s``) in
    the report, by its dotted path: probe and run times as the tool gives them."""
    out: list[tuple[str, float]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            p = f"{path}.{k}" if path else str(k)
            timed_key = k == "seconds" or k.endswith(("_seconds", "_s"))
            if timed_key and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append((p, float(v)))
            else:
                out += report_seconds(v, p)
    elif isinstance(node, list):
        for i, v in enumerate(node[:200]):
            out += report_seconds(v, f"{path}[{i}]")
    return out


def tool_verdicts(report: dict) -> str:
    compat = report.get("compatibility") or {}
    parts = [f"{k} {v.get('verdict')}" for k, v in compat.items() if isinstance(v, dict)]
    probe = report.get("micro_probe") or {}
    if probe:
        parts.append("micro probe " + ("ran" if probe.get("ok") else "failed"))
    return ", ".join(parts)


def measure(path: Path, repeat: int, tmp: Path) -> dict:
    plain_t: list[float] = []
    tool_t: list[float] = []
    steps: list[dict[str, float]] = []
    result = ""
    report: dict = {}
    for k in range(repeat):
        order = ("plain", "tool") if k % 2 == 0 else ("tool", "plain")
        for which in order:
            if which == "plain":
                seconds, s, result = plain_run(path, tmp)
                steps.append(s)
                plain_t.append(seconds)
            else:
                out = tmp / "report.json"
                cmd = Tool.cmd("inspect", str(path), "-o", str(out))
                tool_t.append(run_timed(cmd, Tool.env()).seconds)
                report = json.loads(out.read_text(encoding="utf-8"))
    return {"plain": plain_t, "tool": tool_t, "steps": steps, "result": result, "report": report}


# ---------------------------------------------------------------- the tool's breakdown


def _wall(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env or Tool.env())
    return time.perf_counter() - t, res.stderr


def cli_imports(path: Path, tmp: Path) -> float | None:
    """Seconds of every import in the CLI's own process (top-level cumulative)."""
    env = {**Tool.env(), "PYTHONPROFILEIMPORTTIME": "1"}
    _, err = _wall(Tool.cmd("inspect", str(path), "-o", str(tmp / "imp.json")), env)
    total = 0
    for line in err.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            total += int(m.group(1))
    return total / 1e6 if total else None


def pipeline_steps(path: Path, tmp: Path) -> dict[str, float]:
    """The CLI's pipeline call (``inspect_file`` with the CLI's sandbox and
    limits), in this process, split at its progress lines. Lines arrive when the
    caller polls the worker (every 0.1 s), so short steps may show as 0."""
    from core.cli.options import run_context
    from core.pipeline.inspect import inspect_file

    marks: list[tuple[float, str]] = []
    ctx = dataclasses.replace(
        run_context(quiet=True), on_progress=lambda m: marks.append((time.perf_counter(), m))
    )
    t0 = time.perf_counter()
    inspect_file(path, out_dir=tmp / "insp", ctx=ctx)
    end = time.perf_counter()
    names = {"reading": "read", "checking": "validation/rules", "writing": "report writing"}
    steps: dict[str, float] = {}
    prev, label = t0, "pipeline start to its first progress line"
    for t, msg in marks:
        steps[label] = steps.get(label, 0.0) + t - prev
        word = msg.split(" ", 1)[0].lower()
        prev, label = t, names.get(word, msg[:44])
    steps[label + " + exit"] = end - prev
    return steps


def breakdown(path: Path, tmp: Path, tool_median: float) -> dict[str, float]:
    steps: dict[str, float] = {}
    starts = [_wall([PYTHON, "-c", "pass"])[0] for _ in range(3)]
    steps["python start (bare interpreter)"] = statistics.median(starts)
    imports = cli_imports(path, tmp)
    if imports is not None:
        steps["CLI process imports"] = imports
    try:
        steps.update(pipeline_steps(path, tmp))
    except Exception as e:  # noqa: BLE001  (the pipeline is being reworked; say why)
        print(f"  (pipeline breakdown unavailable: {type(e).__name__}: {e})")
    steps["rest (CLI work, output copy, exit)"] = tool_median - sum(steps.values())
    return steps


def print_file(r: dict, tool_steps: dict[str, float]) -> None:
    p, t = statistics.median(r["plain"]), statistics.median(r["tool"])
    print(f"\n  plain {p:6.3f} s   tool {t:6.3f} s   ratio tool/plain {t / p:5.2f}x  (goal <= 1.2)")
    print(f"  runs: plain {', '.join(f'{x:.3f}' for x in r['plain'])}")
    print(f"        tool  {', '.join(f'{x:.3f}' for x in r['tool'])}")
    print(f"\n  {'tool (s, measured once after the runs)':<46}")
    for k, v in tool_steps.items():
        print(f"  {k:<46}{v:8.3f}")
    secs = report_seconds(r["report"])
    print("  the report's own seconds: " + (", ".join(f"{k}={v:.3f}" for k, v in secs) or "none"))
    plain = {k: statistics.median([s[k] for s in r["steps"] if k in s]) for k in r["steps"][0]}
    print(f"\n  {'plain (median s)':<46}")
    for k, v in plain.items():
        print(f"  {k:<46}{v:8.3f}")
    print(f"\n  plain: {r['result']}")
    print(f"  tool:  {tool_verdicts(r['report'])}")
    litert = [k for k, _ in secs if "litert" in k.lower() or "runs" in k.lower()]
    if not litert:
        print("  (the report shows no LiteRT run and no seconds for one)")


# ---------------------------------------------------------------- scaling (in-process)


def synthetic_model(n_ops: int) -> bytes:
    """A chain of FULLY_CONNECTED/ADD ops on [1, 8] tensors with one shared weight."""
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT()
    m.version, m.description = 3, "synthetic"
    m.operatorCodes = []
    for code in (s.BuiltinOperator.ADD, s.BuiltinOperator.FULLY_CONNECTED):
        oc = s.OperatorCodeT()
        oc.builtinCode = oc.deprecatedBuiltinCode = code
        oc.version = 1
        m.operatorCodes.append(oc)
    weight = s.BufferT()
    weight.data = np.ones(8 * 8 * 4, np.uint8)
    m.buffers = [s.BufferT(), weight]
    sg = s.SubGraphT()
    sg.name, sg.tensors, sg.operators = "main", [], []

    def tensor(name: str, shape: list[int], buffer: int = 0) -> int:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, s.TensorType.FLOAT32, buffer
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    x, w = tensor("input", [1, 8]), tensor("w", [8, 8], 1)
    sg.inputs = [x]
    for i in range(n_ops):
        y = tensor(f"t{i}", [1, 8])
        op = s.OperatorT()
        if i % 2:
            op.opcodeIndex, op.inputs, op.outputs = 0, [x, x], [y]
            op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.AddOptions, s.AddOptionsT()
        else:
            op.opcodeIndex, op.inputs, op.outputs = 1, [x, w, -1], [y]
            opts = s.FullyConnectedOptionsT()
            opts.fusedActivationFunction = s.ActivationFunctionType.RELU
            op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.FullyConnectedOptions, opts
        sg.operators.append(op)
        x = y
    sg.outputs = [x]
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1 << 20)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def scaling(quick: bool, tmp: Path) -> None:
    from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer

    from core.model.report import build_report

    print("\n== build_report vs the analyzer against the number of ops (in-process, best of 3)")
    sizes = [1_000, 5_000, 10_000] if quick else [1_000, 5_000, 10_000, 25_000, 50_000]
    print(f"{'ops':>7} {'report':>9} {'us/op':>7} {'analyzer':>9} {'us/op':>7} ratio")
    per_op = []
    for n in sizes:
        p = tmp / f"syn{n}.tflite"
        p.write_bytes(synthetic_model(n))
        t = best_of(lambda p=p: build_report(p), 3)
        a = best_of(lambda p=p: analyzer.ModelAnalyzer(str(p), True, True), 3)
        per_op.append(t / n * 1e6)
        print(
            f"{n:>7} {t * 1e3:7.0f}ms {t / n * 1e6:7.1f} {a * 1e3:7.0f}ms {a / n * 1e6:7.2f} {t / a:5.1f}x"
        )
    print(f"per-op time spread (max/min) {max(per_op) / min(per_op):.2f}  (1.0 = perfectly linear)")


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one run of each side (smoke run)")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each side (median)")
    ap.add_argument("--file", action="append", type=Path, help="a .tflite to inspect (repeat)")
    ap.add_argument("--scaling", action="store_true", help="also time per op on synthetic models")
    ap.add_argument("--tool-root", type=Path, help="run the tool from this source tree")
    args = ap.parse_args()
    Tool.use(args.tool_root)
    sys.path.insert(0, str(Tool.root or ROOT))  # the in-process breakdown imports its core
    repeat = 1 if args.quick else max(1, args.repeat)
    if args.file:
        files = [f.resolve() for f in args.file]
    else:
        d = ensure("tflite", PYTHON)
        files = [d / "convnet-dynamic.tflite", d / "digits-int8.tflite"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"tool: {' '.join(Tool.cmd())} (code in {Tool.root or ROOT})")
    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as tmp:
        for path in files:
            size = path.stat().st_size
            print(f"\n== {path.name}: {size / 1e6:.2f} MB, median of {repeat}")
            r = measure(path, repeat, Path(tmp))
            print_file(r, breakdown(path, Path(tmp), statistics.median(r["tool"])))
        if args.scaling:
            scaling(args.quick, Path(tmp))
    print(
        f"\nload at the end {os.getloadavg()[0]:.2f} (other work on the machine skews both sides)"
    )


if __name__ == "__main__":
    main()
