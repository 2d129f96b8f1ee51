"""Converter options declared once for every CLI command that converts
(convert, submit, evaluate, layers, sweep)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from core.errors import OptionsError
from core.options import PRESET_IDS, ConversionOptions, Preset, parse_input_shape

if TYPE_CHECKING:  # the command line starts fast: the engine loads when a command runs
    from core.pipeline.isolation import RunContext

__all__ = ["PRESET_IDS", "convert_options", "source_options", "options_from_kw", "run_context"]


def run_context(timeout: float | None = None, *, quiet: bool = False) -> RunContext:
    """How the CLI runs worker tasks: the server's limits (``--timeout`` wins)
    and progress lines on stderr."""
    from core.pipeline.isolation import RunContext, WorkerLimits
    from core.server.settings import load_settings, sandbox_for, sandbox_warning

    settings = load_settings()
    limits = WorkerLimits.from_settings(settings, timeout)
    say = None if quiet else (lambda m: click.echo(f"  {m}…", err=True))
    warning = sandbox_warning(settings)
    if warning and not settings.login_required:  # a shared setup refuses in the task instead
        click.echo(f"warning: {warning}", err=True)
    return RunContext(limits=limits, on_progress=say, sandbox=sandbox_for(settings))


# Options about the model and its calibration data; every converting command takes them.
_SOURCE = [
    click.option(
        "--select-tf-ops",
        is_flag=True,
        help="Let TensorFlow ops without a builtin run via the Flex delegate.",
    ),
    click.option(
        "--allow-custom-ops",
        is_flag=True,
        help="Keep unknown ops as custom ops (you implement them).",
    ),
    click.option(
        "--signature",
        metavar="KEY",
        default=None,
        help="Signature to convert (default: serving_default or the only one).",
    ),
    click.option(
        "--input-shape",
        metavar="NAME=D1,D2,...",
        multiple=True,
        help="Fix an input's dynamic dimensions; repeat per input.",
    ),
    click.option(
        "--calibration-data",
        metavar="FILE",
        default=None,
        help=".npz/.npy (keys = input names) or a folder/zip of images.",
    ),
    click.option("--calibration-samples", type=int, default=100, show_default=True),
    click.option(
        "--image-range", default="0,1", show_default=True, help="Scale images to LOW,HIGH."
    ),
]

_PRESET_AND_LAYERS = [
    click.option(
        "--preset",
        type=click.Choice(list(PRESET_IDS)),
        default="float32",
        show_default=True,
        help="Quantization preset.",
    ),
    click.option(
        "--keep-float",
        metavar="LAYER",
        multiple=True,
        help="With int8-float-io: keep this layer in float (repeat; names from "
        "`tflite-studio layers`).",
    ),
    click.option(
        "--sparsity",
        is_flag=True,
        help="Store mostly-zero weights sparse (the converter's EXPERIMENTAL_SPARSITY).",
    ),
]


def _apply(decorators: list[Callable[[Any], Any]], f: Any) -> Any:
    for d in reversed(decorators):
        f = d(f)
    return f


def source_options(f: Any) -> Any:
    """Model and calibration options, without a preset (sweeps pick presets)."""
    return _apply(_SOURCE, f)


def convert_options(f: Any) -> Any:
    """Everything one conversion takes: the source options plus preset and kept layers."""
    return _apply(_PRESET_AND_LAYERS + _SOURCE, f)


def options_from_kw(kw: dict[str, Any], preset: str | None = None) -> ConversionOptions:
    """Build validated ConversionOptions from parsed click options."""
    try:
        lo, hi = (float(v) for v in str(kw["image_range"]).split(","))
    except ValueError:
        raise OptionsError(
            f"Cannot read --image-range {kw['image_range']!r}.", "Write it as LOW,HIGH, e.g. 0,1."
        ) from None
    cal = kw.get("calibration_data")
    if cal and not Path(cal).exists():
        raise OptionsError(f"Calibration data {cal} was not found.", "Check the path.")
    return ConversionOptions(
        preset=Preset(preset or kw.get("preset") or "float32"),
        select_tf_ops=bool(kw["select_tf_ops"]),
        allow_custom_ops=bool(kw["allow_custom_ops"]),
        signature_key=kw["signature"],
        input_shapes=tuple(parse_input_shape(s) for s in kw["input_shape"]),
        calibration_path=str(Path(cal).resolve()) if cal else None,
        calibration_samples=int(kw["calibration_samples"]),
        image_range=(lo, hi),
        keep_float_ops=tuple(kw.get("keep_float") or ()),
        sparsity=bool(kw.get("sparsity")),
    )
