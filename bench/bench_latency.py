"""Latency from ``core.benchmark`` against LiteRT's own ``litert-benchmark``.

    .venv/bin/python bench/bench_latency.py [--model M.tflite ...] [--threads 1,2]
                                            [--runs 100] [--warmup 10] [--rounds 3]

For each model and thread count, our two runtimes (``compiled_model``, the
default, and ``interpreter``) and litert-benchmark run on the same file,
alternating (cm, interpreter, theirs, cm, ...) so a busy neighbour slows all
alike. Each figure is the median over rounds of the per-round median latency
(p50). The ratio compiled_model / litert-benchmark must be within 0.90..1.10;
the interpreter's ratio is printed for information.

Without ``--model`` the models are built here (TensorFlow, once, a few seconds):
MobileNetV2 (224×224, random weights) as float32 and as dynamic-range int8 —
large enough (milliseconds) that ``litert-benchmark``'s two-decimal rounding of
its results does not matter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOW, HIGH = 0.90, 1.10


def _build_models(folder: Path) -> list[Path]:
    code = f"""
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, tensorflow as tf
tf.keras.utils.set_random_seed(0)
m = tf.keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=1000)
c = tf.lite.TFLiteConverter.from_keras_model(m)
open({str(folder / "mobilenet_v2_float32.tflite")!r}, "wb").write(c.convert())
c = tf.lite.TFLiteConverter.from_keras_model(m)
c.optimizations = [tf.lite.Optimize.DEFAULT]
open({str(folder / "mobilenet_v2_dynamic.tflite")!r}, "wb").write(c.convert())
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return [folder / "mobilenet_v2_float32.tflite", folder / "mobilenet_v2_dynamic.tflite"]


def _peer_bin() -> str:
    exe = Path(sys.executable).with_name("litert-benchmark")
    if exe.exists():
        return str(exe)
    found = shutil.which("litert-benchmark")
    if not found:
        sys.exit("litert-benchmark not found (it comes with ai-edge-litert)")
    return found


def _peer(model: Path, threads: int, runs: int, warmup: int, tmp: Path) -> float:
    out = tmp / "peer.json"
    out.unlink(missing_ok=True)
    subprocess.run(
        [
            _peer_bin(),
            "--model",
            str(model),
            "--num_threads",
            str(threads),
            "--num_runs",
            str(runs),
            "--warmup_runs",
            str(warmup),
            "--result_json",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return float(json.loads(out.read_text())["latency"]["median_ms"])


def _ours(model: Path, threads: int, runs: int, warmup: int, runtime: str) -> float:
    from core.benchmark import benchmark

    res = benchmark(model, threads=(threads,), runs=runs, warmup=warmup, runtime=runtime)
    if res.runtime_api != runtime:
        sys.exit(f"{model.name}: asked for {runtime}, got {res.runtime_api}: {res.note}")
    return res.settings[0].p50_ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", type=Path, default=[])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    try:
        models = args.model or _build_models(tmp)
        threads = [int(t) for t in args.threads.split(",")]
        print(
            f"{'model':<30} {'threads':>7} {'cm p50 ms':>10} {'interp p50 ms':>14} "
            f"{'litert p50 ms':>14} {'cm ratio':>9} {'interp ratio':>13}  verdict"
        )
        ok = True
        for m in models:
            for n in threads:
                cm, it, theirs = [], [], []
                for _ in range(args.rounds):
                    cm.append(_ours(m, n, args.runs, args.warmup, "compiled_model"))
                    it.append(_ours(m, n, args.runs, args.warmup, "interpreter"))
                    theirs.append(_peer(m, n, args.runs, args.warmup, tmp))
                a, i, b = (statistics.median(v) for v in (cm, it, theirs))
                ratio = a / b if b else float("inf")
                iratio = i / b if b else float("inf")
                good = LOW <= ratio <= HIGH
                ok &= good
                print(
                    f"{m.name:<30} {n:>7} {a:>10.3f} {i:>14.3f} {b:>14.3f} {ratio:>9.3f} "
                    f"{iratio:>13.3f}  {'ok' if good else 'OUT OF RANGE'}",
                    flush=True,
                )
        print(
            f"\nratio = our median latency / litert-benchmark's median, same model, same "
            f"threads, {args.runs} runs after {args.warmup} warm-up, median of "
            f"{args.rounds} alternating rounds; the compiled_model ratio must be within "
            f"{LOW:.2f}..{HIGH:.2f} (interpreter ratio for information)."
        )
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
