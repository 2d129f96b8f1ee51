"""Benchmark the .tflite inspector against LiteRT's C++ analyzer (a script, not a test).

    PYTHONPATH=. .venv/bin/python bench/bench_inspect.py [--quick]

Prints, for the same files in the same run:
  1. build_report() time (micro=False, and with the TFLite Micro probe) versus
     ai_edge_litert's ModelAnalyzer text dump, as a ratio (goal <= 10x);
  2. time per op on synthetic models of 1k..50k ops (goal: flat, i.e. linear);
  3. peak Python memory (tracemalloc) of build_report versus the file size.

The real model (MobileNetV2, random weights) is converted once with TensorFlow in
a subprocess and cached; synthetic models are written directly with the
flatbuffers builder, so no conversion is timed.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import flatbuffers
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ai_edge_litert import _pywrap_analyzer_wrapper as _analyzer
from ai_edge_litert import schema_py_generated as s

from core.model.compat import check_compatibility
from core.model.reader import read_model
from core.model.report import build_report, file_sha256, render
from core.pipeline.inspect import inspect_tflite

CACHE = Path(tempfile.gettempdir()) / "tflite-studio-bench"

_MOBILENET = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
out = sys.argv[1]
m = tf.keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
m.export(out + ".sm", verbose=False)
open(out, "wb").write(tf.lite.TFLiteConverter.from_saved_model(out + ".sm").convert())
"""


def real_model() -> Path:
    path = CACHE / "mobilenet_v2.tflite"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print("converting MobileNetV2 once (TensorFlow, subprocess)...", flush=True)
        cmd = [sys.executable, "-c", _MOBILENET, str(path)]
        subprocess.run(cmd, check=True, capture_output=True)
    return path


def synthetic_model(n_ops: int) -> bytes:
    """A chain of FULLY_CONNECTED/ADD ops on [1, 8] tensors with one shared weight."""
    m = s.ModelT()
    m.version, m.description = 3, "synthetic"
    codes = []
    for code in (s.BuiltinOperator.ADD, s.BuiltinOperator.FULLY_CONNECTED):
        oc = s.OperatorCodeT()
        oc.builtinCode = oc.deprecatedBuiltinCode = code
        oc.version = 1
        codes.append(oc)
    m.operatorCodes = codes
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

    x = tensor("input", [1, 8])
    w = tensor("w", [8, 8], 1)
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


def peak_memory(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats, sizes up to 10k ops")
    args = parser.parse_args()
    repeat = 3 if args.quick else 5

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"\n== 1. build_report vs LiteRT C++ analyzer (same file, best of {repeat})")
    path = real_model()
    size = path.stat().st_size
    analyzer = best_of(lambda: _analyzer.ModelAnalyzer(str(path), True, False), repeat)
    report = best_of(lambda: build_report(path), repeat)
    with_micro = best_of(lambda: inspect_tflite(path), max(2, repeat // 2))
    r = build_report(path)
    json_time = best_of(lambda: render(r, "json"), repeat)
    n_ops = r.to_dict()["model"]["num_operators"]
    print(f"model: {path.name}, {mb(size)}, {n_ops} ops")
    print(f"LiteRT analyzer text dump     {analyzer * 1e3:9.1f} ms")

    def line(label: str, t: float, note: str = "") -> None:
        print(f"{label:<30}{t * 1e3:9.1f} ms   ratio {t / analyzer:6.2f}x  {note}")

    line("build_report(micro=False)", report, "(goal <= 10x)")
    line("build_report(micro=True)", with_micro, "(TFLM in a subprocess)")
    sha = best_of(lambda: file_sha256(path), repeat)
    parse = best_of(lambda: read_model(path), repeat)
    info = read_model(path)
    compat = best_of(lambda: check_compatibility(info), repeat)
    line("  sha256 of the file", sha, "(the analyzer does not hash)")
    line("  read_model", parse)
    line("  check_compatibility", compat)
    line("  read + compat (no hash)", parse + compat)
    print(f"render(json)                  {json_time * 1e3:9.1f} ms")

    print("\n== 2. time against number of ops (synthetic, micro=False)")
    sizes = [1_000, 5_000, 10_000] if args.quick else [1_000, 5_000, 10_000, 25_000, 50_000]
    print(f"{'ops':>7} {'file':>9} {'report':>9} {'us/op':>7} {'analyzer':>9} {'us/op':>7} ratio")
    per_op = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            p = Path(tmp) / f"syn{n}.tflite"
            p.write_bytes(synthetic_model(n))
            reps = max(2, repeat - 2) if n >= 25_000 else repeat
            t = best_of(lambda p=p: build_report(p), reps)
            a = best_of(lambda p=p: _analyzer.ModelAnalyzer(str(p), True, False), reps)
            per_op.append(t / n * 1e6)
            print(
                f"{n:>7} {mb(p.stat().st_size):>9} {t * 1e3:7.0f}ms {t / n * 1e6:7.1f}"
                f" {a * 1e3:7.0f}ms {a / n * 1e6:7.2f} {t / a:5.1f}x"
            )
        spread = max(per_op) / min(per_op)
        print(f"per-op time spread (max/min) {spread:.2f}  (1.0 = perfectly linear)")

        print("\n== 3. peak Python memory of build_report (tracemalloc) vs file size")
        peak = peak_memory(lambda: build_report(path))
        print(f"{path.name}: file {mb(size)}, peak {mb(peak)} ({peak / size:.2f}x file)")
        big = Path(tmp) / f"syn{sizes[-1]}.tflite"
        peak = peak_memory(lambda: build_report(big))
        big_size = big.stat().st_size
        print(f"{big.name}: file {mb(big_size)}, peak {mb(peak)} ({peak / big_size:.2f}x file)")
        print("(weights are never copied; the op-heavy synthetic file is nearly all structure,")
        print(" which becomes Python objects, so its peak is a multiple of the file)")
    print(f"\nmedian per-op time: {statistics.median(per_op):.1f} us")


if __name__ == "__main__":
    main()
