"""The peer of ``tflite-studio inspect``: a plain process with the same checks.

    .venv/bin/python bench/plain_inspect.py MODEL.tflite REPORT.txt

Reads the file, runs LiteRT's C++ analyzer on it (with the GPU delegate
compatibility check; ``ai_edge_litert``'s wrapper, no TensorFlow import: the
same call ``tf.lite.experimental.Analyzer.analyze`` makes), loads and invokes
the model once in LiteRT's Interpreter and once in TFLite Micro (zeros in,
arena 10x the model, as TFLM's Python runtime defaults), and writes the
analyzer's text with one line per run to REPORT.txt. A run that fails is a
result (TFLM refuses hybrid models), not an error.

Prints ``T0 <epoch seconds>`` first, then ``PHASE <name> <seconds>`` lines.
"""

from __future__ import annotations

import time

T0 = time.time()
print(f"T0 {T0:.6f}", flush=True)

import sys
from pathlib import Path

_last = [time.perf_counter()]


def phase(name: str) -> None:
    now = time.perf_counter()
    print(f"PHASE {name} {now - _last[0]:.4f}", flush=True)
    _last[0] = now


def litert_run(data: bytes, np) -> str:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_content=data, num_threads=1)
        interp.allocate_tensors()
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        interp.invoke()
    except (RuntimeError, ValueError) as e:
        return f"LiteRT: fails: {str(e).splitlines()[0][:200]}"
    return "LiteRT: loads and runs"


def micro_run(data: bytes, np) -> str:
    from tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_bytes(data, arena_size=max(len(data) * 10, 1 << 16))
        fb = runtime.schema_fb.Model.GetRootAs(data, 0)
        for i in range(fb.Subgraphs(0).InputsLength()):
            d = interp.get_input_details(i)
            interp.set_input(np.zeros(d["shape"], d["dtype"]), i)
        interp.invoke()
    except (RuntimeError, ValueError, TypeError) as e:
        return f"TFLite Micro: fails: {str(e).splitlines()[0][:200]}"
    return "TFLite Micro: loads and runs"


def main() -> None:
    model, report = Path(sys.argv[1]), Path(sys.argv[2])
    phase("python start")
    import numpy as np
    from ai_edge_litert import _pywrap_analyzer_wrapper as analyzer
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401  (timed with the imports)
    from tflite_micro import runtime  # noqa: F401

    phase("imports")
    data = model.read_bytes()
    phase("read")
    text = analyzer.ModelAnalyzer(str(model), True, True)
    phase("analyzer (+ GPU compatibility)")
    lite = litert_run(data, np)
    phase("LiteRT load + invoke")
    micro = micro_run(data, np)
    phase("TFLite Micro load + invoke")
    report.write_text(f"{text}\n{lite}\n{micro}\n", encoding="utf-8")
    phase("report writing")
    print(f"RESULT {lite} | {micro}", flush=True)
    print("END", flush=True)


if __name__ == "__main__":
    main()
