"""Worker task ``signature``: an upload's signatures and their inputs, read the
way a conversion reads them (``core.worker.loader``): the archive unpacked
safely, a Keras file exported to a SavedModel in safe mode, ``saved_model.pb``
parsed without running the model. Nothing is converted.

The Convert page shows the result: the real input names as the Input shapes
placeholder, the signatures to choose from, static shapes to offer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.errors import ModelFormatError
from core.model.archive import ModelKind, prepare_model
from core.options import ConversionOptions
from core.tasks.requests import SignatureRequest, SignatureResult
from core.tasks.shapes import suggest_shape
from core.worker.loader import keras_to_saved_model, read_signatures

__all__ = ["run", "default_signature"]


def default_signature(keys: list[str]) -> str | None:
    """The signature a conversion picks without being told (``pick_signature``):
    ``serving_default``, else the only one; None when the person must choose."""
    if "serving_default" in keys:
        return "serving_default"
    return keys[0] if len(keys) == 1 else None


def run(req: SignatureRequest, workdir: Path, progress: Callable[..., None]) -> SignatureResult:
    name = req.display_name or Path(req.model_path).name
    progress("Unpacking the upload")
    with prepare_model(req.model_path, workdir, req.unpack_limits, display_name=name) as pm:
        if pm.kind is ModelKind.TFLITE:
            raise ModelFormatError(
                f"{name} is already a .tflite model.",
                "Open it in Inspect to see its inputs.",
            )
        sm_dir = pm.path
        if pm.kind in (ModelKind.KERAS, ModelKind.H5):
            progress("Loading the Keras model (safe mode)")
            sm_dir = keras_to_saved_model(pm.path, pm.kind, workdir, ConversionOptions())
        progress("Reading signatures")
        sigs = read_signatures(sm_dir)
    keys = sorted(sigs)
    return SignatureResult(
        kind=pm.kind.value,
        signature_keys=tuple(keys),
        default_key=default_signature(keys),
        signatures={k: tuple(v) for k, v in sigs.items()},
        suggested_shapes={
            k: {i.name: suggest_shape(i.shape) for i in v if i.shape} for k, v in sigs.items()
        },
    )
