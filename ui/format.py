"""Numbers and names in plain words."""

from __future__ import annotations

import time

from core.model.naming import download_name, model_stem
from core.units import human_bytes

__all__ = ["human_bytes", "human_seconds", "model_stem", "download_name", "ago", "md", "code"]


def human_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 90:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s"


def ago(ts: float | None) -> str:
    if not ts:
        return "–"
    d = max(0.0, time.time() - ts)
    if d < 60:
        return f"{int(d)} s ago"
    if d < 3600:
        return f"{int(d // 60)} min ago"
    if d < 86400:
        return f"{int(d // 3600)} h ago"
    return f"{int(d // 86400)} days ago"


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$&")


def md(text: object) -> str:
    """Any text shown inside Markdown, as data: every character Markdown,
    Streamlit's ``:color[..]`` / ``:icon:`` directives or LaTeX (``$``) would
    act on is escaped, so a tensor named ``![x](http://…)`` stays words."""
    s = str(text if text is not None else "")
    # GFM turns bare "http://…", "www.…" and "a@b.c" into links even when every
    # character is escaped: a zero-width space keeps them plain words.
    for pattern, cut in (("://", ":\u200b//"), ("www.", "www\u200b."), ("@", "@\u200b")):
        s = s.replace(pattern, cut)
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in s).replace("\n", " ")


def code(text: object) -> str:
    """Text as an inline code span that no backtick inside can close early."""
    s = str(text if text is not None else "").replace("\n", " ")
    longest = run = 0
    for c in s:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    return f"{fence} {s} {fence}" if s.startswith("`") or s.endswith("`") else f"{fence}{s}{fence}"
