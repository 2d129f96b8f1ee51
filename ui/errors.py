"""The one place where errors become words on a page.

- ``show_error(err)``: a StudioError (or its dict form) as a plain sentence,
  the fix, and the phase in words; never a traceback.
- ``on_script_error(exc)``: the handler for ``st.App(on_script_error=...)``;
  uncaught exceptions in pages, callbacks and fragments become a plain message
  (the traceback goes to the server log only).
- ``run_page(page)``: runs a navigation page inside the same handler, so the
  message is the same under ``streamlit run studio.py`` and in AppTest.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from core.errors import StudioError
from ui.words import web_error, web_md

__all__ = ["PHASE_WORDS", "REFUSED", "show_error", "on_script_error", "run_page", "guard"]

log = logging.getLogger("tflite_studio.ui")

PHASE_WORDS = {
    "options": "checking the options",
    "unpack": "unpacking the upload",
    "load": "loading the model",
    "convert": "converting",
    "calibrate": "reading the calibration data",
    "quantize": "quantizing",
    "inspect": "reading the .tflite file",
    "evaluate": "measuring accuracy or speed",
    "deploy": "building the deploy kit",
    "job": "running the job",
}

# a limit refused the submission: the job never ran (``details["code"]``)
REFUSED = {"too_many_jobs", "queue_full", "too_large"}

F = TypeVar("F", bound=Callable[..., Any])


def _as_error(err: StudioError | dict[str, Any]) -> StudioError:
    return err if isinstance(err, StudioError) else StudioError.from_dict(err)


def show_error(err: StudioError | dict[str, Any], *, title: str | None = None) -> None:
    """Render a StudioError: what went wrong, what to do, where it failed; in
    the app's words (``ui.words``: controls, not command-line flags)."""
    e = web_error(_as_error(err))
    phase = PHASE_WORDS.get(e.phase.value, e.phase.value)
    if (e.details or {}).get("code") in REFUSED:
        head = "Not submitted: the server refused this job."
    else:
        head = title or f"Failed while {phase}."
    # messages quote names from the upload (ops, tensors, files): data, not markup
    body = f"**{web_md(head)}** {web_md(e.message)}"
    if e.hint:
        body += f"\n\n**What to do:** {web_md(e.hint)}"
    st.error(body, icon=":material/error:")


def _unexpected(exc: BaseException) -> None:
    ref = uuid.uuid4().hex[:8]
    log.error("page error %s", ref, exc_info=exc)
    st.error(
        "**Something went wrong on this page.** Reload the page and try again; if it "
        f"happens again, tell the server's admin and quote reference `{ref}`.",
        icon=":material/error:",
    )


def on_script_error(exc: Exception) -> bool:
    """``st.App(on_script_error=...)``: a plain message instead of a traceback."""
    try:
        if isinstance(exc, StudioError):
            show_error(exc)
            log.info("page error: %s", exc)
        else:
            _unexpected(exc)
    except Exception:
        log.exception("could not show an error")
        return False
    return True


def run_page(page: Any) -> None:
    """Run a ``st.navigation`` page; errors become a plain message."""
    try:
        page.run()
    except Exception as exc:  # noqa: BLE001  (st.stop/st.rerun are BaseException)
        on_script_error(exc)


def guard(fn: F) -> F:
    """Wrap a fragment body or callback: errors become a plain message there."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            on_script_error(exc)
            return None

    return wrapped  # type: ignore[return-value]
