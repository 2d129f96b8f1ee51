"""Before and around a LiteRT run in the worker: why this server's runtime
cannot run a model (a damaged file, what LiteRT's loader would refuse, Select
TF ops without a Flex delegate), and LiteRT's own errors in plain words (the
file is untrusted, so it is read here, not in the server)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from core.errors import EvaluateError, Phase, TFLiteFormatError
from core.model.reader import OpKind, read_model
from core.model.runtime_words import explain_runtime_error, first_lines
from core.model.validate import validate
from core.worker.capture import CaptureFd

__all__ = ["runtime_blocker", "raise_if_blocked", "litert_errors"]


def runtime_blocker(tflite: str | os.PathLike[str] | bytes) -> EvaluateError | None:
    """Why this server's LiteRT runtime cannot run the model, or None. A file
    that is damaged, or that LiteRT's loader would refuse, raises
    ``TFLiteFormatError`` naming what is wrong (never handed to LiteRT, which
    may crash on it).

    ``ai_edge_litert`` ships no Flex delegate, so Select TF ops cannot run
    here. Custom ops are tried: LiteRT registers some (``Mfcc``,
    ``AudioSpectrogram``, ``TFLite_Detection_PostProcess``), and the load says
    which ones it lacks (``litert_errors``)."""
    info = read_model(tflite, check_zeros=False)
    fatal = [f for f in validate(info) if f.fatal]
    if fatal:
        more = f" (and {len(fatal) - 1} more)" if len(fatal) > 1 else ""
        raise TFLiteFormatError(
            f"This file is damaged or not a valid model, and LiteRT would refuse to load it: "
            f"{fatal[0].message}{more}",
            "Export the model again with a current converter; Inspect lists every finding.",
            details={"reason": "invalid_model", "findings": [f.message for f in fatal[:20]]},
        )
    flex = sorted({op.name for op in info.operators if op.kind is OpKind.SELECT_TF})
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
    return None


def raise_if_blocked(*paths: str | os.PathLike[str]) -> None:
    for p in paths:
        blocker = runtime_blocker(p)
        if blocker is not None:
            raise blocker


@contextlib.contextmanager
def litert_errors(path: Path, doing: str, phase: Phase = Phase.EVALUATE) -> Iterator[None]:
    """LiteRT's errors while ``doing`` (load, allocate, run) as an
    ``EvaluateError`` with its cause and fix: LiteRT prints its reason on
    stderr and raises only "failed", so both are read."""
    cap = CaptureFd(2)
    try:
        with cap:
            yield
    except (RuntimeError, ValueError) as e:
        said = first_lines(cap.text + "\n" + str(e), 3, 400)
        words = explain_runtime_error(said)
        raise EvaluateError(
            f"LiteRT could not {doing} {path.name}: {words.cause} (LiteRT said: {said})",
            words.fix,
            phase=phase,
            details={
                "reason": words.kind,
                "runtime_error": said,
                "cannot_run_here": not words.model_fault,
            },
        ) from None
