"""Why this server's LiteRT runtime cannot run a model, checked in the
worker before any run (the file is untrusted, so it is read here, not in the
server)."""

from __future__ import annotations

import os

from core.errors import EvaluateError, Phase, TFLiteFormatError
from core.model.reader import OpKind, read_model

__all__ = ["runtime_blocker", "raise_if_blocked"]


def runtime_blocker(tflite: str | os.PathLike[str] | bytes) -> EvaluateError | None:
    """Why this server's LiteRT runtime cannot run the model, or None.

    ``ai_edge_litert`` ships no Flex delegate (and TensorFlow 2.21's own
    interpreter links none either), so Select TF ops cannot run here; custom
    ops need their implementation registered. The error says so plainly."""
    try:
        info = read_model(tflite, check_zeros=False)
    except TFLiteFormatError:
        return None  # let the runtime itself judge the file (it says what is wrong)
    flex = sorted({op.name for op in info.operators if op.kind is OpKind.SELECT_TF})
    custom = sorted({op.name for op in info.operators if op.kind is OpKind.CUSTOM})
    if flex:
        return EvaluateError(
            "This model uses Select TF ops ("
            + ", ".join(flex[:6])
            + ("…" if len(flex) > 6 else "")
            + "), which cannot run here: the LiteRT "
            "runtime on this server has no Flex delegate, so its accuracy and speed "
            "cannot be measured.",
            "On the device, link the Flex delegate (tensorflow-lite-select-tf-ops) and "
            "measure there; or change the model so it needs only builtin ops.",
            phase=Phase.EVALUATE,
            details={"reason": "select_tf_ops", "ops": flex, "cannot_run_here": True},
        )
    if custom:
        return EvaluateError(
            "This model uses custom ops (" + ", ".join(custom[:6]) + "), which cannot "
            "run here: their implementation lives in your app, not in this server's runtime.",
            "Measure accuracy and speed on the device where the custom ops are registered.",
            phase=Phase.EVALUATE,
            details={"reason": "custom_ops", "ops": custom, "cannot_run_here": True},
        )
    return None


def raise_if_blocked(*paths: str | os.PathLike[str]) -> None:
    for p in paths:
        blocker = runtime_blocker(p)
        if blocker is not None:
            raise blocker
