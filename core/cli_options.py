"""Converter options shared by every command that converts (CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from core.errors import OptionsError
from core.options import ConversionOptions, Preset, parse_input_shape

__all__ = ["convert_options", "PRESET_IDS"]

PRESET_IDS = [p.value for p in Preset]


def _options(
    preset: str,
    select_tf_ops: bool,
    allow_custom_ops: bool,
    signature: str | None,
    input_shape: tuple[str, ...],
    calibration_data: str | None,
    calibration_samples: int,
    image_range: str,
    keep_float: tuple[str, ...] = (),
) -> ConversionOptions:
    try:
        lo, hi = (float(v) for v in image_range.split(","))
    except ValueError:
        raise OptionsError(
            f"Cannot read --image-range {image_range!r}.", "Write it as LOW,HIGH, e.g. 0,1."
        ) from None
    if calibration_data and not Path(calibration_data).exists():
        raise OptionsError(
            f"Calibration data {calibration_data} was not found.", "Check the path."
        )
    return ConversionOptions(
        preset=Preset(preset),
        select_tf_ops=select_tf_ops,
        allow_custom_ops=allow_custom_ops,
        signature_key=signature,
        input_shapes=tuple(parse_input_shape(s) for s in input_shape),
        calibration_path=calibration_data,
        calibration_samples=calibration_samples,
        image_range=(lo, hi),
        keep_float_ops=tuple(keep_float),
    )


def convert_options(f: Any) -> Any:
    """The converter options, shared by every command that converts."""
    decorators = [
        click.option("--preset", type=click.Choice(PRESET_IDS), default="float32",
                     show_default=True, help="Quantization preset."),
        click.option("--select-tf-ops", is_flag=True,
                     help="Let TensorFlow ops without a builtin run via the Flex delegate."),
        click.option("--allow-custom-ops", is_flag=True,
                     help="Keep unknown ops as custom ops (you implement them)."),
        click.option("--signature", metavar="KEY", default=None,
                     help="Signature to convert (default: serving_default or the only one)."),
        click.option("--input-shape", metavar="NAME=D1,D2,...", multiple=True,
                     help="Fix an input's dynamic dimensions; repeat per input."),
        click.option("--calibration-data", metavar="FILE", default=None,
                     help=".npz/.npy (keys = input names) or a folder/zip of images."),
        click.option("--calibration-samples", type=int, default=100, show_default=True),
        click.option("--image-range", default="0,1", show_default=True,
                     help="Scale calibration images to LOW,HIGH."),
        click.option("--keep-float", metavar="LAYER", multiple=True,
                     help="With int8-float-io: keep this layer in float (repeat; names from "
                          "`tflite-studio layers`)."),
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


