"""``/login`` and ``/logout``: the pages a browser signs in and out with.

Logout is a POST (a link or an image cannot sign anyone out) and revokes the
session on the server; the cookie is HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import html
from typing import Any

from core.server.auth import (
    COOKIE_NAME,
    SCOPE_KEY,
    check_password,
    client_address,
    same_origin,
)
from core.server.limiter import login_limiter
from core.server.records import safe_user
from core.server.sessions import make_session_cookie, revoke_session
from core.server.settings import Settings, load_settings

__all__ = ["login_routes"]

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


_LOGOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign out · TFLite Studio</title></head>
<body style="font-family:system-ui,sans-serif;display:flex;min-height:100vh;
align-items:center;justify-content:center">
<form method="post" action="/logout"><p>Sign out of TFLite Studio on this browser?</p>
<button type="submit">Sign out</button></form></body></html>"""


_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class _Login:
    """The two routes' handlers, for one server's settings."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def page(self, next_: str, error: str = "", name: str = "", status: int = 200) -> Any:
        from starlette.responses import HTMLResponse

        intro = (
            "This server is shared by your team. Sign in with your name and the team password."
            if self.s.login_required
            else "Give your name so History shows which jobs are yours."
        )
        body = _PAGE.format(
            intro=intro,
            error=f'<p class="err" role="alert">{html.escape(error)}</p>' if error else "",
            name=html.escape(name),
            next=html.escape(next_),
            password=_PASSWORD_FIELD if self.s.login_required else "",
        )
        return HTMLResponse(body, status_code=status, headers=_PAGE_HEADERS)

    async def login(self, request: Any) -> Any:
        from starlette.responses import PlainTextResponse, RedirectResponse

        s = self.s
        if request.method == "GET":
            nxt = _safe_next(request.query_params.get("next"))
            if s.login_required and request.scope.get(SCOPE_KEY):
                return RedirectResponse(nxt, status_code=303)
            return self.page(nxt)
        if not same_origin(request.headers):
            return PlainTextResponse("Cross-site sign-in refused.", status_code=403)
        try:
            form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
        except Exception:  # noqa: BLE001  (bad form encoding)
            return PlainTextResponse("Bad form.", status_code=400)
        nxt = _safe_next(str(form.get("next") or "/"))
        name = safe_user(str(form.get("name") or ""))
        if not str(form.get("name") or "").strip():
            return self.page(nxt, "Give your name.", status=400)
        refused = self._check(request, form, nxt, name)
        if refused is not None:
            return refused
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(
            COOKIE_NAME,
            make_session_cookie(s, name),
            max_age=s.session_days * 86400,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _check(self, request: Any, form: Any, nxt: str, name: str) -> Any:
        """The page to show instead of signing in (locked out, wrong password), or None."""
        if not self.s.login_required:
            return None
        addr = client_address(request.scope)
        wait = login_limiter.blocked(addr)
        if wait:
            return self.page(nxt, f"Too many wrong passwords. Wait {wait:.0f} s.", name, status=429)
        if not check_password(self.s, str(form.get("password") or "")):
            login_limiter.fail(addr)
            return self.page(nxt, "Wrong password.", name, status=401)
        login_limiter.reset(addr)
        return None

    async def logout(self, request: Any) -> Any:
        from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse

        if request.method == "GET":
            return HTMLResponse(_LOGOUT, headers=_PAGE_HEADERS)
        if not same_origin(request.headers):
            return PlainTextResponse("Cross-site sign-out refused.", status_code=403)
        revoke_session(self.s, request.cookies.get(COOKIE_NAME))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
        resp.headers["Cache-Control"] = "no-store"
        return resp


def login_routes(settings: Settings | None = None) -> list[Any]:
    """``/login`` (GET form, POST check) and ``/logout`` (GET asks, POST signs out)."""
    from starlette.routing import Route

    h = _Login(settings or load_settings())
    return [
        Route("/login", h.login, methods=["GET", "POST"]),
        Route("/logout", h.logout, methods=["GET", "POST"]),
    ]
