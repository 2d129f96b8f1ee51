"""The web's own words for what the engine says in the command line's.

The engine's messages are written for every caller, so their hints name CLI
flags (``--input-shape``, ``--select-tf-ops``). On a page each fix names the
control to use instead: ``web_error`` rewrites an error by the code in its
``details`` (``fix``), ``web_text`` rewrites any remaining flag, and
``cause_of`` groups warnings and verdict reasons by their cause so a page
says each cause once. No Streamlit here: tests call these directly.

The rewritten text still quotes the model (op and tensor names), so it is
shown with ``web_md``: everything escaped as data (``ui.format.md``), and only
the names of the app's own controls, marked while rewriting, in bold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from core.errors import StudioError
from core.model.naming import option_words as naming_option_words
from ui.format import md

__all__ = [
    "CONTROLS",
    "bold",
    "web_text",
    "web_md",
    "web_error",
    "cause_of",
    "option_words",
    "shape_lines",
    "DYNAMIC",
    "SYNTHETIC",
    "FLEX",
    "SIGNATURES",
]

# causes of warnings and verdict reasons (``cause_of``)
DYNAMIC = "dynamic_shapes"
SYNTHETIC = "synthetic_calibration"
FLEX = "select_tf_ops"
SIGNATURES = "signatures"

_ON, _OFF = "\x03", "\x04"  # marks the app's own words to show in bold


def bold(text: str) -> str:
    """Mark the name of a control or button: bold on a page, plain elsewhere."""
    return _ON + text + _OFF


# where each option lives in the app
CONTROLS = {
    "select_tf_ops": f"the {bold('Select TF ops')} switch (Convert → Advanced options)",
    "allow_custom_ops": f"the {bold('Allow custom ops')} switch (Convert → Advanced options)",
    "input_shape": f"the {bold('Input shapes')} field (Convert → Advanced options)",
    "signature": f"the {bold('Signature')} field (Convert → Advanced options)",
    "calibration_data": f"the {bold('Calibration data')} upload (Convert → Advanced options)",
    "calibration_samples": f"the {bold('Calibration samples')} field (Convert → Advanced options)",
    "image_range": f"the {bold('Image range')} fields (Convert → Advanced options)",
    "keep_float": bold("Re-convert keeping the worst layers in float") + " (Compare)",
}
_EXAMPLE = r"(?:\s+([\w./:-]+=[\w,.…]+))"  # NAME=D1,D2,... after --input-shape

# (pattern, replacement), applied in order; the last one catches any flag left
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"\s*\(in the app: [^)]*\)", ""),
        (r"\s*\(or `?tflite-studio [a-z]+`?\)", ""),
        (r"`?tflite-studio [a-z]+`?", "the app"),
        (r"\s*\(--(select-tf-ops|allow-custom-ops)\)", ""),
        (r"--input-shape names", "The input shapes name"),
        (r"--input-shape" + _EXAMPLE, CONTROLS["input_shape"] + r", e.g. \1"),
        (r"--input-shape", CONTROLS["input_shape"]),
        (r"--select-tf-ops", CONTROLS["select_tf_ops"]),
        (r"--allow-custom-ops", CONTROLS["allow_custom_ops"]),
        (r"--signature( KEY)?", CONTROLS["signature"]),
        (r"--calibration-data", CONTROLS["calibration_data"]),
        (r"--calibration-samples", CONTROLS["calibration_samples"]),
        (r"--image-range", CONTROLS["image_range"]),
        (r"--keep-float( LAYER)?", CONTROLS["keep_float"]),
        (r"`?--([a-z][a-z-]*)`?(\s+\d+)?", r"the \1 setting"),
    )
)

# hints of the compatibility rules (``core/model/data/op_rules.json``), in the app's words
_RULE_HINTS: tuple[tuple[str, str], ...] = (
    (
        "fixed input shapes",
        f"Fix the input shapes: the {bold('Fix the input shapes')} button, or "
        + CONTROLS["input_shape"]
        + ", then convert again.",
    ),
    (
        "fixed batch size",
        f"Fix the input shapes: the {bold('Fix the input shapes')} button, or "
        + CONTROLS["input_shape"]
        + ", then convert again.",
    ),
    (
        "full-integer post-training quantization",
        f"Convert with the {bold('Integer only (int8 in/out)')} preset and real calibration data.",
    ),
    (
        "tensorflow-lite-select-tf-ops",
        "Ship the Flex delegate with the app (tensorflow-lite-select-tf-ops on Android and "
        f"iOS), or convert without {bold('Select TF ops')}.",
    ),
    (
        "OpResolver",
        f"Register the op's kernel in the app, or convert without {bold('Allow custom ops')}.",
    ),
)

_CAUSE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (DYNAMIC, ("dynamic dimension", "dynamic shape", "static shape", "sizes must be constant")),
    (SYNTHETIC, ("random synthetic", "calibrating on random", "random data", "random inputs")),
    (FLEX, ("select tf ops are enabled", "flex delegate")),
    (SIGNATURES, ("signatures; converted",)),
)


def _rewrite(text: object, hint: bool = False) -> str:
    s = str(text or "")
    if hint:  # a compatibility rule's fix, said the app's way
        for needle, words in _RULE_HINTS:
            if needle in s:
                return words
    for pattern, repl in _REWRITES:
        s = pattern.sub(repl, s)
    return s


def web_text(text: object, *, hint: bool = False) -> str:
    """``text`` with every command-line flag replaced by the app's control
    (plain text); ``hint``: the text is a fix (a rule's hint may be replaced whole)."""
    return _rewrite(text, hint).replace(_ON, "").replace(_OFF, "")


def web_md(text: object, *, hint: bool = False) -> str:
    """``web_text`` as Markdown: all of it escaped as data, the app's control names bold."""
    return md(_rewrite(text, hint)).replace(_ON, "**").replace(_OFF, "**")


def _fix_hint(err: StudioError) -> str | None:
    """The hint of an error with a known fix code, in the app's words."""
    fix = (err.details or {}).get("fix")
    if fix == "select_tf_ops":
        return (
            f"Press {bold('Retry with Select TF ops')} below (or switch on "
            + CONTROLS["select_tf_ops"]
            + "). The app on the device then needs the Flex delegate, which adds several MB."
        )
    if fix == "allow_custom_ops":
        return (
            f"Press {bold('Retry allowing custom ops')} below (or switch on "
            + CONTROLS["allow_custom_ops"]
            + "); your app must then implement and register each of these ops."
        )
    if fix == "input_shape":
        return (
            f"Fix the input shapes: press {bold('Fix the input shapes')} below (or type them "
            "in "
            + CONTROLS["input_shape"]
            + "), then convert again."
            + (
                " Or switch on Select TF ops to keep the TensorFlow loop."
                if "recurrent" in err.message
                else ""
            )
        )
    if fix == "calibration_data":
        return (
            _rewrite(err.hint, hint=True)
            + " Change the file in "
            + CONTROLS["calibration_data"]
            + "."
        )
    if (err.details or {}).get("signature_keys"):
        return "Choose the signature to convert below (or in " + CONTROLS["signature"] + ")."
    return None


def web_error(err: StudioError) -> StudioError:
    """The same error (type, phase, details) with its message and hint in the app's
    words (show them with ``web_md``)."""
    hint = _fix_hint(err) or _rewrite(err.hint, hint=True)
    return StudioError.from_dict({**err.to_dict(), "message": _rewrite(err.message), "hint": hint})


def cause_of(text: object) -> str:
    """The cause a warning or a verdict reason speaks of (``DYNAMIC``, …), or ``other``."""
    low = str(text or "").lower()
    for cause, needles in _CAUSE_WORDS:
        if any(n in low for n in needles):
            return cause
    return "other"


def option_words(options: Mapping[str, Any] | None) -> list[str]:
    """The options besides the preset that change the result, in words (the
    signature too, which a page names but a file name does not)."""
    out = naming_option_words(options)
    if (options or {}).get("signature_key"):
        out.append(f"signature {(options or {})['signature_key']}")
    return out


def shape_lines(shapes: Mapping[str, Iterable[int]]) -> str:
    """``{"ids": (1, 32)}`` -> ``ids=1,32`` (one input per line, as the field takes them)."""
    return "\n".join(f"{n}=" + ",".join(str(int(d)) for d in s) for n, s in shapes.items())
