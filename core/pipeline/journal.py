"""A worker's journal: one JSON object per line, written as it goes, so the
caller knows how far a process got when it died."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_journal"]


def read_journal(path: Path, last: int = 1000) -> list[dict[str, Any]]:
    """The journal's last ``last`` entries; a torn or foreign line is skipped."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines[-last:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out
