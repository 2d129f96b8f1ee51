"""What run-backed verdicts cost (a script, not a test).

    .venv/bin/python bench/bench_verdicts.py [--quick] [--repeat 5] [--file X.tflite ...]

Per file, alternately, median of ``--repeat``:

- **bare**: a fresh ``python`` that loads the file in LiteRT's Interpreter,
  allocates, and invokes it once on zeros: the least a person would run to
  learn "does it run?";
- **runs**: what the report's runs add, in the same sandboxed worker the app
  and CLI use: ``inspect_file`` with every run (Interpreter with and without
  XNNPACK, CompiledModel on XNNPACK and on built-in kernels, TFLite Micro)
  minus ``inspect_file`` with none. The ratio ``runs / bare`` is the cost of
  the evidence against the one run it replaces (goal <= 1.5x);
- **whole**: the sandboxed inspect process with runs, against the bare run
  (process start, imports, validation, rules and writing the report included).

Then the structural part in this process (best of 3): ``build_report`` with no
runs (reading, validating, the rules), once hashing the file and once with its
hash known as in the app, against LiteRT's C++ analyzer (``ai_edge_litert``'s
wrapper, with its GPU check) on the same file (goal <= 5x).

Files: the bench models of ``bench/bench_models.py`` (a MobileNet-like convnet
with dynamic-range weights and the digits model in full integer), or ``--file``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_inspect import best_of
from bench_models import ensure

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
sys.path.insert(0, str(ROOT))

BARE = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
i = Interpreter(model_path=sys.argv[1], num_threads=1)
i.allocate_tensors()
for d in i.get_input_details():
    i.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
i.invoke()
"""


def bare(path: Path) -> float:
    t = time.perf_counter()
    subprocess.run([PYTHON, "-c", BARE, str(path)], check=True, capture_output=True)
    return time.perf_counter() - t


def inspect(path: Path, tmp: Path, *, runs: bool) -> tuple[float, dict]:
    from core.cli.options import run_context
    from core.pipeline.inspect import inspect_file

    out = tmp / ("runs" if runs else "none")
    out.mkdir(exist_ok=True)
    t = time.perf_counter()
    inspect_file(
        path, out_dir=out, runs=runs, micro=runs, formats=("json",), ctx=run_context(quiet=True)
    )
    seconds = time.perf_counter() - t
    report = json.loads(next(out.glob("*.json")).read_text(encoding="utf-8"))
    return seconds, report


def structural(path: Path) -> tuple[float, float, float]:
    """build_report hashing the file, build_report with its hash known (the
    app's artifacts are content-addressed), and the analyzer."""
    import hashlib

    from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer

    from core.model.report import build_report

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return (
        best_of(lambda: build_report(path), 3),
        best_of(lambda: build_report(path, sha256=sha), 3),
        best_of(lambda: analyzer.ModelAnalyzer(str(path), True, True), 3),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one run of each side")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--file", action="append", type=Path)
    args = ap.parse_args()
    repeat = 1 if args.quick else max(1, args.repeat)
    if args.file:
        files = [f.resolve() for f in args.file]
    else:
        d = ensure("tflite", PYTHON)
        files = [d / "convnet-dynamic.tflite", d / "digits-int8.tflite"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(
        f"{'file':<24} {'bare':>7} {'runs':>7} {'ratio':>6} {'whole':>7} {'ratio':>6}"
        f" {'struct':>8} {'ratio':>6} {'no hash':>8} {'ratio':>6} {'analyzer':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-verdicts-") as tmp:
        for path in files:
            b, w, n = [], [], []
            report: dict = {}
            for k in range(repeat):
                steps = ("bare", "runs", "none") if k % 2 == 0 else ("none", "runs", "bare")
                for s in steps:
                    if s == "bare":
                        b.append(bare(path))
                    elif s == "runs":
                        sec, report = inspect(path, Path(tmp), runs=True)
                        w.append(sec)
                    else:
                        n.append(inspect(path, Path(tmp), runs=False)[0])
            mb, mw, mn = (statistics.median(x) for x in (b, w, n))
            st, st_known, an = structural(path)
            added = max(mw - mn, 0.0)
            print(
                f"{path.name:<24} {mb:6.3f}s {added:6.3f}s {added / mb:5.2f}x {mw:6.3f}s"
                f" {mw / mb:5.2f}x {st * 1e3:6.1f}ms {st / max(an, 1e-9):5.2f}x"
                f" {st_known * 1e3:6.1f}ms {st_known / max(an, 1e-9):5.2f}x {an * 1e3:6.1f}ms"
            )
            runs = report.get("runs") or {}
            for r in runs.get("litert") or []:
                print(f"    {r['runtime']:<24} {r['outcome']:<28} {r['seconds']:.3f}s")
            if runs.get("micro"):
                m = runs["micro"]
                print(
                    f"    {'micro':<24} {'ran' if m.get('ok') else 'failed':<28} {m['seconds']:.3f}s"
                )


if __name__ == "__main__":
    main()
