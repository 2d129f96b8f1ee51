"""Conversion presets and options: one frozen, validated, hashable object.

Preset ids are shared by the CLI, the app and every report.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from core.errors import OptionsError

__all__ = [
    "Preset",
    "PRESET_IDS",
    "PresetInfo",
    "PRESETS",
    "CalibrationSource",
    "ConversionOptions",
    "parse_input_shape",
]


class Preset(str, enum.Enum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    DYNAMIC = "dynamic"
    INT8_FLOAT_IO = "int8-float-io"
    INT8 = "int8"
    INT16X8 = "int16x8"

    @property
    def info(self) -> PresetInfo:
        return PRESETS[self]

    @property
    def needs_calibration(self) -> bool:
        return PRESETS[self].needs_calibration


@dataclass(frozen=True)
class PresetInfo:
    title: str
    summary: str  # one plain sentence for the picker
    size_effect: str  # expected size change, e.g. "about 1/4 of float32"
    size_ratio: float  # rough expected output size / float32 size
    devices: str
    needs_calibration: bool


PRESETS: dict[Preset, PresetInfo] = {
    Preset.FLOAT32: PresetInfo(
        "Float32 (no optimization)",
        "Converts as is: same numbers as the original, largest file.",
        "same size as the original weights",
        1.0,
        "any CPU or GPU; the baseline to compare against",
        False,
    ),
    Preset.FLOAT16: PresetInfo(
        "Float16 weights",
        "Stores weights as 16-bit floats: half the size, almost no accuracy loss.",
        "about 1/2 of float32",
        0.5,
        "GPU delegate (runs float16 natively); CPUs dequantize to float32",
        False,
    ),
    Preset.DYNAMIC: PresetInfo(
        "Dynamic range (int8 weights)",
        "Stores weights as 8-bit integers, computes in float where needed; no calibration data.",
        "about 1/4 of float32",
        0.25,
        "CPU (XNNPACK); a good first try",
        False,
    ),
    Preset.INT8_FLOAT_IO: PresetInfo(
        "Full integer, float in/out",
        "Weights and activations in int8, float fallback where an op has no int8 "
        "kernel; inputs and outputs stay float. Needs calibration data.",
        "about 1/4 of float32",
        0.25,
        "CPU, faster integer kernels; keeps your pre/post-processing unchanged",
        True,
    ),
    Preset.INT8: PresetInfo(
        "Integer only (int8 in/out)",
        "Everything in int8, including inputs and outputs; fails if any op has no "
        "int8 kernel. Needs calibration data.",
        "about 1/4 of float32",
        0.25,
        "Edge TPU, microcontrollers, NPUs/DSPs",
        True,
    ),
    Preset.INT16X8: PresetInfo(
        "16x8 (int16 activations, int8 weights)",
        "Int8 weights with 16-bit activations: more accurate than int8 for "
        "sensitive models (audio, super-resolution). Needs calibration data.",
        "about 1/4 of float32",
        0.25,
        "CPU reference kernels (often slower than int8)",
        True,
    ),
}


PRESET_IDS: tuple[str, ...] = tuple(p.value for p in Preset)  # float32 first: the baseline


class CalibrationSource(str, enum.Enum):
    NONE = "none"  # synthetic random data: loudly not representative
    ARRAYS = "arrays"  # .npz (keys = input names) or .npy (single input)
    IMAGES = "images"  # folder or zip of images, resized and scaled


_SHAPE_RE = re.compile(r"^\s*([^=\s]+)\s*=\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*$")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """Parse ``NAME=1,224,224,3`` into ``("NAME", (1, 224, 224, 3))``."""
    m = _SHAPE_RE.match(text or "")
    if not m:
        raise OptionsError(
            f"Cannot read the input shape {text!r}.",
            "Write it as NAME=D1,D2,... for example image=1,224,224,3.",
        )
    dims = tuple(int(d) for d in m.group(2).split(","))
    if any(d <= 0 for d in dims):
        raise OptionsError(
            f"The input shape {text!r} has a dimension that is not positive.",
            "Fix every dimension to a whole number of at least 1.",
        )
    return m.group(1), dims


@dataclass(frozen=True)
class ConversionOptions:
    """Everything that decides a conversion's output. Hashable; ``key()`` is
    stable across processes and is used to cache artifacts."""

    preset: Preset = Preset.FLOAT32
    select_tf_ops: bool = False
    allow_custom_ops: bool = False
    signature_key: str | None = None
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    calibration_path: str | None = None
    calibration_source: CalibrationSource = CalibrationSource.NONE
    calibration_samples: int = 100
    image_range: tuple[float, float] = (0.0, 1.0)
    keep_float_ops: tuple[str, ...] = field(default=())  # tensor/op names left in float
    sparsity: bool = False  # converter's EXPERIMENTAL_SPARSITY

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "preset", Preset(self.preset))
        except ValueError:
            raise OptionsError(
                f"Unknown preset {self.preset!r}.",
                "Choose one of: " + ", ".join(p.value for p in Preset) + ".",
            ) from None
        object.__setattr__(self, "calibration_source", CalibrationSource(self.calibration_source))
        shapes = tuple((str(n), tuple(int(d) for d in dims)) for n, dims in self.input_shapes)
        names = [n for n, _ in shapes]
        if len(set(names)) != len(names):
            raise OptionsError(
                "The same input is given two shapes.",
                "Give each input name once in --input-shape.",
            )
        for name, dims in shapes:
            if not dims or any(d <= 0 for d in dims):
                raise OptionsError(
                    f"The shape for input {name!r} is empty or has a dimension below 1.",
                    "Write it as NAME=D1,D2,... with every dimension at least 1.",
                )
        object.__setattr__(self, "input_shapes", tuple(sorted(shapes)))
        object.__setattr__(self, "keep_float_ops", tuple(sorted(set(self.keep_float_ops))))
        lo, hi = (float(v) for v in self.image_range)
        if not lo < hi:
            raise OptionsError(
                f"The image range {lo}..{hi} is empty.",
                "Give the low end first, for example 0,1 or -1,1 or 0,255.",
            )
        object.__setattr__(self, "image_range", (lo, hi))
        if not 1 <= self.calibration_samples <= 10_000:
            raise OptionsError(
                f"{self.calibration_samples} calibration samples is out of range.",
                "Use between 1 and 10000 samples (100 to 500 is typical).",
            )
        if self.signature_key is not None and not str(self.signature_key).strip():
            object.__setattr__(self, "signature_key", None)
        if self.calibration_path and self.calibration_source is CalibrationSource.NONE:
            object.__setattr__(
                self, "calibration_source", _guess_calibration_source(self.calibration_path)
            )
        if self.calibration_source is not CalibrationSource.NONE and not self.calibration_path:
            raise OptionsError(
                "A calibration source was chosen but no file was given.",
                "Give the file with --calibration-data, or leave calibration out.",
            )
        if self.keep_float_ops and self.preset is not Preset.INT8_FLOAT_IO:
            raise OptionsError(
                f"Keeping layers in float does not work with the {self.preset.value} preset.",
                "Use int8-float-io, which allows float fallback per layer.",
            )

    @property
    def uses_synthetic_calibration(self) -> bool:
        return self.preset.needs_calibration and not self.calibration_path

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["preset"] = self.preset.value
        d["calibration_source"] = self.calibration_source.value
        d["input_shapes"] = {n: list(s) for n, s in self.input_shapes}
        d["image_range"] = list(self.image_range)
        d["keep_float_ops"] = list(self.keep_float_ops)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConversionOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise OptionsError(
                "Unknown option(s): " + ", ".join(sorted(unknown)) + ".",
                "Remove them; known options are: " + ", ".join(sorted(known)) + ".",
            )
        kw = dict(d)
        shapes = kw.get("input_shapes") or ()
        if isinstance(shapes, dict):
            shapes = tuple((k, tuple(v)) for k, v in shapes.items())
        kw["input_shapes"] = tuple((n, tuple(s)) for n, s in shapes)
        if "image_range" in kw:
            kw["image_range"] = tuple(kw["image_range"])
        if "keep_float_ops" in kw:
            kw["keep_float_ops"] = tuple(kw["keep_float_ops"])
        return cls(**kw)

    def key(self) -> str:
        """A stable content key (calibration file identified by path only; the
        caller mixes in the calibration file's hash)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _guess_calibration_source(path: str) -> CalibrationSource:
    low = path.lower().rstrip("/")
    if low.endswith((".npz", ".npy")):
        return CalibrationSource.ARRAYS
    name = low.rsplit("/", 1)[-1]
    if low.endswith((".zip", ".tar", ".tar.gz", ".tgz")) or "." not in name:
        return CalibrationSource.IMAGES
    raise OptionsError(
        f"Calibration data {path.rsplit('/', 1)[-1]!r} is not a format TFLite Studio reads.",
        "Give a .npz (one array per input, keyed by input name), a .npy (one input), "
        "or a folder or .zip of images.",
    )
