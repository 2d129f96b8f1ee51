"""Login for a shared server: one team password, a name per person.

When a password is configured (``TFLITE_STUDIO_PASSWORD``, or ``password`` in
the ``[tflite_studio]`` section of ``.streamlit/secrets.toml``) nothing on the
server answers without it: Streamlit's pages, its websocket (``/_stcore/stream``)
and every other ``/_stcore/*`` route, ``/media`` downloads, static files, the
Netron viewer and the HTTP API. Only ``/login``, ``/logout`` and
``/_stcore/health`` are open.

Ways in:

- a browser: ``/login`` asks for a name and the password and sets a signed,
  HttpOnly, SameSite=Lax session cookie carrying the name (History shows who);
- an API client: ``Authorization: Bearer <password>`` (the name comes from an
  ``X-TFLite-Studio-User`` header, else ``api``) or HTTP Basic ``name:password``.

Refused: an HTML page request is redirected to ``/login``, ``/api`` gets a 401
JSON error, a websocket is closed, anything else gets a plain 401. Repeated
wrong passwords from one address are slowed down (429 for a few minutes).

Without a password nothing is enforced; the name is still read from a cookie
set at ``/login`` or from HTTP Basic, else it is ``local``.

Pages get the name with ``user_from_headers(st.context.headers,
st.context.cookies)``; API handlers with ``request_user(request)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from core.server.http import error_response
from core.server.records import safe_user
from core.server.settings import Settings, load_settings

__all__ = [
    "COOKIE_NAME",
    "USER_HEADER",
    "PUBLIC_PATHS",
    "auth_middleware",
    "login_routes",
    "user_from_headers",
    "request_user",
    "make_session_cookie",
    "read_session_cookie",
    "check_password",
    "login_limiter",
    "MAX_FAILS",
]

COOKIE_NAME = "tflite_studio_session"
USER_HEADER = "x-tflite-studio-user"
SCOPE_KEY = "tflite_studio.user"
PUBLIC_PATHS = frozenset({"/login", "/logout", "/_stcore/health", "/favicon.ico"})
_SALT = "tflite-studio-login"
MAX_FAILS = 10  # wrong passwords per address ...
_FAIL_WINDOW_S = 300.0  # ... within this many seconds, then 429 until it passes

# ---------------------------------------------------------------- secrets and cookies

_secret_lock = threading.Lock()
_secrets: dict[Path, bytes] = {}


def _server_secret(settings: Settings) -> bytes:
    """A random key kept in the data folder (shared by every server on it),
    mixed with the password: changing the password signs everyone out."""
    path = Path(settings.data_dir) / "secret_key"
    with _secret_lock:
        key = _secrets.get(path)
        if key is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
            key = _secrets[path] = path.read_text().strip().encode()
    return hashlib.sha256(key + b"\0" + settings.password.encode()).digest()


def _serializer(settings: Settings) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(_server_secret(settings), salt=_SALT)


def make_session_cookie(settings: Settings, user: str) -> str:
    """The signed cookie value for ``user``."""
    return str(_serializer(settings).dumps({"u": safe_user(user)}))


def read_session_cookie(settings: Settings, value: str | None) -> str | None:
    """The user name in a valid, unexpired cookie value, else None."""
    if not value:
        return None
    from itsdangerous import BadSignature

    try:
        data = _serializer(settings).loads(value, max_age=settings.session_days * 86400)
    except (BadSignature, ValueError, TypeError):
        return None
    name = data.get("u") if isinstance(data, dict) else None
    return safe_user(name) if name else None


def check_password(settings: Settings, given: str | None) -> bool:
    if not settings.password:
        return True
    return hmac.compare_digest((given or "").encode(), settings.password.encode())


# ---------------------------------------------------------------- who is asking


def _cookies_from_header(raw: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001  (a malformed Cookie header is just no cookie)
        return {}
    return {k: m.value for k, m in jar.items()}


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers") or []:
        name = k.decode("latin-1").lower()
        val = v.decode("latin-1")
        out[name] = f"{out[name]}; {val}" if name == "cookie" and name in out else val
    return out


def _credentials(
    settings: Settings,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    check_header: bool = True,
) -> tuple[str | None, bool]:
    """(user, wrong_password_given)."""
    user = read_session_cookie(settings, cookies.get(COOKIE_NAME))
    if user:
        return user, False
    auth = headers.get("authorization", "") if check_header else ""
    scheme, _, value = auth.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        if check_password(settings, value.strip()):
            return safe_user(headers.get(USER_HEADER) or "api"), False
        return None, True
    if scheme == "basic" and value.strip():
        try:
            name, _, pw = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None, True
        if check_password(settings, pw):
            return safe_user(name or "api"), False
        return None, True
    return None, False


def user_from_headers(
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> str:
    """The signed-in name for a Streamlit page: pass ``st.context.headers``
    and ``st.context.cookies``. ``local`` when no login is configured and the
    person gave no name."""
    s = settings or load_settings()
    hdrs = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    jar = dict(cookies or {})
    if not jar and hdrs.get("cookie"):
        jar = _cookies_from_header(hdrs["cookie"])
    user, _ = _credentials(s, hdrs, jar)
    return user or "local"


def request_user(request: Any) -> str:
    """The name the middleware found for this request (``local`` without login)."""
    return str(request.scope.get(SCOPE_KEY) or "local")


class FailureLimiter:
    """Wrong passwords per client address, in a sliding window."""

    def __init__(self) -> None:
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, addr: str) -> float:
        """Seconds left to wait, or 0."""
        now = time.monotonic()
        with self._lock:
            q = self._fails.get(addr)
            if not q:
                return 0.0
            while q and now - q[0] > _FAIL_WINDOW_S:
                q.popleft()
            if len(q) >= MAX_FAILS:
                return _FAIL_WINDOW_S - (now - q[0])
            return 0.0

    def fail(self, addr: str) -> None:
        with self._lock:
            if len(self._fails) > 10_000:
                self._fails.clear()
            self._fails.setdefault(addr, deque(maxlen=MAX_FAILS)).append(time.monotonic())

    def reset(self, addr: str) -> None:
        with self._lock:
            self._fails.pop(addr, None)


login_limiter = FailureLimiter()  # one per process: the middleware and /login share it


def _client(scope: Mapping[str, Any]) -> str:
    c = scope.get("client")
    return str(c[0]) if c else "?"


# ---------------------------------------------------------------- middleware


class AuthMiddleware:
    """Pure ASGI: sees every HTTP request and websocket of the server."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        cookies = _cookies_from_header(headers.get("cookie", ""))
        path = scope.get("path", "")
        if not self.settings.login_required:
            user, _ = _credentials(self.settings, headers, cookies)
            scope[SCOPE_KEY] = user or "local"
            await self.app(scope, receive, send)
            return
        addr = _client(scope)
        # While an address is blocked, its Authorization header is not even checked.
        user, wrong = _credentials(
            self.settings, headers, cookies, check_header=not login_limiter.blocked(addr)
        )
        if wrong:
            login_limiter.fail(addr)
        if user:
            scope[SCOPE_KEY] = user
            await self.app(scope, receive, send)
            return
        if path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        await self._deny(scope, receive, send, headers, path, wrong, addr)

    async def _deny(
        self,
        scope: Any,
        receive: Any,
        send: Any,
        headers: Mapping[str, str],
        path: str,
        wrong: bool,
        addr: str,
    ) -> None:
        from starlette.responses import PlainTextResponse, RedirectResponse

        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        wait = login_limiter.blocked(addr)
        if path == "/api" or path.startswith("/api/"):
            if wait:
                resp: Any = error_response(
                    429,
                    "Too many wrong passwords from this address.",
                    f"Wait {wait:.0f} s, then try again.",
                    "auth",
                    headers={"Retry-After": str(int(wait) + 1)},
                )
            else:
                resp = error_response(
                    401,
                    "Wrong password." if wrong else "Login required.",
                    "Send 'Authorization: Bearer <team password>' or HTTP Basic 'name:password'.",
                    "auth",
                    headers={"WWW-Authenticate": 'Bearer realm="tflite-studio"'},
                )
        elif scope.get("method") in ("GET", "HEAD") and "text/html" in headers.get("accept", ""):
            target = path + (
                f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else ""
            )
            resp = RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
        else:
            resp = PlainTextResponse("Login required.", status_code=401)
        resp.headers["Cache-Control"] = "no-store"
        await resp(scope, receive, send)


def auth_middleware(settings: Settings | None = None) -> list[Any]:
    """Middleware for ``st.App(middleware=...)``; it wraps Streamlit's own
    routes too. Always installed: without a password it only reads names."""
    from starlette.middleware import Middleware

    return [Middleware(AuthMiddleware, settings=settings or load_settings())]


# ---------------------------------------------------------------- /login, /logout

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · TFLite Studio</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#fafafa;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;color:#222}}
form{{background:#fff;padding:2rem 2.2rem;border-radius:10px;box-shadow:0 2px 14px #0002;
width:min(22rem,90vw)}}
h1{{font-size:1.3rem;margin:0 0 .3rem}} p{{margin:.2rem 0 1rem;color:#555;font-size:.92rem}}
label{{display:block;font-size:.9rem;margin:.8rem 0 .25rem}}
input{{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #bbb;border-radius:6px;
font-size:1rem}}
button{{margin-top:1.2rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#FF6F00;
color:#fff;font-size:1rem;cursor:pointer}}
.err{{color:#b00020;background:#fdecee;padding:.5rem .7rem;border-radius:6px}}
</style></head><body>
<form method="post" action="/login">
<h1>TFLite Studio</h1>
<p>{intro}</p>
{error}
<label for="name">Your name</label>
<input id="name" name="name" autocomplete="username" maxlength="64" required value="{name}"
 autofocus>
{password}
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form></body></html>"""

_PASSWORD_FIELD = """<label for="password">Team password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>"""


def _safe_next(target: str | None) -> str:
    """Only a path on this server (no ``//host``, no scheme): no open redirect."""
    t = (target or "/").strip()
    if not t.startswith("/") or t.startswith("//") or "\\" in t or any(ord(c) < 32 for c in t):
        return "/"
    if t.startswith(("/login", "/logout")):
        return "/"
    return t


def login_routes(settings: Settings | None = None) -> list[Any]:
    """``/login`` (GET form, POST check) and ``/logout``."""
    from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
    from starlette.routing import Route

    s = settings or load_settings()
    page_headers = {
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }

    def page(next_: str, error: str = "", name: str = "", status: int = 200) -> Any:
        intro = (
            "This server is shared by your team. Sign in with your name and the team password."
            if s.login_required
            else "Give your name so History shows which jobs are yours."
        )
        body = _PAGE.format(
            intro=intro,
            error=f'<p class="err" role="alert">{html.escape(error)}</p>' if error else "",
            name=html.escape(name),
            next=html.escape(next_),
            password=_PASSWORD_FIELD if s.login_required else "",
        )
        return HTMLResponse(body, status_code=status, headers=page_headers)

    async def login(request: Any) -> Any:
        addr = _client(request.scope)
        if request.method == "GET":
            nxt = _safe_next(request.query_params.get("next"))
            if s.login_required and request.scope.get(SCOPE_KEY):
                return RedirectResponse(nxt, status_code=303)
            return page(nxt)
        try:
            form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
        except Exception:  # noqa: BLE001  (bad form encoding)
            return PlainTextResponse("Bad form.", status_code=400)
        nxt = _safe_next(str(form.get("next") or "/"))
        name = safe_user(str(form.get("name") or ""))
        if not str(form.get("name") or "").strip():
            return page(nxt, "Give your name.", status=400)
        if s.login_required:
            wait = login_limiter.blocked(addr)
            if wait:
                return page(nxt, f"Too many wrong passwords. Wait {wait:.0f} s.", name, status=429)
            if not check_password(s, str(form.get("password") or "")):
                login_limiter.fail(addr)
                return page(nxt, "Wrong password.", name, status=401)
            login_limiter.reset(addr)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(
            COOKIE_NAME,
            make_session_cookie(s, name),
            max_age=s.session_days * 86400,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def logout(request: Any) -> Any:
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
    ]
