"""The one model loader of every TensorFlow task: unpack the upload, turn a
Keras file into a SavedModel (safe mode), read the signatures from
``saved_model.pb`` without running anything, pick one, and fix the input
shapes. Conversion, the reference run and the quantization debugger all start
here, so they see the same model the same way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import LoadError, OptionsError, StudioError
from core.model.archive import ModelKind, UnpackLimits, prepare_model
from core.options import ConversionOptions
from core.tasks.results import SignatureInput
from core.tasks.shapes import shape_words, suggest_shape

__all__ = [
    "LoadedModel",
    "load_model",
    "read_signatures",
    "pick_signature",
    "fixed_shapes",
    "keras_to_saved_model",
    "concrete_shape",
    "suggested_shapes",
]


@dataclass
class LoadedModel:
    """What the loader learned; the SavedModel folder lives until the block ends."""

    tf: Any
    kind: ModelKind
    source_size: int
    saved_model_dir: Path
    signature_key: str
    signature_keys: tuple[str, ...]
    inputs: list[SignatureInput]
    shapes: dict[str, tuple[int, ...]]
    started: float  # perf_counter once TensorFlow was imported
    warnings: list[str] = field(default_factory=list)
    _fn: Any = None
    _bounds: dict[str, int] | None = None

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    def signature_fn(self) -> Any:
        """The signature as a TensorFlow function (loaded once; it runs the
        model's code, which is why only the sandboxed worker calls it)."""
        if self._fn is None:
            loaded = self.tf.saved_model.load(str(self.saved_model_dir))
            self._fn = (loaded, loaded.signatures[self.signature_key])
        return self._fn[1]

    def table_bounds(self) -> dict[str, int]:
        """Integer input -> the size of the table it indexes (``core.worker.tables``)."""
        if self._bounds is None:
            from core.worker.tables import table_bounds

            ints = any(i.dtype.startswith(("int", "uint")) for i in self.inputs)
            fn = self.signature_fn() if ints else None
            self._bounds = table_bounds(self.tf, fn, self.inputs, self.shapes) if ints else {}
        return self._bounds


@contextlib.contextmanager
def load_model(
    model_path: str,
    display_name: str,
    options: ConversionOptions,
    unpack_limits: UnpackLimits,
    workdir: Path,
    progress: Callable[..., None],
    *,
    refuse_tflite: Callable[[str], StudioError],
) -> Iterator[LoadedModel]:
    """Load the model for ``options`` (signature, input shapes); a ``.tflite``
    gets ``refuse_tflite(name)``, which names what to do instead."""
    name = display_name or Path(model_path).name
    progress("Unpacking the upload")
    with prepare_model(model_path, workdir, unpack_limits, display_name=name) as pm:
        if pm.kind is ModelKind.TFLITE:
            raise refuse_tflite(name)
        progress("Loading TensorFlow")
        import tensorflow as tf

        started = time.perf_counter()
        sm_dir = pm.path
        if pm.kind in (ModelKind.KERAS, ModelKind.H5):
            progress("Loading the Keras model (safe mode)")
            sm_dir = keras_to_saved_model(pm.path, pm.kind, workdir, options)
        progress("Reading signatures")
        sigs = read_signatures(sm_dir)
        key = pick_signature(sigs, options.signature_key)
        warnings: list[str] = []
        if set(sigs) - {key, "serve"} and not options.signature_key:
            warnings.append(
                f"The model has {len(sigs)} signatures; converted {key!r}. "
                "Choose another with --signature."
            )
        inputs = sigs[key]
        shapes = fixed_shapes(inputs, options, warnings)
        yield LoadedModel(
            tf=tf,
            kind=pm.kind,
            source_size=pm.source_size,
            saved_model_dir=sm_dir,
            signature_key=key,
            signature_keys=tuple(sorted(sigs)),
            inputs=inputs,
            shapes=shapes,
            started=started,
            warnings=warnings,
        )


def concrete_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape synthetic samples get (``core.tasks.shapes``: not 1 for a sequence)."""
    return suggest_shape(shape)


def read_signatures(saved_model_dir: Path) -> dict[str, list[SignatureInput]]:
    """Read signature inputs from saved_model.pb without loading the model."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = saved_model_dir / "saved_model.pb"
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(pb.read_bytes())
    except Exception as e:  # noqa: BLE001  (protobuf's DecodeError and friends)
        raise LoadError(
            f"saved_model.pb cannot be read ({type(e).__name__}).",
            "Export the model again with model.export(dir) or tf.saved_model.save.",
        ) from None
    if not sm.meta_graphs:
        raise LoadError("saved_model.pb holds no graph.", "Export the model again.")
    from tensorflow.python.framework import dtypes

    out: dict[str, list[SignatureInput]] = {}
    for key, sig in sm.meta_graphs[0].signature_def.items():
        if key.startswith("__"):
            continue
        ins = []
        for name, info in sorted(sig.inputs.items()):
            dims = (
                tuple(int(d.size) for d in info.tensor_shape.dim)
                if not info.tensor_shape.unknown_rank
                else ()
            )
            ins.append(SignatureInput(name, dtypes.as_dtype(info.dtype).name, dims))
        out[key] = ins
    return out


def pick_signature(sigs: dict[str, list[SignatureInput]], wanted: str | None) -> str:
    keys = sorted(sigs)
    if not keys:
        raise LoadError(
            "The SavedModel has no signatures, so there is nothing to convert.",
            "Export it with a signature, e.g. tf.saved_model.save(m, d, signatures=m.f) "
            "or Keras model.export(d).",
        )
    if wanted:
        if wanted not in sigs:
            raise OptionsError(
                f"The model has no signature {wanted!r}.",
                "Choose one of: " + ", ".join(keys) + ".",
            )
        return wanted
    if "serving_default" in sigs:
        return "serving_default"
    if len(keys) == 1:
        return keys[0]
    raise OptionsError(
        "The model has several signatures and none is serving_default: " + ", ".join(keys) + ".",
        "Choose one with --signature KEY (in the app: Advanced options → Signature).",
        details={"signature_keys": keys},
    )


def fixed_shapes(
    inputs: list[SignatureInput], options: ConversionOptions, warnings: list[str]
) -> dict[str, tuple[int, ...]]:
    names = {i.name for i in inputs}
    given = dict(options.input_shapes)
    for name in given:
        if name not in names:
            raise OptionsError(
                f"The input shapes name {name!r}, which is not an input of this signature.",
                "Inputs are: " + ", ".join(sorted(names)) + ".",
            )
    shapes: dict[str, tuple[int, ...]] = {}
    for i in inputs:
        if i.name in given:
            g = given[i.name]
            if i.shape and len(g) != len(i.shape):
                raise OptionsError(
                    f"Input {i.name!r} has {len(i.shape)} dimensions {list(i.shape)}, "
                    f"but the shape given has {len(g)}.",
                    f"Give {len(i.shape)} numbers, e.g. {i.name}="
                    + ",".join(str(d if d > 0 else 1) for d in i.shape)
                    + ".",
                )
            for have, want in zip(i.shape, g):
                if have > 0 and have != want:
                    raise OptionsError(
                        f"Input {i.name!r} has fixed shape {list(i.shape)}; {list(g)} does "
                        "not match it.",
                        "Only dimensions shown as -1 (dynamic) can be fixed.",
                    )
            shapes[i.name] = g
        else:
            shapes[i.name] = i.shape
    open_dims = {
        i.name: suggest_shape(i.shape)
        for i in inputs
        if i.name not in given and any(d < 0 for d in i.shape[1:])
    }
    if open_dims:  # one warning for the one cause, whatever the number of inputs
        warnings.append(
            f"{len(open_dims)} input{'s have' if len(open_dims) > 1 else ' has'} dynamic "
            f"dimensions ({', '.join(repr(n) for n in open_dims)}): Edge TPU, microcontrollers "
            "and the GPU delegate need static shapes. Fix them with the input shapes option, "
            f"for example {shape_words(open_dims)}."
        )
    return shapes


def suggested_shapes(
    inputs: list[SignatureInput], given: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """A static shape for every input left dynamic (batch 1, sequences 32, images 224)."""
    return {
        i.name: suggest_shape(i.shape)
        for i in inputs
        if i.name not in given and any(d < 0 for d in i.shape)
    }


def keras_to_saved_model(
    pm_path: Path, kind: ModelKind, workdir: Path, options: ConversionOptions
) -> Path:
    import keras
    import tensorflow as tf

    try:
        if kind is ModelKind.KERAS:
            model = keras.models.load_model(pm_path, compile=False, safe_mode=True)
        else:
            model = keras.models.load_model(pm_path, compile=False)
    except ValueError as e:
        text = str(e)
        if "Lambda" in text or "safe_mode" in text:
            raise LoadError(
                "The Keras file holds a Lambda layer, which runs arbitrary Python code: "
                "it is refused for safety (safe_mode).",
                "Replace the Lambda layer with a registered custom layer, or export the "
                "model as a SavedModel (model.export(dir)) and upload that zipped.",
            ) from None
        raise LoadError(
            f"Keras could not load {pm_path.name}: {text[:300]}",
            "If the model uses custom layers, export it as a SavedModel with "
            "model.export(dir) and upload that zipped.",
        ) from None
    except (OSError, TypeError, KeyError, AttributeError) as e:
        raise LoadError(
            f"Keras could not load {pm_path.name} ({type(e).__name__}: {str(e)[:200]}).",
            "Save it again with model.save('model.keras'), or upload a zipped SavedModel.",
        ) from None
    out = workdir / "keras-export"
    signature = None
    if options.input_shapes:
        # Re-trace with fixed shapes: recurrent layers then lower to TFLite ops.
        given = dict(options.input_shapes)
        names = [t.name.split(":")[0] for t in model.inputs]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise OptionsError(
                f"--input-shape names {', '.join(unknown)}, not an input of this model.",
                "Inputs are: " + ", ".join(names) + ".",
            )
        signature = [
            tf.TensorSpec(given.get(n, tuple(d or 1 for d in t.shape)), t.dtype, name=n)
            for n, t in zip(names, model.inputs)
        ]
    try:
        model.export(str(out), verbose=False, input_signature=signature)
    except Exception as e:  # noqa: BLE001  (export raises many kinds)
        raise LoadError(
            f"The Keras model could not be exported to a SavedModel: {str(e)[:300]}",
            "Check that the model has been built (called once on an input) and has "
            "a defined input shape.",
        ) from None
    return out
