"""Optimize an existing ``.tflite`` with LiteRT's quantizer, in a sandboxed
worker (``core.worker.optimize``): a recipe by id or a custom recipe JSON,
the quantizer's tensor comparison and our evaluation against the float file.

``recipe_choice("weight-only-int4", block_size=32)`` or
``recipe_choice("mine.json")`` builds what ``optimize_file`` takes; a recipe
file is checked here (``core.tasks.recipes.parse_recipe_json``) before any
worker starts, its scopes against the model in the worker."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from core.errors import OptionsError, RecipeError
from core.pipeline.isolation import RunContext, run_task, work_folder
from core.tasks.optimize import CUSTOM, OptimizeResult, RecipeChoice
from core.tasks.recipes import RECIPE_IDS, Recipe, parse_recipe_json, recipe_entries
from core.tasks.requests import OptimizeRequest
from core.tasks.results import Thresholds

__all__ = ["recipe_choice", "custom_recipe", "optimize_file", "optimized_name"]

MAX_RECIPE_FILE = 1 << 20


def custom_recipe(source: str | bytes, name: str = "") -> RecipeChoice:
    """A custom recipe (JSON text) checked entry by entry."""
    return RecipeChoice(CUSTOM, entries=tuple(parse_recipe_json(source)), name=name)


def recipe_choice(spec: str | os.PathLike[str], block_size: int = 0) -> RecipeChoice:
    """A recipe id (``weight-only-int4``) or the path of a recipe JSON file."""
    text = os.fspath(spec)
    if text in RECIPE_IDS:
        recipe_entries(text, block_size)  # checks the block size
        return RecipeChoice(Recipe(text).value, block_size=int(block_size))
    path = Path(text)
    if path.suffix.lower() == ".json" or path.is_file():
        if block_size:
            raise RecipeError(
                "--block-size applies to weight-only-int4, not to a recipe file.",
                'Set the granularity in the file ("granularity": "BLOCKWISE_32").',
            )
        if not path.is_file():
            raise OptionsError(f"The recipe file {path.name} was not found.", "Check the path.")
        if path.stat().st_size > MAX_RECIPE_FILE:
            raise RecipeError(f"{path.name} is too large for a recipe.", "Give the recipe JSON.")
        return custom_recipe(path.read_bytes(), path.name)
    recipe_entries(text)  # not an id: the RecipeError names the closest one
    raise RecipeError(f"Unknown recipe {text!r}.", "Give a recipe id or a .json file.")


def optimized_name(input_name: str, recipe: RecipeChoice) -> str:
    """``digits-weight-only-int4.tflite`` for ``digits.tflite``."""
    from core.model.naming import model_stem

    return f"{model_stem(input_name)}-{recipe.slug}.tflite"


def optimize_file(
    tflite: str | os.PathLike[str],
    output: str | os.PathLike[str],
    recipe: RecipeChoice,
    *,
    calibration_data: str | os.PathLike[str] | None = None,
    calibration_samples: int = 100,
    image_range: tuple[float, float] = (0.0, 1.0),
    eval_data: str | os.PathLike[str] | None = None,
    max_samples: int = 200,
    signature_key: str | None = None,
    validate: bool = True,
    evaluate: bool = True,
    thresholds: Thresholds | None = None,
    display_name: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    ctx: RunContext | None = None,
) -> OptimizeResult:
    """Quantize ``tflite`` into ``output``; raises ``QuantizeError`` /
    ``RecipeError`` (and writes nothing) when the result would not be smaller
    and quantized, or the recipe cannot apply."""
    src = Path(os.path.abspath(tflite))
    if not 1 <= calibration_samples <= 10_000:
        raise OptionsError(
            f"{calibration_samples} calibration samples is out of range.",
            "Use between 1 and 10000 samples (100 to 500 is typical).",
        )
    request = OptimizeRequest(
        tflite_path=str(src),
        display_name=display_name or src.name,
        recipe=recipe,
        calibration_path=os.path.abspath(calibration_data) if calibration_data else None,
        calibration_samples=int(calibration_samples),
        image_range=(float(image_range[0]), float(image_range[1])),
        eval_path=os.path.abspath(eval_data) if eval_data else None,
        max_samples=int(max_samples),
        signature_key=signature_key or None,
        validate=validate,
        evaluate=evaluate,
        thresholds=thresholds or Thresholds(),
    )
    ctx = (ctx or RunContext()).without_pool()  # no TensorFlow to pre-load
    with work_folder(workdir, "tflite-optimize-") as wd:
        result = run_task(request, OptimizeResult, workdir=wd, ctx=ctx)
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(wd / request.out_path), str(out))
    return replace(result, extra={**result.extra, "output_path": str(out)})
