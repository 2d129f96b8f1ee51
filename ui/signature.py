"""The chosen model's signatures and inputs, for the Convert form: the real
input names as the Input shapes placeholder, the signatures to choose from,
and static shapes for "Fix the input shapes".

A sample's come from its manifest (written from the real model when the
samples were built); an upload's are read by a sandboxed worker, as a
``SIGNATURE`` job (the web process never parses a model). The job's id is
kept in session state per upload, so it runs once.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.errors import StudioError
from core.server import jobs
from core.tasks.shapes import suggest_shape
from ui.errors import guard
from ui.identity import current_user
from ui.samples import find_sample
from ui.uploads import ModelRef
from ui.words import shape_lines

__all__ = [
    "signature_of",
    "pending",
    "rerun_when_read",
    "keys_of",
    "inputs_of",
    "suggested_shapes",
    "placeholder",
]

_JOB = "convert.signature_job."  # + model sha -> the SIGNATURE job's id
_FALLBACK = "image=1,224,224,3"


def _from_manifest(file: str) -> dict[str, Any] | None:
    sample = find_sample(file)
    if sample is None:
        return None
    specs = _manifest_signatures(file) or (
        {"serving_default": sample.inputs} if sample.inputs else {}
    )
    sigs = {
        key: [
            {
                "name": name,
                "dtype": str(info.get("dtype", "")),
                "shape": [-1 if d is None else int(d) for d in info.get("shape") or []],
            }
            for name, info in sorted(spec.items())
        ]
        for key, spec in specs.items()
    }
    return _result(sigs) if sigs else None


def _manifest_signatures(file: str) -> dict[str, dict[str, Any]] | None:
    import json

    from ui.samples import SAMPLES_DIR

    try:
        entries = json.loads((SAMPLES_DIR / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and e.get("file") == file:
            sigs = e.get("signatures") or {}
            return {k: dict(v.get("inputs") or {}) for k, v in sigs.items()} or None
    return None


def _result(sigs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    keys = sorted(sigs)
    default = (
        "serving_default" if "serving_default" in sigs else keys[0] if len(keys) == 1 else None
    )
    return {
        "signature_keys": keys,
        "default_key": default,
        "signatures": sigs,
        "suggested_shapes": {
            k: {i["name"]: list(suggest_shape(tuple(i["shape"]))) for i in v if i["shape"]}
            for k, v in sigs.items()
        },
    }


def _job(model: ModelRef) -> jobs.Job | None:
    """The upload's SIGNATURE job, submitted on first use (None if refused)."""
    key = _JOB + model.sha
    job_id = st.session_state.get(key)
    if job_id:
        try:
            return jobs.get(str(job_id))
        except StudioError:
            pass
    try:
        admitted = jobs.store().intake.admit(
            jobs.JobKind.SIGNATURE,
            jobs.ArtifactRef(model.sha, model.size, model.name),
            model_name=model.name,
            user=current_user(),
            dedupe=True,
        )
    except StudioError:  # a limit: the form works without it
        return None
    st.session_state[key] = admitted.job_id
    return jobs.get(admitted.job_id)


def signature_of(model: ModelRef | None) -> dict[str, Any] | None:
    """``{signature_keys, default_key, signatures, suggested_shapes}``, or None
    while it is being read (or when it cannot be)."""
    if model is None or model.is_tflite:
        return None
    if model.sample:
        return _from_manifest(model.sample)
    job = _job(model)
    if job is None or job.status is not jobs.JobStatus.DONE:
        return None
    return (job.result or {}).get("signature")


def pending(model: ModelRef | None) -> bool:
    """True while the upload's signature is still being read."""
    if model is None or model.is_tflite or model.sample:
        return False
    job = _job(model)
    return job is not None and not job.status.finished


def rerun_when_read(model: ModelRef) -> None:
    """While the signature is read: a quiet poll that reruns the page once it is."""

    @st.fragment(run_every=1.0)
    @guard
    def _poll() -> None:
        if not pending(model):
            st.rerun(scope="app")

    _poll()


def keys_of(sig: dict[str, Any] | None) -> list[str]:
    return list((sig or {}).get("signature_keys") or [])


def _key(sig: dict[str, Any], chosen: str | None) -> str | None:
    keys = keys_of(sig)
    if chosen in keys:
        return chosen
    return sig.get("default_key") or (keys[0] if keys else None)


def inputs_of(sig: dict[str, Any] | None, chosen: str | None = None) -> list[dict[str, Any]]:
    """The inputs of the chosen signature (else the default one)."""
    if not sig:
        return []
    key = _key(sig, chosen)
    return list((sig.get("signatures") or {}).get(key) or []) if key else []


def suggested_shapes(
    sig: dict[str, Any] | None, chosen: str | None = None, *, only_dynamic: bool = True
) -> dict[str, list[int]]:
    """A static shape for each input (by default only those with open dimensions)."""
    if not sig:
        return {}
    key = _key(sig, chosen)
    shapes = dict(((sig.get("suggested_shapes") or {}).get(key) or {}) if key else {})
    if only_dynamic:
        dynamic = {i["name"] for i in inputs_of(sig, key) if any(d < 0 for d in i["shape"])}
        shapes = {n: s for n, s in shapes.items() if n in dynamic}
    return shapes


def placeholder(sig: dict[str, Any] | None, chosen: str | None = None) -> str:
    """The Input shapes field's placeholder: this model's inputs with static shapes."""
    shapes = suggested_shapes(sig, chosen, only_dynamic=False)
    return shape_lines(shapes) if shapes else _FALLBACK
