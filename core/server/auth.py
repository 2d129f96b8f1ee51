"""Login for a shared server: one team password, a name per person.

When a password is configured (``TFLITE_STUDIO_PASSWORD``, or ``password`` in
the ``[tflite_studio]`` section of ``.streamlit/secrets.toml``) nothing on the
server answers without it: Streamlit's pages, its websocket (``/_stcore/stream``)
and every other ``/_stcore/*`` route, ``/media`` downloads, static files, the
Netron viewer and the HTTP API. Only ``/login``, ``/logout`` and
``/_stcore/health`` are open.

Ways in:

- a browser: ``/login`` asks for a name and the password and sets a signed,
  HttpOnly, SameSite=Strict session cookie carrying the name (History shows
  who); ``/logout`` (a POST) revokes it on the server;
- an API client: ``Authorization: Bearer <password>`` (the name comes from an
  ``X-TFLite-Studio-User`` header, else ``api``) or HTTP Basic ``name:password``.

Refused: an HTML page request is redirected to ``/login``, ``/api`` gets a 401
JSON error, a websocket is closed, anything else gets a plain 401. Repeated
wrong passwords are slowed down (``core.server.limiter``: 429 for a few
minutes). The client address is the peer's, unless the peer is one of the
``trusted_proxies`` (uvicorn then reads ``X-Forwarded-For``).

Cross-site requests: a browser's write (POST, PUT, PATCH, DELETE) that carries
no ``Authorization`` header, and a browser's websocket, must come from this
server's own pages (``Sec-Fetch-Site: same-origin``, else an ``Origin`` equal to
the host), so another site cannot act with a signed-in person's cookie. Clients
that are not browsers send neither header and are not affected.

Without a password nothing is enforced; the name is still read from a cookie
set at ``/login`` or from HTTP Basic, else it is ``local``.

Pages get the name with ``user_from_headers(st.context.headers,
st.context.cookies)``; API handlers with ``request_user(request)``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

from core.server.http import error_response
from core.server.limiter import MAX_FAILS, login_limiter
from core.server.records import safe_user
from core.server.sessions import make_session_cookie, read_session_cookie
from core.server.settings import Settings, load_settings

__all__ = [
    "COOKIE_NAME",
    "USER_HEADER",
    "PUBLIC_PATHS",
    "auth_middleware",
    "user_from_headers",
    "request_user",
    "make_session_cookie",
    "read_session_cookie",
    "check_password",
    "login_limiter",
    "MAX_FAILS",
    "same_origin",
    "client_address",
]

COOKIE_NAME = "tflite_studio_session"
USER_HEADER = "x-tflite-studio-user"
SCOPE_KEY = "tflite_studio.user"
PUBLIC_PATHS = frozenset({"/login", "/logout", "/_stcore/health", "/favicon.ico"})
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_HOP = (
    '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={url}">'
    '<title>TFLite Studio</title><a href="{url}">Continue to TFLite Studio</a>'
)


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


def client_address(scope: Mapping[str, Any]) -> str:
    """The peer's address (uvicorn replaced it only for a trusted proxy)."""
    c = scope.get("client")
    return str(c[0]) if c else "?"


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a request may act for a browser session: it comes from this
    server's own pages, or from no browser at all (a browser always says
    where a cross-site request comes from; curl and scripts send neither
    header, and need credentials of their own anyway)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc.lower() == (headers.get("host") or "").lower()


def _cross_site(scope: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    """A cookie-borne write or a websocket not sent by our own pages."""
    if scope["type"] == "websocket":
        return not same_origin(headers)
    if scope.get("method") not in _UNSAFE or headers.get("authorization"):
        return False
    if scope.get("path") in ("/login", "/logout"):
        return False  # those routes answer it themselves, with a page
    return not same_origin(headers)


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
        if _cross_site(scope, headers):
            await self._refuse_cross_site(scope, receive, send, path)
            return
        if not self.settings.login_required:
            user, _ = _credentials(self.settings, headers, cookies)
            scope[SCOPE_KEY] = user or "local"
            await self.app(scope, receive, send)
            return
        addr = client_address(scope)
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

    async def _refuse_cross_site(self, scope: Any, receive: Any, send: Any, path: str) -> None:
        from starlette.responses import PlainTextResponse

        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if path == "/api" or path.startswith("/api/"):
            resp: Any = error_response(
                403,
                "Cross-site request refused.",
                "Send the request from TFLite Studio's own pages, or as an API client with "
                "'Authorization: Bearer <team password>' or HTTP Basic.",
                "auth",
            )
        else:
            resp = PlainTextResponse("Cross-site request refused.", status_code=403)
        resp.headers["Cache-Control"] = "no-store"
        await resp(scope, receive, send)

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
        from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse

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
            login = "/login?" + urlencode({"next": target})
            if headers.get("sec-fetch-site") == "cross-site":
                # A link from another site: the SameSite=Strict cookie was held
                # back. One same-site hop brings it (signed in: /login forwards).
                resp = HTMLResponse(_HOP.format(url=html.escape(login)), status_code=200)
            else:
                resp = RedirectResponse(login, status_code=303)
        else:
            resp = PlainTextResponse("Login required.", status_code=401)
        resp.headers["Cache-Control"] = "no-store"
        await resp(scope, receive, send)


def auth_middleware(settings: Settings | None = None) -> list[Any]:
    """Middleware for ``st.App(middleware=...)``; it wraps Streamlit's own
    routes too. Always installed: without a password it only reads names."""
    from starlette.middleware import Middleware

    return [Middleware(AuthMiddleware, settings=settings or load_settings())]
