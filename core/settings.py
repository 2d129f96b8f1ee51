"""Server settings, declared once: name, default, help. Read from the
environment (``TFLITE_STUDIO_<NAME>``) so the app, the CLI and workers on other
machines agree."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["Settings", "SETTING_HELP", "load_settings"]

SETTING_HELP = {
    "data_dir": "Folder for the job database, the queue and artifacts (shared by all workers).",
    "workers": "Conversions run at once on this machine.",
    "embedded_workers": "Start the workers inside the app process (1) or not (0).",
    "redis_url": "Redis URL to share the queue across machines (empty: SQLite, one machine).",
    "max_upload_mb": "Largest model upload accepted.",
    "max_jobs_per_user": "Queued plus running jobs one person may have at once.",
    "max_queue": "Queued jobs the server accepts before refusing new ones.",
    "retention_days": "`tflite-studio cleanup` removes artifacts of jobs older than this.",
    "password": "Shared team password; empty means no login (then bind to localhost).",
    "timeout_s": "Wall-clock seconds one job may run.",
    "memory_mb": "Address-space cap of one job's process, in MiB.",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".data")
    workers: int = 2
    embedded_workers: bool = True
    redis_url: str = ""
    max_upload_mb: int = 1024
    max_jobs_per_user: int = 4
    max_queue: int = 50
    retention_days: int = 30
    password: str = ""
    timeout_s: float = 900.0
    memory_mb: int = 6144


def load_settings() -> Settings:
    kw: dict[str, object] = {}
    for f in fields(Settings):
        raw = os.environ.get(f"TFLITE_STUDIO_{f.name.upper()}")
        if raw is None:
            continue
        if f.type in ("int", int):
            kw[f.name] = int(raw)
        elif f.type in ("float", float):
            kw[f.name] = float(raw)
        elif f.type in ("bool", bool):
            kw[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
        elif f.type in ("Path", Path):
            kw[f.name] = Path(raw)
        else:
            kw[f.name] = raw
    s = Settings(**kw)  # type: ignore[arg-type]
    return Settings(**{**s.__dict__, "data_dir": s.data_dir.resolve()})
