"""The peer of ``tflite-studio sweep``: what an engineer would write in a notebook.

    .venv/bin/python bench/plain_sweep.py MODEL.zip CALIBRATION.npz EVAL.npz \
        [--samples 1000] [--calibration-samples 100] [--runs 50] [--warmup 10]

One process: unzip the SavedModel, run the original on the evaluation samples,
convert it with each of the six presets (the options ``core/worker/convert.py``
sets), run every ``.tflite`` in LiteRT's Interpreter on the same samples, one
at a time, against the original's outputs (top-1 agreement, mean cosine) and
time ``--runs`` invokes after ``--warmup``. The inputs are the ``.npz`` arrays
keyed by input name (the first ``--samples`` of them).

Prints ``T0 <epoch seconds>`` first (so the caller can tell process start),
then one ``PHASE <name> <seconds>`` line per phase and one ``RESULT <json>``
line per preset; nothing here comes from TFLite Studio.
"""

from __future__ import annotations

import time

T0 = time.time()
print(f"T0 {T0:.6f}", flush=True)

import argparse
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

PRESETS = ("float32", "float16", "dynamic", "int8-float-io", "int8", "int16x8")
_last = [time.perf_counter()]


def phase(name: str) -> None:
    """Print the seconds since the previous phase ended."""
    now = time.perf_counter()
    print(f"PHASE {name} {now - _last[0]:.4f}", flush=True)
    _last[0] = now


def configure(conv, tf, preset: str, calibration) -> None:
    """The converter options of each preset."""
    ops = tf.lite.OpsSet
    if preset != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if preset == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if preset in ("int8-float-io", "int8", "int16x8"):

        def representative():
            n = len(next(iter(calibration.values())))
            for i in range(n):
                yield {k: v[i : i + 1] for k, v in calibration.items()}

        conv.representative_dataset = representative
    if preset == "int8":
        conv.target_spec.supported_ops = [ops.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    elif preset == "int16x8":
        conv.target_spec.supported_ops = [
            ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]


def to_input(x, detail, np):
    scale, zero = detail["quantization"]
    dtype = np.dtype(detail["dtype"])
    if dtype.kind in "iu" and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def from_output(y, detail, np):
    scale, zero = detail["quantization"]
    if np.dtype(detail["dtype"]).kind in "iu" and scale:
        return (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


def evaluate(path: Path, feeds: dict, reference: dict, np) -> tuple:
    """Every sample through the .tflite; (runner, first input, agreement, cosine)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    runner = interp.get_signature_runner("serving_default")
    ins, outs = runner.get_input_details(), runner.get_output_details()
    n = len(next(iter(feeds.values())))
    got: dict[str, list] = {k: [] for k in reference}
    for i in range(n):
        res = runner(**{k: to_input(v[i : i + 1], ins[k], np) for k, v in feeds.items()})
        for k in reference:
            got[k].append(from_output(res[k], outs[k], np))
    name = next(iter(reference))
    ref, out = reference[name].reshape(n, -1), np.concatenate(got[name]).reshape(n, -1)
    agree = float(np.mean(ref.argmax(1) == out.argmax(1)))
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cosine = float(np.mean(np.sum(ref * out, axis=1) / np.maximum(norms, 1e-12)))
    first = {k: to_input(v[:1], ins[k], np) for k, v in feeds.items()}
    return runner, first, agree, cosine


def latency(runner, first: dict, runs: int, warmup: int) -> float:
    """Median milliseconds of one invoke."""
    for _ in range(warmup):
        runner(**first)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        runner(**first)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("calibration")
    ap.add_argument("eval")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--calibration-samples", type=int, default=100)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()
    phase("python start")

    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401  (timed with the imports)

    phase("import tensorflow")
    tmp = tempfile.mkdtemp(prefix="plain-sweep-")
    with zipfile.ZipFile(args.model) as zf:
        zf.extractall(tmp)
        saved_model = str(Path(tmp) / zf.namelist()[0].split("/")[0])
    fn = tf.saved_model.load(saved_model).signatures["serving_default"]
    with np.load(args.eval) as f:
        feeds = {k: f[k][: args.samples] for k in fn.structured_input_signature[1]}
    with np.load(args.calibration) as f:
        calibration = {k: f[k][: args.calibration_samples] for k in feeds}
    phase("unpack + load")
    reference = {
        k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in feeds.items()}).items()
    }
    phase("reference run")

    files = {}
    for preset in PRESETS:
        conv = tf.lite.TFLiteConverter.from_saved_model(
            saved_model, signature_keys=["serving_default"]
        )
        configure(conv, tf, preset, calibration)
        files[preset] = Path(tmp) / f"{preset}.tflite"
        files[preset].write_bytes(conv.convert())
        phase(f"convert {preset}")
    for preset, path in files.items():
        runner, first, agree, cosine = evaluate(path, feeds, reference, np)
        phase(f"evaluate {preset}")
        ms = latency(runner, first, args.runs, args.warmup)
        phase(f"latency {preset}")
        row = {"preset": preset, "size": path.stat().st_size, "top1": agree, "cosine": cosine}
        print("RESULT " + json.dumps({**row, "p50_ms": round(ms, 4)}), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    print("END", flush=True)


if __name__ == "__main__":
    main()
