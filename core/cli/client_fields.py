"""What ``tflite-studio submit`` sends for each job kind of the HTTP API
(``core.server.api_kinds``): the kind's own options, its fields and its files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from core.errors import OptionsError

__all__ = ["KINDS", "kind_options", "job_fields", "job_files"]

KINDS = ("convert", "inspect", "evaluate", "layers", "sweep", "diff", "optimize", "deploy")


# the options of the job kinds besides a conversion (module level: one list, read once)
_KIND_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--kind",
        type=click.Choice(KINDS),
        default="convert",
        show_default=True,
        help="The job: convert (a .tflite is inspected), inspect, evaluate, layers, "
        "sweep, diff, optimize (a float .tflite) or deploy (a kit for a .tflite).",
    ),
    click.option(
        "--recipe",
        metavar="ID|FILE.json",
        default=None,
        help="optimize: a recipe id (weight-only-int4, dynamic-int8, ...) or a recipe JSON "
        "file in the quantizer's format.",
    ),
    click.option(
        "--block-size",
        type=click.Choice(["0", "32", "64", "128"]),
        default=None,
        help="optimize: weight-only-int4: 0 = channel-wise scales; 32/64/128 = block-wise.",
    ),
    click.option(
        "--sweep-recipes",
        is_flag=True,
        help="optimize: try every applicable recipe and recommend one.",
    ),
    click.option(
        "--targets",
        metavar="A,B,...",
        default=None,
        help="deploy: folders of the kit (python,android,ios,cpp,micro; all by default).",
    ),
    click.option(
        "--eval-data",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="evaluate, layers, sweep: held-out inputs (.npz keyed by input name, + labels).",
    ),
    click.option(
        "--tflite",
        "tflite_file",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="evaluate: the converted .tflite to check against MODEL (else MODEL is "
        "converted with --preset first).",
    ),
    click.option(
        "--other",
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="diff: the second .tflite (MODEL is the first).",
    ),
    click.option("--presets", metavar="A,B,...", default=None, help="sweep: presets to try (all)."),
    click.option("--threads", default="1", show_default=True, help="Latency thread counts."),
    click.option("--runs", type=int, default=50, show_default=True, help="Timed runs."),
    click.option(
        "--task",
        type=click.Choice(["auto", "classification", "regression"]),
        default="auto",
        show_default=True,
    ),
    click.option("--no-layers", is_flag=True, help="sweep: skip the per-layer error."),
    click.option(
        "--layers",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        show_default=True,
        help="sweep: when to measure the per-layer error (auto: integer presets that "
        "lose accuracy).",
    ),
    click.option(
        "--keep-worst",
        type=int,
        default=0,
        show_default=True,
        metavar="N",
        help="sweep: also try int8-float-io with the N worst layers in float.",
    ),
    click.option(
        "--max-samples",
        type=int,
        default=100,
        show_default=True,
        help="layers: inputs measured at most.",
    ),
    click.option(
        "--force", is_flag=True, help="A new job even if an identical one is still running."
    ),
]


def kind_options(f: Any) -> Any:
    """The options of the job kinds besides a conversion."""
    for d in reversed(_KIND_OPTIONS):
        f = d(f)
    return f


def _source_fields(kw: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [
        ("calibration_samples", str(kw["calibration_samples"])),
        ("image_range", kw["image_range"]),
    ]
    if kw["select_tf_ops"]:
        fields.append(("select_tf_ops", "true"))
    if kw["allow_custom_ops"]:
        fields.append(("allow_custom_ops", "true"))
    if kw["signature"]:
        fields.append(("signature", kw["signature"]))
    fields += [("input_shape", s) for s in kw["input_shape"]]
    return fields


def _convert_fields(kw: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [("preset", kw["preset"]), *_source_fields(kw)]
    fields += [("keep_float", n) for n in kw.get("keep_float") or ()]
    if kw.get("sparsity"):
        fields.append(("sparsity", "true"))
    return fields


def _measure_fields(kw: dict[str, Any]) -> list[tuple[str, str]]:
    return [("threads", str(kw["threads"])), ("runs", str(kw["runs"])), ("task", kw["task"])]


def job_fields(kind: str, kw: dict[str, Any], preset_given: bool) -> list[tuple[str, str]]:
    """The form fields of a ``kind`` job from the parsed options."""
    if kind == "convert":
        out = _convert_fields(kw)
    elif kind in ("inspect", "diff"):
        out = []
    elif kind == "evaluate":
        out = [*_convert_fields(kw), *_measure_fields(kw)]
    elif kind == "layers":
        preset = kw["preset"] if preset_given else "int8"
        out = [("preset", preset), *_source_fields(kw), ("max_samples", str(kw["max_samples"]))]
    elif kind == "optimize":
        out = _optimize_fields(kw)
    elif kind == "deploy":
        out = [("targets", kw["targets"])] if kw.get("targets") else []
    else:  # sweep
        out = [*_source_fields(kw), *_measure_fields(kw)]
        if kw.get("presets"):
            out.append(("presets", kw["presets"]))
        out.append(("layer_errors", "false" if kw["no_layers"] else "true"))
        out.append(("layers", kw.get("layers") or "auto"))
        out.append(("keep_worst", str(kw["keep_worst"])))
    if kw.get("force"):
        out.append(("force", "true"))
    return [("kind", kind), *out]


def _optimize_fields(kw: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = [("mode", "sweep" if kw.get("sweep_recipes") else "recipe")]
    recipe = kw.get("recipe")
    if recipe and recipe.endswith(".json"):
        path = Path(recipe)
        if not path.is_file():
            raise OptionsError(f"Recipe file {recipe} was not found.", "Check the path.")
        out.append(("recipe_json", path.read_text(encoding="utf-8", errors="replace")))
    elif recipe:
        out.append(("recipe", recipe))
    elif not kw.get("sweep_recipes"):
        raise OptionsError(
            "An optimize job needs a recipe.",
            "Give --recipe weight-only-int4 (or another id, or a recipe .json), or "
            "--sweep-recipes to try them all.",
        )
    if kw.get("block_size"):
        out.append(("block_size", kw["block_size"]))
    if kw.get("signature"):
        out.append(("signature", kw["signature"]))
    out.append(("calibration_samples", str(kw["calibration_samples"])))
    return out


def job_files(kind: str, kw: dict[str, Any]) -> list[tuple[str, Path]]:
    """The files a ``kind`` job sends besides the model and calibration data."""
    files: list[tuple[str, Path]] = []
    if kw.get("eval_data") and kind in ("evaluate", "layers", "sweep", "optimize"):
        files.append(("eval_data", Path(kw["eval_data"])))
    if kind == "evaluate" and kw.get("tflite_file"):
        files.append(("tflite", Path(kw["tflite_file"])))
    if kind == "diff":
        if not kw.get("other"):
            raise OptionsError("A diff needs a second .tflite.", "Give it with --other B.tflite.")
        files.append(("b", Path(kw["other"])))
    return files
