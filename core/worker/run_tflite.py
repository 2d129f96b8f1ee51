"""Worker task ``tflite_eval``: LiteRT runs a ``.tflite`` on a reference's
inputs (quantizing inputs, dequantizing outputs) and compares with the
original's outputs. No TensorFlow."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import EvaluateError
from core.tasks.metrics import (
    compare_outputs,
    degenerate_flags,
    dequantize_output,
    quantize_input,
    verdict_of,
)
from core.tasks.requests import TfliteEvalRequest
from core.tasks.results import AccuracyResult, Flag, Reference
from core.worker.runtime import litert_errors, raise_if_blocked

__all__ = ["run", "evaluate_file", "open_runner", "match_names"]


def match_names(want: Sequence[str], have: Sequence[str], what: str) -> dict[str, str]:
    """want-name -> have-name: by name, else by sorted position."""
    if set(want) <= set(have):
        return {w: w for w in want}
    if len(want) == len(have):
        return dict(zip(sorted(want), sorted(have)))
    raise EvaluateError(
        f"The .tflite {what} {sorted(have)} do not match the original's {sorted(want)}.",
        "Evaluate the .tflite against the model (and signature) it was converted from.",
    )


def open_runner(path: Path, signature_key: str) -> tuple[Any, Any, str]:
    """(interpreter, signature runner, key) of a ``.tflite`` for one signature."""
    from ai_edge_litert.interpreter import Interpreter

    with litert_errors(path, "load"):  # raise_if_blocked was checked first
        interp = Interpreter(model_path=str(path), num_threads=1)
    sigs = interp.get_signature_list()
    if not sigs:
        raise EvaluateError(
            f"{path.name} has no signature, so its inputs cannot be matched by name.",
            "Convert with TFLite Studio (or TFLiteConverter.from_saved_model), which keeps "
            "the signature.",
        )
    if signature_key in sigs:
        key = signature_key
    elif len(sigs) == 1:
        key = next(iter(sigs))
    else:
        raise EvaluateError(
            f"{path.name} has signatures {sorted(sigs)}; none is {signature_key!r}.",
            "Evaluate the signature that was converted.",
        )
    return interp, interp.get_signature_runner(key), key


def _run_samples(
    interp: Any, runner: Any, ref: Reference, feeds: dict[str, Any], path: Path
) -> tuple[dict[str, list[Any]], dict[str, float], dict[str, str]]:
    """Outputs per sample (dequantized), the clipped fraction per input, the input map."""
    in_details = runner.get_input_details()
    out_details = runner.get_output_details()
    in_map = match_names(list(ref.inputs), list(in_details), "inputs")
    out_map = match_names(list(ref.outputs), list(out_details), "outputs")
    got: dict[str, list[Any]] = {k: [] for k in ref.outputs}
    clipped: dict[str, float] = {}
    with litert_errors(path, "run"):
        for i in range(ref.samples):
            kw = {}
            for name, tname in in_map.items():
                q, c = quantize_input(feeds[name][i : i + 1], in_details[tname])
                if c:
                    clipped[name] = clipped.get(name, 0.0) + c
                kw[tname] = q
            if i:  # recurrent state (LSTM variables) must not leak between samples
                interp.reset_all_variables()
            res = runner(**kw)
            for name, tname in out_map.items():
                got[name].append(dequantize_output(res[tname], out_details[tname]))
    return got, clipped, in_map


def _clip_flags(
    clipped: dict[str, float], n: int, in_details: dict[str, Any], in_map: dict[str, str]
) -> list[Flag]:
    import numpy as np

    flags = []
    for name, total in clipped.items():
        frac = total / max(n, 1)
        if frac <= 0.01:
            continue
        d = in_details[in_map[name]]
        scale, zp = d["quantization"]
        info = np.iinfo(np.dtype(d["dtype"]))
        lo, hi = (info.min - zp) * scale, (info.max - zp) * scale
        flags.append(
            Flag(
                "input_clipped",
                "warning",
                f"{frac:.1%} of the input values for {name!r} fall outside what the "
                f"{np.dtype(d['dtype']).name} input can represent ([{lo:.4g}, {hi:.4g}]) and "
                "were clipped: the calibration data did not cover the data the model sees "
                "(for example 0..255 against 0..1).",
            )
        )
    return flags


def evaluate_file(req: TfliteEvalRequest, progress: Callable[..., None]) -> AccuracyResult:
    """One ``.tflite`` against the reference (callable many times in one process)."""
    import numpy as np

    t0 = time.perf_counter()
    ref = req.reference
    path = Path(req.tflite_path)
    raise_if_blocked(path)
    interp, runner, key = open_runner(path, ref.signature_key)
    feeds, refs, labels = ref.arrays()
    progress(f"Running {path.name} on {ref.samples} samples")
    got, clipped, in_map = _run_samples(interp, runner, ref, feeds, path)
    flags: list[Flag] = [
        *ref.flags,
        *_clip_flags(clipped, ref.samples, runner.get_input_details(), in_map),
    ]
    outputs = []
    for name in ref.outputs:
        g = np.concatenate(got[name]) if got[name] else np.zeros((0,))
        outputs.append(compare_outputs(name, refs[name], g, kind=ref.outputs[name], labels=labels))
    verdict, text = verdict_of(outputs, req.thresholds)
    flags[:0] = degenerate_flags(outputs, req.thresholds)
    if verdict == "bad" and not any(f.severity == "error" for f in flags):
        flags.insert(0, Flag("large_error", "error", text))
    return AccuracyResult(
        tflite=req.display_name or path.name,
        preset=req.preset,
        signature_key=key,
        data_source=ref.data_source,
        data_name=ref.data_name,
        samples=ref.samples,
        outputs=tuple(outputs),
        verdict=verdict,
        verdict_text=text,
        flags=tuple(flags),
        seconds=round(time.perf_counter() - t0, 3),
    )


def run(req: TfliteEvalRequest, workdir: Path, progress: Callable[..., None]) -> AccuracyResult:
    """Task ``tflite_eval``."""
    return evaluate_file(req, progress)
