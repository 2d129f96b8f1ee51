"""Optimizing a .tflite: (1) `optimize_file` (sandboxed worker, old-op-code
check, honesty checks) against LiteRT's quantizer called directly in a fresh
Python process on the same model, same recipe, same run (goal: <= 1.2x);
(2) a size/accuracy table of every recipe on the sample models, evaluated
against the float file on each sample's own evaluation data.

    python bench/bench_optimize.py [--repeat 3] [--no-table]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.errors import StudioError
from core.options import ConversionOptions, Preset
from core.pipeline.convert import convert_model
from core.pipeline.optimize import optimize_file, recipe_choice
from core.tasks.optimize import RecipeChoice
from core.tasks.recipes import RECIPES
from tests.helpers.optimize_models import build_optimize_models

DIRECT = """
import sys
from litert_quantizer import quantizer, recipe
qt = quantizer.Quantizer(sys.argv[1])
qt.load_quantization_recipe(recipe.weight_only_wi4_afp32())
qt.quantize(enable_progress_report=False).export_model(sys.argv[2], overwrite=True)
"""
SAMPLES = ROOT / "sample_models"
# sample model, its evaluation data and calibration data (runnable here: no Flex ops)
TABLE = (
    ("digits_classifier.zip", None, "digits_eval.npz", "digits_calibration.npz"),
    ("sequence_lstm.zip", None, "sequence_eval.npz", "sequence_calibration.npz"),
    ("multi_signature.zip", "encode", "iris_calibration.npz", "iris_calibration.npz"),
)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _times(src: Path, tmp: Path) -> tuple[float, float, float]:
    """(direct, ours, ours with the checks) wall-clock seconds for one model."""
    w4 = recipe_choice("weight-only-int4")
    direct = timed(
        lambda: subprocess.run(
            [sys.executable, "-c", DIRECT, str(src), str(tmp / "d.tflite")],
            check=True,
            capture_output=True,
        )
    )
    ours = timed(lambda: optimize_file(src, tmp / "o.tflite", w4, validate=False, evaluate=False))
    full = timed(lambda: optimize_file(src, tmp / "f.tflite", w4))
    return direct, ours, full


def speed(models: Path, tmp: Path, repeat: int) -> None:
    print("optimize time: weight-only-int4, wall clock, median of", repeat)
    print(f"{'model':<14} {'direct':>8} {'ours':>8} {'ratio':>6} {'ours+checks':>12}")
    for name in ("convnet", "transformer", "convnet_old"):
        runs = [_times(models / f"{name}.tflite", tmp) for _ in range(repeat)]
        d, o, f = (statistics.median(x) for x in zip(*runs))
        print(f"{name:<14} {d:>7.2f}s {o:>7.2f}s {o / d:>5.2f}x {f:>11.2f}s")
    print("(direct: a fresh `python -c` with the quantizer; ours: the sandboxed worker with the")
    print(
        " old-op-code and honesty checks; ours+checks: also the tensor comparison and evaluation)"
    )


def _metric(res) -> str:
    acc = res.accuracy
    if acc is None:
        return "not measured"
    p = acc.primary
    if p.top1_agreement is not None:
        words = f"top-1 {p.top1_agreement:.1%}"
        if p.accuracy_tflite is not None:
            words += f", acc {p.accuracy_tflite:.1%} (float {p.accuracy_original:.1%})"
        return words
    snr = "∞" if p.snr_db is None else f"{p.snr_db:.1f} dB"
    return f"cosine {p.cosine:.4f}, SNR {snr}"


def table(tmp: Path) -> None:
    print("\nevery recipe on the sample models (against the float32 .tflite, own eval data)")
    print(f"{'model':<22} {'recipe':<28} {'size':>9} {'ratio':>6} {'verdict':<7} accuracy")
    for file, sig, eval_name, cal_name in TABLE:
        base = tmp / f"{Path(file).stem}.tflite"
        convert_model(
            SAMPLES / file, base, ConversionOptions(preset=Preset.FLOAT32, signature_key=sig)
        )
        print(f"{file:<22} {'float32 (input)':<28} {base.stat().st_size:>9,} {'100%':>6}")
        plans = [RecipeChoice(r.value) for r in RECIPES] + [RecipeChoice("weight-only-int4", 32)]
        for choice in plans:
            cal = SAMPLES / cal_name if choice.needs_calibration else None
            try:
                res = optimize_file(
                    base,
                    tmp / "r.tflite",
                    choice,
                    calibration_data=cal,
                    eval_data=SAMPLES / eval_name,
                    validate=False,
                )
            except StudioError as e:
                print(
                    f"{'':<22} {choice.label:<28} {'–':>9} {'–':>6} {'error':<7} {e.message[:70]}"
                )
                continue
            verdict = res.accuracy.verdict if res.accuracy else "–"
            print(
                f"{'':<22} {choice.label:<28} {res.output_size:>9,} {res.size_ratio:>6.0%} "
                f"{verdict:<7} {_metric(res)}"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-table", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        models = build_optimize_models(tmp / "models")
        speed(models, tmp, args.repeat)
        if not args.no_table:
            table(tmp)


if __name__ == "__main__":
    main()
