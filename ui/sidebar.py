"""The sidebar's line about the shared server: how many jobs run and wait,
kept current (a fragment polling every 2 s) while any job is queued or running."""

from __future__ import annotations

import streamlit as st

__all__ = ["server_counts", "server_words", "show_server_line"]

_EVERY_S = 2.0


def server_counts() -> tuple[int, int] | None:
    """(running, waiting) jobs of everyone; None if the store is unreadable."""
    try:
        from core.server import jobs

        s = jobs.store()
        return s.count((jobs.JobStatus.RUNNING,)), s.count((jobs.JobStatus.QUEUED,))
    except Exception:  # noqa: BLE001  (a hint only; never block a page on it)
        return None


def server_words(running: int, waiting: int) -> str:
    if not running and not waiting:
        return "Server: idle."
    return f"Server: {running} job{'s' if running != 1 else ''} running, {waiting} waiting."


def show_server_line() -> None:
    counts = server_counts()
    if counts is None:
        return

    @st.fragment(run_every=_EVERY_S if sum(counts) else None)
    def _line() -> None:
        now = server_counts()
        if now is not None:
            st.caption(server_words(*now))

    _line()
