"""Conversion cost: `tflite-studio convert` (cold CLI) and a warm worker, each
against a direct `TFLiteConverter` call in a fresh Python process, same model,
same run. Prints medians and ratios (goal for the warm worker: <= 1.0).

    python bench/bench_convert.py [--model sample_models/digits_classifier.zip] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.model.archive import prepare_model
from core.options import ConversionOptions
from core.pipeline.convert import convert_model
from core.pipeline.isolation import RunContext, WarmPool, WorkerLimits

DIRECT = """
import sys, tensorflow as tf
c = tf.lite.TFLiteConverter.from_saved_model(sys.argv[1], signature_keys=["serving_default"])
open(sys.argv[2], "wb").write(c.convert())
if len(sys.argv) > 3:
    import os; os._exit(0)  # skip TensorFlow's slow interpreter teardown, as our worker does
"""


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "sample_models" / "digits_classifier.zip"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    cli = Path(sys.executable).parent / "tflite-studio"
    with tempfile.TemporaryDirectory() as tmp, prepare_model(args.model, tmp) as pm:
        sm = str(pm.path)
        out = Path(tmp) / "out.tflite"
        direct, direct_fast, cold, warm = [], [], [], []
        pool = WarmPool(size=1, limits=WorkerLimits(), log_dir=Path(tmp) / "logs")
        try:
            for _ in range(args.repeat):
                direct.append(
                    timed(
                        lambda: subprocess.run(
                            [sys.executable, "-c", DIRECT, sm, str(out)],
                            check=True,
                            env=env,
                            capture_output=True,
                        )
                    )
                )
                direct_fast.append(
                    timed(
                        lambda: subprocess.run(
                            [sys.executable, "-c", DIRECT, sm, str(out), "fast-exit"],
                            check=True,
                            env=env,
                            capture_output=True,
                        )
                    )
                )
                cold.append(
                    timed(
                        lambda: subprocess.run(
                            [str(cli), "convert", sm, "-o", str(out)],
                            check=True,
                            env=env,
                            capture_output=True,
                        )
                    )
                )
                pool.fill()
                if not pool.wait_ready():
                    raise SystemExit("warm worker did not become ready")
                warm.append(
                    timed(
                        lambda: convert_model(
                            sm,
                            out,
                            ConversionOptions(),
                            workdir=Path(tmp) / "w",
                            ctx=RunContext(pool=pool),
                        )
                    )
                )
        finally:
            pool.close()
    d, f, c, w = (statistics.median(x) for x in (direct, direct_fast, cold, warm))
    print(f"model: {Path(args.model).name}  runs: {args.repeat}")
    print(f"direct TFLiteConverter, fresh process : {d:6.2f} s (median)")
    print(f"  same, skipping TF teardown (os._exit): {f:6.2f} s")
    print(
        f"tflite-studio convert (cold CLI)      : {c:6.2f} s   ratio {c / d:.2f}"
        f" (vs fast-exit direct {c / f:.2f})"
    )
    print(
        f"convert_model on a warm worker        : {w:6.2f} s   ratio {w / d:.2f}"
        f" (vs fast-exit direct {w / f:.2f})"
    )


if __name__ == "__main__":
    main()
