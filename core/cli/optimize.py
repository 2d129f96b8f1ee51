"""``tflite-studio`` commands for the workflow's last steps: ``recipes``,
``optimize`` (a ``.tflite`` with LiteRT's quantizer), ``optimize-sweep``
(every recipe, one recommended) and ``deploy`` (the deploy kit). Registered
on the main group by ``core.cli``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click

from core.cli.options import run_context
from core.errors import OptionsError
from core.tasks.deploy import TARGETS, parse_targets
from core.tasks.optimize import OptimizeResult, worst_tensors
from core.tasks.recipes import BLOCK_SIZES, RECIPE_IDS, RECIPES, Recipe, recipe_entries
from core.units import human_bytes

__all__ = ["COMMANDS", "recipes_cmd", "optimize_cmd", "optimize_sweep_cmd", "deploy_cmd"]


@click.command("recipes")
@click.option("--json", "as_json", metavar="ID", default=None, help="Print this recipe's JSON.")
@click.option("--block-size", type=click.Choice([str(b) for b in BLOCK_SIZES]), default="0")
def recipes_cmd(as_json: str | None, block_size: str) -> None:
    """List the optimization recipes (or print one in the quantizer's JSON format)."""
    if as_json:
        click.echo(json.dumps(recipe_entries(as_json, int(block_size)), indent=2))
        return
    for r, info in RECIPES.items():
        cal = " (needs calibration data)" if info.needs_calibration else ""
        blocks = " [--block-size 32|64|128]" if info.block_sizes else ""
        click.echo(f"{r.value:<17} {info.title}{cal}{blocks}")
        click.echo(f"{'':<17} {info.summary}")
        click.echo(f"{'':<17} size: {info.size_effect}; suits: {info.suits}")


def _data_options(f: Any) -> Any:
    for d in reversed(
        [
            click.option(
                "--calibration-data",
                metavar="FILE",
                default=None,
                type=click.Path(exists=True),
                help=".npz/.npy keyed by input name, or a folder/zip of images (static recipes).",
            ),
            click.option("--calibration-samples", type=int, default=100, show_default=True),
            click.option("--image-range", default="0,1", show_default=True),
            click.option(
                "--eval-data",
                metavar="FILE",
                default=None,
                type=click.Path(exists=True),
                help="Inputs the optimized file is compared on (default: calibration, random).",
            ),
            click.option("--signature", metavar="KEY", default=None),
            click.option("--timeout", type=float, default=None, help="Seconds per worker step."),
        ]
    ):
        f = d(f)
    return f


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise OptionsError(
            f"Cannot read --image-range {text!r}.", "Write it as LOW,HIGH, e.g. 0,1."
        ) from None
    return lo, hi


def _summary(res: OptimizeResult, output: Path) -> list[str]:
    lines = [
        f"wrote {output} ({res.output_size:,} bytes, {res.size_ratio:.1%} of "
        f"{human_bytes(res.input_size)}, recipe {res.recipe.label}, "
        f"{res.quantized_tensors} quantized tensors, {res.seconds:.2f} s)"
    ]
    if res.accuracy is not None:
        lines.append(
            f"accuracy against the float file: {res.accuracy.verdict} — {res.accuracy.verdict_text}"
        )
    worst = worst_tensors(res.validation, 3)
    if worst:
        words = ", ".join(
            f"{w.name[:60]} (SNR {'∞' if w.snr_db is None else f'{w.snr_db:.1f}'} dB)"
            for w in worst
        )
        lines.append(f"worst tensors: {words}")
    return lines


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


@click.command("optimize")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option(
    "--recipe",
    default=Recipe.WEIGHT_ONLY_INT4.value,
    show_default=True,
    metavar="ID|FILE.json",
    help="One of: " + ", ".join(RECIPE_IDS) + "; or a recipe JSON in the quantizer's format.",
)
@click.option(
    "--block-size",
    type=click.Choice([str(b) for b in BLOCK_SIZES]),
    default="0",
    help="weight-only-int4: 0 = channel-wise scales; 32/64/128 = block-wise.",
)
@_data_options
@click.option("--no-validate", is_flag=True, help="Skip the tensor-by-tensor comparison.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None)
def optimize_cmd(
    model: Path, output: Path, recipe: str, block_size: str, report_path: Path | None, **kw: Any
) -> None:
    """Optimize MODEL.tflite with LiteRT's quantizer into OUTPUT.tflite."""
    from core.pipeline.optimize import optimize_file, recipe_choice

    choice = recipe_choice(recipe, int(block_size))
    output.unlink(missing_ok=True)
    res = optimize_file(
        model,
        output,
        choice,
        calibration_data=kw["calibration_data"],
        calibration_samples=kw["calibration_samples"],
        image_range=_range(kw["image_range"]),
        eval_data=kw["eval_data"],
        signature_key=kw["signature"],
        validate=not kw["no_validate"],
        ctx=run_context(kw["timeout"]),
    )
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
    for line in _summary(res, output):
        click.echo(line, err=True)
    if report_path:
        data = {"schema_version": 1, "tool": "tflite-studio", "kind": "optimize", **res.to_dict()}
        report_path.write_text(json.dumps(_json_safe(data), indent=2), encoding="utf-8")


@click.command("optimize-sweep")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_data_options
@click.option(
    "--keep-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep every optimized .tflite here.",
)
@click.option("--runs", type=int, default=30, show_default=True, help="Timed runs per file.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None)
def optimize_sweep_cmd(
    model: Path, keep_dir: Path | None, runs: int, report_path: Path | None, **kw: Any
) -> None:
    """Optimize MODEL.tflite with every applicable recipe and recommend one."""
    from core.pipeline.optimize_sweep import optimize_sweep

    report = optimize_sweep(
        model,
        calibration_data=kw["calibration_data"],
        eval_data=kw["eval_data"],
        runs=runs,
        keep_dir=keep_dir,
        ctx=run_context(kw["timeout"]),
    )
    click.echo(f"{'recipe':<28} {'size':>10} {'p50':>10}  accuracy")
    for r in report.rows:
        size = human_bytes(r.size_bytes) if r.size_bytes else "–"
        ms = f"{r.latency_ms:.3f} ms" if r.latency_ms else "–"
        m = r.metrics or {}
        acc = (
            f"top-1 {m['top1_agreement']:.1%}"
            if m.get("top1_agreement") is not None
            else f"cosine {m['cosine']:.4f}"
            if m.get("cosine") is not None
            else "error: " + str((r.error or {}).get("message", ""))[:80]
        )
        click.echo(f"{r.label:<28} {size:>10} {ms:>10}  {acc}")
    click.echo("\n" + report.recommendation.text.replace("**", ""))
    if report_path:
        report_path.write_text(json.dumps(_json_safe(report.to_dict()), indent=2), "utf-8")


@click.command("deploy")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option(
    "--targets",
    default=",".join(TARGETS),
    show_default=True,
    help="Comma-separated: " + ", ".join(TARGETS) + ".",
)
@click.option("--origin", default="", help="How the model was made, for the kit's README.")
@click.option("--timeout", type=float, default=None)
def deploy_cmd(model: Path, output: Path, targets: str, origin: str, timeout: float | None) -> None:
    """Write the deploy kit of MODEL.tflite (code for its own signature) to KIT.zip."""
    from core.pipeline.deploy import build_deploy_kit

    output.unlink(missing_ok=True)
    res = build_deploy_kit(
        model, output, targets=parse_targets(targets), origin=origin, ctx=run_context(timeout)
    )
    for w in res.warnings:
        click.echo(f"warning: {w}", err=True)
    arena = f", TFLite Micro arena {res.arena_bytes:,} bytes" if res.arena_bytes else ""
    click.echo(
        f"wrote {output} ({res.zip_size:,} bytes, {len(res.files)} files for "
        f"{', '.join(res.targets)}{arena})",
        err=True,
    )


COMMANDS = [recipes_cmd, optimize_cmd, optimize_sweep_cmd, deploy_cmd]
