"""Browser sessions: a signed cookie per login, revocable.

The cookie carries the person's name and a random session id, signed with a
key kept in the data folder and mixed with the team password (changing the
password signs everyone out). Logging out revokes that session id on the
server, so a copied cookie stops working too; revocations are kept until the
cookie would have expired anyway.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from core.server.records import safe_user
from core.server.settings import Settings

__all__ = ["make_session_cookie", "read_session", "read_session_cookie", "revoke_session"]

_SALT = "tflite-studio-login"
_lock = threading.Lock()
_keys: dict[Path, bytes] = {}
_revoked: dict[Path, tuple[int, dict[str, float]]] = {}  # file -> (mtime_ns, sid -> expiry)


def _server_secret(settings: Settings) -> bytes:
    path = Path(settings.data_dir) / "secret_key"
    with _lock:
        key = _keys.get(path)
        if key is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
            key = _keys[path] = path.read_text().strip().encode()
    return hashlib.sha256(key + b"\0" + settings.password.encode()).digest()


def _serializer(settings: Settings) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(_server_secret(settings), salt=_SALT)


def _revocations_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "revoked_sessions.json"


def _revocations(settings: Settings) -> dict[str, float]:
    """Revoked session ids (re-read only when the file changed)."""
    path = _revocations_file(settings)
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    with _lock:
        hit = _revoked.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
    table = _load(path)
    with _lock:
        _revoked[path] = (mtime, table)
    return table


def make_session_cookie(settings: Settings, user: str) -> str:
    """The signed cookie value for a new session of ``user``."""
    return str(_serializer(settings).dumps({"u": safe_user(user), "s": secrets.token_hex(12)}))


def read_session(settings: Settings, value: str | None) -> tuple[str, str] | None:
    """(user, session id) of a valid, unexpired, unrevoked cookie value, else None."""
    if not value:
        return None
    from itsdangerous import BadSignature

    try:
        data = _serializer(settings).loads(value, max_age=settings.session_days * 86400)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not data.get("u") or not data.get("s"):
        return None
    sid = str(data["s"])
    if sid in _revocations(settings):
        return None
    return safe_user(str(data["u"])), sid


def read_session_cookie(settings: Settings, value: str | None) -> str | None:
    """The user name of a valid session cookie, else None."""
    found = read_session(settings, value)
    return found[0] if found else None


def revoke_session(settings: Settings, value: str | None) -> None:
    """Log this cookie's session out on the server (the browser drops it too)."""
    found = read_session(settings, value)
    if found is None:
        return
    path = _revocations_file(settings)
    now = time.time()
    with _lock:
        table = _load(path)
        table = {k: v for k, v in table.items() if v > now}  # expired ones need no entry
        table[found[1]] = now + settings.session_days * 86400
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(table, f)
        os.replace(tmp, path)
        _revoked.pop(path, None)


def _load(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
