"""When this worker process started and when its task was sent (for the
breakdown a benchmark prints: how long a task waited for its worker)."""

from __future__ import annotations

import time

__all__ = ["STARTED", "sent_at", "waited"]

STARTED = time.time()  # imported first by the entry point
_sent: list[float] = []


def sent_at(t: float | None) -> None:
    if t is not None:
        _sent[:] = [float(t)]


def waited() -> float | None:
    """Seconds from the caller sending the task to the worker starting it
    (a warm worker's import, still running when the task came, is in here)."""
    return round(time.time() - _sent[0], 4) if _sent else None
