"""Every job kind of the HTTP API: which fields and files each one takes, the
job it becomes (``Submission``), the result JSON it answers with and the files
it offers for download.

=========  ===================================================================
kind       fields (files in *italics* in the README)
=========  ===================================================================
convert    model, preset, calibration_data + the converter's options
inspect    model (a .tflite)
evaluate   model (the original), tflite (the converted file to check) or a
           preset to convert with; eval_data, calibration_data, task,
           threads, runs + the converter's options
layers     model, preset (int8 | int8-float-io), calibration_data, eval_data,
           max_samples + the converter's options
sweep      model, presets, calibration_data, eval_data, threads, runs, task,
           layer_errors, layers (auto|always|never), keep_worst + the converter's options
diff       model (A.tflite), b (B.tflite), name_a, name_b
optimize   model (a float .tflite), recipe (an id) or recipe_json (a custom
           recipe), block_size, mode (recipe | sweep), calibration_data,
           eval_data, calibration_samples, image_range, signature
deploy     model (a .tflite), targets (python,android,ios,cpp,micro), origin
=========  ===================================================================

Every kind also takes ``force`` (a new job even when an identical one is
queued or running).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import OptionsError
from core.model.naming import download_name, model_stem
from core.options import PRESET_IDS, Preset
from core.server.api_form import SOURCE_FIELDS, TEXT_FIELDS, conversion_options, flag
from core.server.optimize_jobs import (
    DEPLOY_FIELDS,
    OPTIMIZE_FIELDS,
    deploy_params_from_fields,
    optimize_params_from_fields,
)
from core.server.records import ArtifactRef, Job, JobKind

__all__ = [
    "API_KINDS",
    "KIND_FIELDS",
    "KIND_FILES",
    "Submission",
    "parse_submission",
    "kind_result",
    "page_link",
    "model_download",
    "report_download",
]

API_KINDS = ("convert", "inspect", "evaluate", "layers", "sweep", "diff", "optimize", "deploy")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "convert": TEXT_FIELDS,
    "inspect": (),
    "evaluate": (*TEXT_FIELDS, "task", "threads", "runs"),
    "layers": ("preset", *SOURCE_FIELDS, "max_samples"),
    "sweep": (
        *SOURCE_FIELDS,
        "presets",
        "threads",
        "runs",
        "task",
        "layer_errors",
        "layers",
        "keep_worst",
    ),
    "diff": ("name_a", "name_b"),
    "optimize": OPTIMIZE_FIELDS,
    "deploy": DEPLOY_FIELDS,
}
KIND_FILES: dict[str, tuple[str, ...]] = {
    "convert": ("model", "calibration_data"),
    "inspect": ("model",),
    "evaluate": ("model", "tflite", "calibration_data", "eval_data"),
    "layers": ("model", "calibration_data", "eval_data"),
    "sweep": ("model", "calibration_data", "eval_data"),
    "diff": ("model", "b"),
    "optimize": ("model", "calibration_data", "eval_data"),
    "deploy": ("model",),
}
# the API's file field -> the job's file key (what the runner reads)
_FILE_KEYS = {"calibration_data": "calibration", "eval_data": "eval", "tflite": "tflite", "b": "b"}
# where a file must be a .tflite (True) or must not be one (False)
_TFLITE = {
    "inspect": {"model": True},
    "evaluate": {"model": False, "tflite": True},
    "layers": {"model": False},
    "sweep": {"model": False},
    "diff": {"model": True, "b": True},
    "optimize": {"model": True},
    "deploy": {"model": True},
}


@dataclass(frozen=True)
class Submission:
    """What a form asks for: the job's kind, params and extra files (by job file key)."""

    kind: JobKind
    params: dict[str, Any]
    files: dict[str, ArtifactRef] = field(default_factory=dict)


def _one(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    vals = fields.get(name) or []
    return vals[-1].strip() if vals else default


def _int(fields: dict[str, list[str]], name: str, default: int, lo: int, hi: int) -> int:
    raw = _one(fields, name, str(default))
    try:
        v = int(raw)
    except ValueError:
        raise OptionsError(
            f"{name} must be a whole number, not {raw!r}.", f"For example {name}={default}."
        ) from None
    if not lo <= v <= hi:
        raise OptionsError(f"{name}={v} is out of range.", f"Use a number from {lo} to {hi}.")
    return v


def _threads(fields: dict[str, list[str]]) -> list[int]:
    raw = _one(fields, "threads", "1")
    try:
        out = [int(t) for t in raw.split(",") if t.strip()]
    except ValueError:
        out = []
    if not out or any(not 1 <= t <= 64 for t in out):
        raise OptionsError(f"Cannot read threads {raw!r}.", "Give thread counts like 1 or 1,2,4.")
    return out


def _task(fields: dict[str, list[str]]) -> str:
    task = _one(fields, "task", "auto")
    if task not in ("auto", "classification", "regression"):
        raise OptionsError(f"Unknown task {task!r}.", "Use auto, classification or regression.")
    return task


def _presets(fields: dict[str, list[str]]) -> list[str] | None:
    raw = [p.strip() for v in fields.get("presets") or [] for p in v.split(",") if p.strip()]
    bad = [p for p in raw if p not in PRESET_IDS]
    if bad:
        raise OptionsError(
            f"Unknown preset(s): {', '.join(bad)}.", "Choose from: " + ", ".join(PRESET_IDS) + "."
        )
    return raw or None


def _measure(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "threads": _threads(fields),
        "runs": _int(fields, "runs", 50, 1, 10_000),
        "task": _task(fields),
    }


def _convert_params(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {"options": conversion_options(fields)}


def _evaluate_params(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {"options": conversion_options(fields), **_measure(fields)}


def _layers_params(fields: dict[str, list[str]]) -> dict[str, Any]:
    opts = conversion_options(fields, default_preset=Preset.INT8.value)
    if opts["preset"] not in (Preset.INT8.value, Preset.INT8_FLOAT_IO.value):
        raise OptionsError(
            f"The per-layer error is measured for int8 and int8-float-io, not {opts['preset']}.",
            "Send preset=int8 (or int8-float-io); a sweep measures int16x8 layer by layer.",
        )
    return {"options": opts, "max_samples": _int(fields, "max_samples", 100, 1, 10_000)}


def _sweep_params(fields: dict[str, list[str]]) -> dict[str, Any]:
    layers = flag(fields, "layer_errors", default=True)
    mode = _one(fields, "layers", "auto")
    if mode not in ("auto", "always", "never"):
        raise OptionsError(
            f"Unknown layers value {mode[:40]!r}.",
            "Send layers=auto (for integer presets that lose accuracy), always or never.",
        )
    layers = layers and mode != "never"
    return {
        "presets": _presets(fields),
        "options": conversion_options(fields),
        **_measure(fields),
        "layer_errors": layers,
        "layers": mode,
        "keep_worst": _int(fields, "keep_worst", 0, 0, 20) if layers else 0,
    }


def _diff_params(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {k: _one(fields, k)[:120] for k in ("name_a", "name_b") if _one(fields, k)}


_PARAMS: dict[str, Callable[[dict[str, list[str]]], dict[str, Any]]] = {
    "convert": _convert_params,
    "inspect": lambda fields: {},
    "evaluate": _evaluate_params,
    "layers": _layers_params,
    "sweep": _sweep_params,
    "diff": _diff_params,
    "optimize": optimize_params_from_fields,
    "deploy": deploy_params_from_fields,
}


def _check_fields(kind: str, fields: dict[str, list[str]], files: dict[str, ArtifactRef]) -> None:
    known = {*KIND_FIELDS[kind], "kind", "force"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise OptionsError(
            f"Unknown field(s) for kind={kind}: " + ", ".join(unknown) + ".",
            f"kind={kind} takes: " + ", ".join([*KIND_FILES[kind], *KIND_FIELDS[kind]]) + ".",
        )
    extra = sorted(set(files) - set(KIND_FILES[kind]))
    if extra:
        raise OptionsError(
            f"kind={kind} takes no file {', '.join(extra)}.",
            f"Its files are: {', '.join(KIND_FILES[kind])}.",
        )
    if kind == "diff" and "b" not in files:
        raise OptionsError(
            "A diff needs two .tflite files.", "Send the first as 'model' and the second as 'b'."
        )


def parse_submission(
    kind: str,
    fields: dict[str, list[str]],
    files: dict[str, ArtifactRef],
    detect: Callable[[ArtifactRef], str],
) -> Submission:
    """The job a form asks for; ``detect(ref)`` is the file's format (``tflite``,
    ``zip``, ``keras``…). Raises ``OptionsError`` naming the field to fix."""
    if kind not in API_KINDS:
        raise OptionsError(f"Unknown kind {kind!r}.", "Use one of: " + ", ".join(API_KINDS) + ".")
    _check_fields(kind, fields, files)
    for name, must in _TFLITE.get(kind, {}).items():
        ref = files.get(name)
        if ref is None:
            continue
        is_tflite = detect(ref) == "tflite"
        if is_tflite and not must:
            raise OptionsError(
                f"{ref.name or name} is already a .tflite file.",
                f"kind={kind} starts from the original model: send the zipped SavedModel, "
                "the .keras or the .h5 file as 'model'.",
            )
        if must and not is_tflite:
            raise OptionsError(
                f"{ref.name or name} is not a .tflite file.",
                f"kind={kind} reads .tflite files: send one as {name!r}.",
            )
    params = _PARAMS[kind](fields)
    extra = {_FILE_KEYS[k]: v for k, v in files.items() if k != "model"}
    return Submission(JobKind(kind), params, extra)


# ---------------------------------------------------------------- views


def page_link(job: Job) -> str:
    """The app page that shows this job."""
    if job.kind in (JobKind.CONVERT, JobKind.INSPECT):
        return f"/inspect?job={job.id}"
    if job.kind is JobKind.EVALUATE and job.params.get("parent"):
        return f"/compare?job={job.params['parent']}&reconvert={job.id}"
    if job.kind in (JobKind.OPTIMIZE, JobKind.DEPLOY):
        return f"/optimize?job={job.id}"
    return f"/compare?job={job.id}"


def _sweep_view(res: dict[str, Any], base: str) -> dict[str, Any]:
    sweep = res.get("sweep") or {}
    rows = []
    for r in sweep.get("rows") or []:
        rows.append(
            {
                "label": r.get("label"),
                "preset": r.get("preset"),
                "size_bytes": r.get("size_bytes"),
                "latency_ms": r.get("latency_ms"),
                "metrics": r.get("metrics") or {},
                "pareto": bool(r.get("pareto")),
                "note": r.get("note") or "",
                "error": r.get("error"),
                "download": (
                    f"{base}/model.tflite?preset={r.get('label')}"
                    if r.get("artifact_sha")
                    else None
                ),
            }
        )
    return {
        "recommendation": sweep.get("recommendation"),
        "rows": rows,
        "flags": sweep.get("flags") or [],
        "data": sweep.get("data") or {},
        "calibration": sweep.get("calibration"),
        "seconds": sweep.get("seconds"),
    }


def kind_result(job: Job) -> dict[str, Any] | None:
    """The result of a finished job, by kind (no internal file hashes)."""
    res = job.result
    if not res:
        return None
    base = f"/api/jobs/{job.id}"
    if job.kind is JobKind.CONVERT:
        conv = res.get("conversion") or {}
        return {"conversion": {k: v for k, v in conv.items() if k != "output_path"}}
    if job.kind is JobKind.INSPECT:
        return {"output_size": res.get("output_size")}
    if job.kind is JobKind.SWEEP or (job.kind is JobKind.OPTIMIZE and "sweep" in res):
        return _sweep_view(res, base)
    if job.kind is JobKind.OPTIMIZE:
        return {"optimize": res.get("optimize")}
    if job.kind is JobKind.DEPLOY:
        return {"deploy": res.get("deploy"), "kit": f"{base}/kit.zip"}
    if job.kind is JobKind.EVALUATE:
        row = dict(res.get("row") or {})
        row.pop("tflite_path", None)
        row.pop("artifact_sha", None)
        return {"row": row, "accuracy": res.get("accuracy") or row.get("accuracy")}
    if job.kind is JobKind.LAYERS:
        return {"layers": res.get("layers")}
    if job.kind is JobKind.DIFF:
        return {"diff": res.get("diff"), "text": res.get("text")}
    return {k: v for k, v in res.items() if not k.endswith("_sha")}


def _sweep_row(job: Job, label: str | None) -> dict[str, Any] | None:
    rows = ((job.result or {}).get("sweep") or {}).get("rows") or []
    if label is None:
        rec = (((job.result or {}).get("sweep") or {}).get("recommendation") or {}).get("label")
        label = rec
    return next(
        (r for r in rows if r.get("artifact_sha") and label in (r.get("label"), r.get("preset"))),
        None,
    )


def model_download(job: Job, preset: str | None = None) -> tuple[str, str] | None:
    """(artifact sha, file name) of the job's ``.tflite`` (a sweep's: the
    recommended row, or the row named ``preset``), or None."""
    opts = job.params.get("options") or {}
    if job.kind is JobKind.SWEEP or "sweep" in (job.result or {}):
        row = _sweep_row(job, preset)
        if row is None:
            return None
        name = download_name(job.model_name, row.get("preset"), "tflite", row.get("options"))
        return str(row["artifact_sha"]), name
    given = (job.params.get("files") or {}).get("tflite")
    if job.kind is JobKind.EVALUATE and given:
        return str(given["sha"]), str(given["name"])
    sha = job.output_sha
    if not sha:
        return None
    if job.kind is JobKind.INSPECT:
        return sha, job.model_name
    return sha, download_name(job.model_name, job.preset or None, "tflite", opts)


def report_download(job: Job) -> str:
    """The file name of the job's JSON report."""
    opts = job.params.get("options") or {}
    if job.kind is JobKind.SWEEP:
        return download_name(job.model_name, "sweep", "json")
    if job.kind is JobKind.LAYERS:
        return download_name(job.model_name, f"{job.preset}-layers", "json", opts)
    if job.kind is JobKind.DIFF:
        b = (job.params.get("files") or {}).get("b") or {}
        return f"{model_stem(job.model_name)}-vs-{model_stem(str(b.get('name') or 'b'))}-diff.json"
    if job.kind is JobKind.EVALUATE:
        return download_name(job.model_name, f"{job.preset or 'given'}-evaluation", "json", opts)
    return download_name(job.model_name, job.preset or None, "json", opts)
