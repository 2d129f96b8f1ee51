"""What a LiteRT error or crash means, in plain words: its cause, the fix,
and whether the model is at fault or only this server (an op the app
registers, the Flex delegate). Used by the verdicts and by every task that
runs a ``.tflite`` (evaluation, latency, calibration)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RuntimeWords", "explain_runtime_error", "explain_crash", "first_lines"]

_SIGNALS = {
    "SIGABRT": "aborted (it detected memory corruption or a failed internal check)",
    "SIGSEGV": "crashed (it read memory outside the model: a segmentation fault)",
    "SIGBUS": "crashed (a bus error while reading the model)",
    "SIGFPE": "crashed (an arithmetic error, such as a division by zero)",
    "SIGILL": "crashed (an instruction this CPU does not have)",
}


@dataclass(frozen=True, slots=True)
class RuntimeWords:
    cause: str  # a sentence: what went wrong
    fix: str  # a sentence: what to do
    kind: str  # damaged | custom_op | flex | variable_tensors | index_range | op_version | ...
    model_fault: bool = True  # False: the model is fine, this server cannot run it


_SOURCE_POS = re.compile(r"\[[\w./-]+\.(cc|h|cpp):\d+\]\s*")
_NOISE = ("ERROR: [litert/", "See instructions:")


def first_lines(text: str, n: int = 3, limit: int = 400) -> str:
    """The runtime's message without its noise (source positions, the C++
    call chain, links to instructions, blank lines)."""
    lines: list[str] = []
    for raw in str(text).replace("└", "\n").splitlines():
        if raw.strip().startswith(_NOISE):
            continue
        ln = _SOURCE_POS.sub("", raw.strip().removeprefix("ERROR:").strip()).strip()
        if ln and ln != "ERROR:" and ln not in lines:
            lines.append(ln)
    return " ".join(lines[:n])[:limit]


_RULES: tuple[tuple[re.Pattern[str], RuntimeWords], ...] = (
    (
        re.compile(
            r"unresolved custom op|Didn't find custom op|custom op.*not.*(found|registered)"
        ),
        RuntimeWords(
            "The model uses a custom op that LiteRT does not ship; its kernel lives in the app "
            "that runs the model.",
            "Register the custom op's kernel in your app (an op resolver), or convert without it.",
            "custom_op",
            model_fault=False,
        ),
    ),
    (
        re.compile(r"Select TensorFlow op|Regular TensorFlow ops are not supported|Flex delegate"),
        RuntimeWords(
            "The model uses Select TF ops, which need the Flex delegate; this server's LiteRT "
            "has none.",
            "On the device, link the Flex delegate (tensorflow-lite-select-tf-ops), or change "
            "the model so it needs only builtin ops.",
            "flex",
            model_fault=False,
        ),
    ),
    (
        re.compile(r"Variable tensors? (are )?not (yet )?supported", re.I),
        RuntimeWords(
            "LiteRT's CompiledModel API does not take models with variable tensors (the state "
            "of a stateful LSTM or RNN).",
            "Run this model with LiteRT's Interpreter API, which does, or convert it without "
            "stateful layers.",
            "variable_tensors",
            model_fault=False,
        ),
    ),
    (
        re.compile(r"gather index out of bounds|indices\[.*\] = .* is not in|out of bounds", re.I),
        RuntimeWords(
            "An index input holds ids outside the table it looks up (for example token ids "
            "beyond the vocabulary).",
            "Give ids within the model's vocabulary; for calibration, give real samples.",
            "index_range",
        ),
    ),
    (
        re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)' version '(\d+)'"),
        RuntimeWords(
            "The model needs a newer version of an op than this LiteRT has.",
            "Convert with the TensorFlow version matching the device's LiteRT, or update "
            "LiteRT on the device.",
            "op_version",
            model_fault=False,
        ),
    ),
    (
        re.compile(
            r"quantized_dimension|must be in range|num_scales|buffer.*size|bytes required|"
            r"Invalid tensor index|Invalid buffer|corrupt|Model provided has model identifier|"
            r"could not be parsed|failed to verify|The model is not a valid Flatbuffer",
            re.I,
        ),
        RuntimeWords(
            "This file is damaged or not a valid model: LiteRT refuses what the file says.",
            "Export the model again with a current converter; the report's validation section "
            "names each tensor at fault.",
            "damaged",
        ),
    ),
    (
        re.compile(
            r"Dimension mismatch|Cannot set tensor|got shape|dims\[\d+\]|shape .* expected", re.I
        ),
        RuntimeWords(
            "The inputs do not have the shape the model takes.",
            "Convert again with input shapes that match your data (the Input shapes option), "
            "or reshape the data.",
            "shape",
        ),
    ),
    (
        re.compile(r"AllocateTensors|Failed to allocate|allocate tensors", re.I),
        RuntimeWords(
            "LiteRT loaded the model but could not prepare its tensors (a shape or type its "
            "kernels reject).",
            "Fix the input shapes when converting (every dimension static), or try another preset.",
            "allocate",
        ),
    ),
)


def explain_runtime_error(message: str) -> RuntimeWords:
    """The cause and fix of a LiteRT error message."""
    for pattern, words in _RULES:
        if pattern.search(message):
            return words
    return RuntimeWords(
        "LiteRT could not run the model: " + first_lines(message, 1, 200),
        "Inspect the model: its report says which op and runtime fail.",
        "other",
    )


def explain_crash(signal: str, stage: str | None, runtime: str = "LiteRT") -> RuntimeWords:
    """A runtime that ended its process. On load, the file is the suspect."""
    what = _SIGNALS.get(signal, f"crashed ({signal})")
    if stage in (None, "load"):
        return RuntimeWords(
            f"{runtime} {what} while loading the file: this file is damaged or not a valid model.",
            "Export the model again; the report's validation section names what is wrong "
            "where it can.",
            "damaged",
        )
    verb = "preparing" if stage == "allocate" else "running"
    return RuntimeWords(
        f"{runtime} {what} while {verb} this model.",
        "The model trips a bug in this runtime or holds invalid data; try another preset or "
        "runtime, and check the validation section of the report.",
        "crash",
    )
