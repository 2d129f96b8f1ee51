"""Submitting the two job kinds of the workflow's last steps: ``OPTIMIZE``
(a ``.tflite`` quantized with a recipe, or a sweep over every recipe) and
``DEPLOY`` (the deploy kit of a ``.tflite``), from the app, the CLI or the API.

A custom recipe is checked (``core.tasks.recipes.parse_recipe_json``) before
it is queued; its scopes are checked against the model in the worker."""

from __future__ import annotations

from typing import Any

from core.errors import JobError, OptionsError
from core.options import PRESETS, Preset
from core.server.records import ArtifactRef, Job, JobKind
from core.tasks.deploy import parse_targets
from core.tasks.optimize import CUSTOM, RecipeChoice
from core.tasks.recipes import BLOCK_SIZES, Recipe, parse_recipe_json, recipe_entries

__all__ = [
    "OPTIMIZE_FIELDS",
    "DEPLOY_FIELDS",
    "MODES",
    "optimize_params",
    "deploy_params",
    "optimize_params_from_fields",
    "deploy_params_from_fields",
    "recipe_of",
    "origin_words",
    "submit_optimize",
    "submit_deploy",
    "tflite_of",
]

MODES = ("recipe", "sweep")
OPTIMIZE_FIELDS = (
    "recipe",
    "recipe_json",
    "block_size",
    "mode",
    "calibration_samples",
    "image_range",
    "signature",
)
DEPLOY_FIELDS = ("targets", "origin")


def recipe_of(params: dict[str, Any]) -> RecipeChoice:
    """The job's recipe (params ``recipe``: a ``RecipeChoice`` dict)."""
    return RecipeChoice.from_dict(params["recipe"])


def optimize_params(
    recipe: RecipeChoice,
    *,
    mode: str = "recipe",
    calibration_samples: int = 100,
    image_range: tuple[float, float] = (0.0, 1.0),
    signature: str | None = None,
) -> dict[str, Any]:
    """The params of an OPTIMIZE job (``options.preset`` names the recipe, so
    History and the download names show it)."""
    if mode not in MODES:
        raise OptionsError(f"Unknown mode {mode!r}.", "Use mode=recipe or mode=sweep.")
    if not 1 <= int(calibration_samples) <= 10_000:
        raise OptionsError(
            f"{calibration_samples} calibration samples is out of range.",
            "Use between 1 and 10000 samples.",
        )
    lo, hi = (float(v) for v in image_range)
    if not lo < hi:
        raise OptionsError(f"The image range {lo}..{hi} is empty.", "Give the low end first.")
    label = "sweep" if mode == "sweep" else recipe.slug
    return {
        "options": {"preset": label},
        "recipe": recipe.to_dict(),
        "mode": mode,
        "calibration_samples": int(calibration_samples),
        "image_range": [lo, hi],
        "signature": signature or None,
    }


def deploy_params(targets: tuple[str, ...], origin: str = "") -> dict[str, Any]:
    return {"targets": list(parse_targets(",".join(targets))), "origin": str(origin)[:300]}


def _one(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    vals = fields.get(name) or []
    return vals[-1].strip() if vals else default


def _block_size(fields: dict[str, list[str]]) -> int:
    raw = _one(fields, "block_size", "0") or "0"
    if raw not in {str(b) for b in BLOCK_SIZES}:
        raise OptionsError(
            f"block_size={raw!r} is not allowed.",
            "Use 0 (channel-wise), 32, 64 or 128 (weight-only-int4 only).",
        )
    return int(raw)


def optimize_params_from_fields(fields: dict[str, list[str]]) -> dict[str, Any]:
    """The API's form fields of kind=optimize as job params."""
    text = _one(fields, "recipe_json")
    recipe_id = _one(fields, "recipe", "" if text else Recipe.WEIGHT_ONLY_INT4.value)
    if text and recipe_id:
        raise OptionsError(
            "Send either recipe (an id) or recipe_json (a custom recipe), not both.",
            "Drop one of the two fields.",
        )
    if text:
        choice = RecipeChoice(CUSTOM, entries=tuple(parse_recipe_json(text)), name="recipe_json")
    else:
        block = _block_size(fields)
        recipe_entries(recipe_id, block)  # an unknown id or block size is a RecipeError here
        choice = RecipeChoice(recipe_id, block_size=block)
    try:
        samples = int(_one(fields, "calibration_samples", "100"))
        lo, hi = (float(v) for v in _one(fields, "image_range", "0,1").split(","))
    except ValueError:
        raise OptionsError(
            "calibration_samples or image_range cannot be read.",
            "For example calibration_samples=200 and image_range=0,1.",
        ) from None
    return optimize_params(
        choice,
        mode=_one(fields, "mode", "recipe"),
        calibration_samples=samples,
        image_range=(lo, hi),
        signature=_one(fields, "signature") or None,
    )


def deploy_params_from_fields(fields: dict[str, list[str]]) -> dict[str, Any]:
    return deploy_params(parse_targets(_one(fields, "targets")), _one(fields, "origin"))


def origin_words(job: Job) -> str:
    """How the job's model was made, for the kit's README."""
    if job.kind is JobKind.CONVERT:
        try:
            title = PRESETS[Preset(job.preset)].title
        except ValueError:
            title = job.preset
        return f"converted from {job.model_name} with the {title} preset ({job.preset})"
    if job.kind is JobKind.OPTIMIZE:
        return f"optimized from {job.model_name} with the {recipe_of(job.params).label} recipe"
    return f"uploaded as {job.model_name}"


def tflite_of(job: Job) -> tuple[str, int, str] | None:
    """(artifact sha, size, file name) of the ``.tflite`` a job has to offer."""
    from core.model.naming import download_name

    if job.kind is JobKind.INSPECT:
        return job.input_sha, job.input_size, job.model_name
    if job.kind in (JobKind.CONVERT, JobKind.OPTIMIZE) and job.output_sha:
        name = download_name(job.model_name, job.preset or None, "tflite")
        return job.output_sha, int(job.output_size or 0), name
    return None


def submit_optimize(
    store: Any,
    upload: Any,
    *,
    model_name: str,
    params: dict[str, Any],
    user: str = "local",
    calibration: Any = None,
    eval_data: Any = None,
) -> Job:
    """Queue an OPTIMIZE job for a ``.tflite`` (``store``: the ``JobStore``)."""
    ref = _require_tflite(store, upload, model_name, "optimize")
    extra = {k: v for k, v in (("calibration", calibration), ("eval", eval_data)) if v is not None}
    return store.submit(
        JobKind.OPTIMIZE, ref, model_name=model_name, params=params, user=user, extra_files=extra
    )


def submit_deploy(
    store: Any, upload: Any, *, model_name: str, params: dict[str, Any], user: str = "local"
) -> Job:
    """Queue a DEPLOY job: the kit of a ``.tflite``."""
    ref = _require_tflite(store, upload, model_name, "deploy")
    return store.submit(JobKind.DEPLOY, ref, model_name=model_name, params=params, user=user)


def _require_tflite(store: Any, upload: Any, model_name: str, what: str) -> ArtifactRef:
    ref = (
        upload if isinstance(upload, ArtifactRef) else store.intake.store_upload(upload, model_name)
    )
    if store.intake.detect_kind(ref, model_name) != "tflite":
        raise JobError(
            f"{model_name} is not a .tflite file; {what} starts from a converted model.",
            "Convert it first (Convert page, or `tflite-studio convert`), then "
            f"{what} the .tflite.",
        )
    return ref
