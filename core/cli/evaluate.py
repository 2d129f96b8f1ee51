"""``tflite-studio`` commands that show what a conversion cost: ``benchmark``,
``evaluate``, ``layers``, ``sweep`` and ``diff``. Registered on the main group
by ``core.cli``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from core.cli.options import options_from_kw, run_context, source_options
from core.options import PRESET_IDS, ConversionOptions

__all__ = ["COMMANDS", "benchmark_cmd", "evaluate_cmd", "layers_cmd", "sweep_cmd", "diff_cmd"]


def _emit(text: str, output: Path | None) -> None:
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text.rstrip("\n"))


def _base_options(kw: dict[str, Any]) -> ConversionOptions:
    """Converter options shared by every preset of a sweep."""
    return options_from_kw(kw)


def model_options(f: Any) -> Any:
    """Options about the model and its data, shared by evaluate / layers / sweep."""
    decorators = [
        click.option(
            "--eval-data",
            metavar="FILE",
            default=None,
            type=click.Path(exists=True),
            help="Evaluation inputs: .npz keyed by input name (+ `labels`), .npy, "
            "or images. Default: the calibration data, else random inputs.",
        ),
        click.option(
            "--task",
            type=click.Choice(["auto", "classification", "regression"]),
            default="auto",
            show_default=True,
            help="How to judge the outputs: auto detects classifiers (probabilities, "
            "or labels in the evaluation data).",
        ),
        click.option(
            "--max-samples",
            type=int,
            default=1000,
            show_default=True,
            help="Evaluation samples used at most.",
        ),
        click.option(
            "--timeout", type=float, default=None, help="Seconds before one worker step is stopped."
        ),
    ]
    for d in reversed(decorators):
        f = d(f)
    return source_options(f)


# ---------------------------------------------------------------- benchmark


@click.command("benchmark")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--threads",
    default="1",
    show_default=True,
    help="Thread counts: 2, a list 1,2,4, a range 1-4, or max.",
)
@click.option("--runs", type=int, default=50, show_default=True, help="Timed runs.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed runs first.")
@click.option(
    "--no-xnnpack",
    is_flag=True,
    help="Builtin kernels only (no default delegate; uses the interpreter).",
)
@click.option(
    "--runtime",
    type=click.Choice(["compiled_model", "interpreter"]),
    default="compiled_model",
    show_default=True,
    help="LiteRT's CompiledModel API (what litert-benchmark measures) or the Interpreter.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "text"]), default="text", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write here instead of stdout.",
)
@click.option("--timeout", type=float, default=None, help="Seconds before it is stopped.")
def benchmark_cmd(
    file: Path,
    threads: str,
    runs: int,
    warmup: int,
    no_xnnpack: bool,
    runtime: str,
    fmt: str,
    output: Path | None,
    timeout: float | None,
) -> None:
    """Time FILE.tflite on this CPU with the LiteRT runtime (XNNPACK): median (p50),
    mean and p90 latency per thread count, and the memory the model takes."""
    from core.pipeline.benchmark import benchmark, parse_threads

    res = benchmark(
        file,
        threads=parse_threads(threads),
        runs=runs,
        warmup=warmup,
        xnnpack=not no_xnnpack,
        runtime=runtime,
        ctx=run_context(timeout, quiet=fmt == "json" and output is None),
    )
    _emit(json.dumps(res.to_dict(), indent=2) if fmt == "json" else res.to_text(), output)


# ---------------------------------------------------------------- evaluate


@click.command("evaluate")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.argument("tflite", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@model_options
@click.option(
    "--format", "fmt", type=click.Choice(["json", "text"]), default="text", show_default=True
)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None)
def evaluate_cmd(model: Path, tflite: Path, fmt: str, output: Path | None, **kw: Any) -> None:
    """Compare TFLITE with the original MODEL it was converted from, on the same
    inputs: errors per output, top-1 agreement and accuracy for classifiers."""
    from core.pipeline.evaluate import evaluate

    res = evaluate(
        model,
        tflite,
        eval_data=kw["eval_data"],
        options=_base_options(kw),
        max_samples=kw["max_samples"],
        task=kw["task"],
        ctx=run_context(kw["timeout"]),
    )
    _emit(json.dumps(res.to_dict(), indent=2) if fmt == "json" else res.to_text(), output)
    if res.verdict == "bad":
        click.echo(f"warning: {res.verdict_text}", err=True)


# ---------------------------------------------------------------- layers


@click.command("layers")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--preset", type=click.Choice(["int8", "int8-float-io"]), default="int8", show_default=True
)
@model_options
@click.option("--top", type=int, default=10, show_default=True, help="Layers listed (text).")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "text"]), default="text", show_default=True
)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None)
def layers_cmd(
    model: Path, preset: str, top: int, fmt: str, output: Path | None, **kw: Any
) -> None:
    """Per-layer quantization error of MODEL under an int8 preset (TensorFlow's
    QuantizationDebugger): the layers worth keeping in float."""
    from core.pipeline.layers import debug_layers

    opts = options_from_kw(kw, preset=preset)
    if not opts.calibration_path:
        click.echo("warning: no --calibration-data: calibrating on random data", err=True)
    rep = debug_layers(
        model,
        opts,
        debug_data=kw["eval_data"],
        max_samples=min(kw["max_samples"], 500),
        ctx=run_context(kw["timeout"]),
    )
    _emit(json.dumps(rep.to_dict(), indent=2) if fmt == "json" else rep.to_text(top), output)
    if rep.worst and fmt == "text":
        click.echo(
            f"\nTo measure int8 with the 3 worst layers kept in float: tflite-studio "
            f"sweep {model.name} --presets int8-float-io --keep-worst 3 "
            "--calibration-data … --eval-data …",
            err=True,
        )


# ---------------------------------------------------------------- sweep


@click.command("sweep")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@model_options
@click.option(
    "--presets",
    default=None,
    metavar="A,B,...",
    help="Presets to try (default: all): " + ", ".join(PRESET_IDS) + ".",
)
@click.option(
    "--threads",
    default="1",
    show_default=True,
    help="Thread counts for the latency (the table shows the first).",
)
@click.option("--runs", type=int, default=50, show_default=True, help="Timed runs per model.")
@click.option("--no-layers", is_flag=True, help="Skip the per-layer quantization error.")
@click.option(
    "--layers",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="When to measure the per-layer error: auto does it for the integer presets "
    "whose accuracy is not good (and for --keep-worst).",
)
@click.option(
    "--keep-worst",
    type=int,
    default=0,
    show_default=True,
    metavar="N",
    help="Also try int8-float-io with the N worst int8 layers kept in float.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the JSON report here.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep every converted .tflite in this folder.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "md"]),
    default="text",
    show_default=True,
    help="What to print on stdout.",
)
def sweep_cmd(
    model: Path,
    presets: str | None,
    threads: str,
    runs: int,
    no_layers: bool,
    layers: str,
    keep_worst: int,
    report_path: Path | None,
    out_dir: Path | None,
    fmt: str,
    **kw: Any,
) -> None:
    """Convert MODEL with every preset, measure each one's accuracy against the
    original, latency and size, and recommend the one to ship."""
    from core.pipeline.benchmark import parse_threads
    from core.pipeline.render import render_sweep
    from core.pipeline.sweep import sweep
    from core.tasks.sweep import SweepRequest

    ids = tuple(p.strip() for p in presets.split(",") if p.strip()) if presets else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    request = SweepRequest(
        model_path=str(model),
        presets=ids,
        options=_base_options(kw),
        eval_data=kw["eval_data"],
        threads=parse_threads(threads),
        runs=runs,
        max_samples=kw["max_samples"],
        task=kw["task"],
        layer_errors=not no_layers,
        layers=layers,
        keep_worst=max(0, keep_worst),
        keep_dir=str(out_dir) if out_dir else None,
    )
    report = sweep(request, run_context(kw["timeout"]))
    if report_path:
        report_path.write_text(render_sweep(report, "json"), encoding="utf-8")
        click.echo(f"wrote {report_path}", err=True)
    click.echo(render_sweep(report, fmt).rstrip("\n"))


# ---------------------------------------------------------------- diff


@click.command("diff")
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["json", "text", "md"]), default="text", show_default=True
)
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None)
def diff_cmd(a: Path, b: Path, fmt: str, output: Path | None) -> None:
    """What changed from A.tflite to B.tflite: ops added, removed or changed,
    tensors whose type, shape or quantization changed, size per op type."""
    from core.pipeline.diff import diff_files

    res = diff_files(a, b, ctx=run_context(quiet=True))
    text = {"json": json.dumps(res.diff, indent=2), "text": res.text, "md": res.md}[fmt]
    _emit(text, output)


COMMANDS = [benchmark_cmd, evaluate_cmd, layers_cmd, sweep_cmd, diff_cmd]
