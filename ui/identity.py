"""Who is using this browser tab (for job ownership and per-user limits)."""

from __future__ import annotations

import streamlit as st

__all__ = ["current_user"]


def current_user() -> str:
    """The signed-in name when a login is configured, else ``local``."""
    try:
        from core.server import auth
    except ImportError:
        return "local"
    fn = getattr(auth, "user_from_headers", None)
    if fn is None:
        return "local"
    try:
        return str(fn(st.context.headers, st.context.cookies) or "local")
    except Exception:  # noqa: BLE001  (no login information: a local user)
        return "local"
