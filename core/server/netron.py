"""Netron, served by the app's own server and port.

``netron_routes(settings)`` returns Starlette routes that serve

- ``/netron/``                         the viewer (the ``netron`` pip package's static files),
- ``/netron/models/<job id>/<name>.tflite`` the ``.tflite`` that job produced.

The viewer is patched at serve time so that it never leaves the app's origin:
no Google Analytics, no cookie-consent dialog (and no ``ipinfo.io`` lookup
behind it), no "please update" dialog (Netron shows a blocking one once its
build is 180 days old), no outside links. A Content-Security-Policy header on
every response backs this up: the browser refuses any request to another host
even if a future Netron adds one the patches do not know.

The Streamlit frame that shows it is ``ui.netron.show_graph``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import mimetypes
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core.errors import StudioError

__all__ = [
    "NETRON_PREFIX",
    "CSP",
    "netron_routes",
    "model_url",
    "viewer_url",
    "patched_asset",
    "asset_path",
    "unpatched_targets",
]

log = logging.getLogger("tflite_studio.netron")

NETRON_PREFIX = "/netron"

# Everything the viewer needs is on this origin; `data:`/`blob:` are Netron's own
# in-page images and workers.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' data: blob:; "
    "worker-src 'self' blob:; frame-src 'none'; object-src 'none'; base-uri 'self'; "
    "form-action 'none'; frame-ancestors 'self'"
)

_JOB_RE = re.compile(r"^[0-9a-f]{16,32}$")
_ASSET_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}$")
_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,120}\.tflite$")

# (file, old, new): each must match exactly once; a Netron upgrade that moves the
# code shows up as a logged warning and a failing test, and the CSP still holds.
_PATCHES: tuple[tuple[str, str, str], ...] = (
    # The blocking "Please update to the newest version." dialog.
    ("browser.js", "        await age();\n", "        /* tflite-studio: no update dialog */\n"),
    # The cookie-consent dialog and its ipinfo.io lookup.
    (
        "browser.js",
        "        await consent();\n",
        "        /* tflite-studio: no consent dialog */\n",
    ),
    # Google Analytics (page views, errors, events).
    ("browser.js", "        await telemetry();\n", "        /* tflite-studio: no telemetry */\n"),
    # Belt and braces: telemetry never starts a session, and never sends a beacon.
    (
        "base.js",
        "    async start(measurement_id, client_id, session) {\n",
        "    async start(measurement_id, client_id, session) {\n        return;\n",
    ),
    (
        "base.js",
        "this._navigator.sendBeacon(url, body);",
        "/* tflite-studio: no beacon */ void url; void body;",
    ),
)

# The toolbar and the menu button get a strip of their own, so neither covers
# nodes of the graph (the app shows the viewer in a frame of the window's height).
_LAYOUT_CSS = (
    "<style>/* tflite-studio: toolbar beside the graph, not over it */\n"
    ".default .target { position: absolute; left: 0; right: 0; top: 36px; bottom: 48px; "
    "width: auto; height: auto; }\n"
    ".default .toolbar { left: 0; right: 0; bottom: 0; height: 48px; padding-left: 10px; "
    "background: #ffffff; border-top: 1px solid #e5e5e5; }\n"
    "@media (prefers-color-scheme: dark) { .default .toolbar { background: #1e1e1e; "
    "border-top-color: #333333; } }\n"
    "</style>\n"
)
_EXTERNAL_HREF_RE = re.compile(r'href="https?://[^"]*"(\s+target="[^"]*")?')
_DATE_META_RE = re.compile(r'<meta name="date" content="[^"]*">')


def _netron_dir() -> Path:
    import netron  # the pip package: static files next to its __init__

    return Path(netron.__file__).resolve().parent


def _patch_text(name: str, text: str) -> str:
    for file, old, new in _PATCHES:
        if file != name:
            continue
        if text.count(old) != 1:
            log.warning("netron %s: patch target not found once: %r", name, old.strip())
            continue
        text = text.replace(old, new)
    if name == "index.html":
        # Outside links become inert; the "date" the update check reads is today.
        text = _EXTERNAL_HREF_RE.sub('href="#"', text)
        today = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        text = _DATE_META_RE.sub(f'<meta name="date" content="{today}">', text)
        text = text.replace("</head>", _LAYOUT_CSS + "</head>", 1)
    return text


def unpatched_targets() -> list[str]:
    """Patch targets missing from the installed Netron (empty when all apply)."""
    root = _netron_dir()
    missing = []
    for file, old, _new in _PATCHES:
        if (root / file).read_text(encoding="utf-8").count(old) != 1:
            missing.append(f"{file}: {old.strip()}")
    return missing


_PATCHED_FILES = frozenset({f for f, _o, _n in _PATCHES} | {"index.html"})


def asset_path(name: str) -> Path | None:
    """The viewer file ``name`` inside the netron package, or None."""
    if not _ASSET_RE.match(name) or ".." in name:
        return None
    root = _netron_dir()
    path = root / name
    if path.suffix in (".py", ".pyc") or not path.is_file() or path.parent != root:
        return None
    return path


def _media_type(name: str) -> str:
    if name.endswith(".js"):
        return "text/javascript; charset=utf-8"
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return (
        media + "; charset=utf-8" if media.startswith("text/") or media.endswith("json") else media
    )


def patched_asset(name: str) -> bytes | None:
    """The patched bytes of a viewer file that needs patching, else None."""
    if name not in _PATCHED_FILES:
        return None
    if name == "index.html":  # small; its "date" is today's, so not cached
        path = asset_path(name)
        return (
            None
            if path is None
            else _patch_text(name, path.read_text(encoding="utf-8")).encode("utf-8")
        )
    return _patched_cached(name)


@lru_cache(maxsize=8)
def _patched_cached(name: str) -> bytes | None:
    path = asset_path(name)
    if path is None:
        return None
    return _patch_text(name, path.read_text(encoding="utf-8")).encode("utf-8")


def model_url(job_id: str, name: str = "model.tflite") -> str:
    """URL of a job's ``.tflite`` for the viewer (same origin, absolute path)."""
    return f"{NETRON_PREFIX}/models/{job_id}/{quote(safe_model_name(name))}"


def viewer_url(job_id: str, name: str = "model.tflite") -> str:
    return f"{NETRON_PREFIX}/index.html?url={quote(model_url(job_id, name), safe='/')}"


def safe_model_name(name: str) -> str:
    """A file name Netron shows in its title: letters, digits, ``._-``, ``.tflite``."""
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "_", Path(name or "model").name)
    stem = re.sub(r"\.tflite$", "", stem).strip("._-") or "model"
    return stem[:100] + ".tflite"


def netron_routes(settings: Any) -> list[Any]:
    """Starlette routes for the viewer and the models it opens."""
    from starlette.responses import FileResponse, RedirectResponse, Response
    from starlette.routing import Route

    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    def _not_found() -> Response:
        return Response("Not found.", status_code=404, media_type="text/plain", headers=headers)

    async def index(request: Any) -> Response:
        return RedirectResponse(
            f"{NETRON_PREFIX}/index.html" + (f"?{request.url.query}" if request.url.query else "")
        )

    async def asset(request: Any) -> Response:
        name = request.path_params["name"]
        path = asset_path(name)
        if path is None:
            return _not_found()
        media = _media_type(name)
        if name in _PATCHED_FILES:
            body = patched_asset(name)
            return Response(
                body, media_type=media, headers={**headers, "Cache-Control": "no-cache"}
            )
        return FileResponse(
            path, media_type=media, headers={**headers, "Cache-Control": "public, max-age=86400"}
        )

    async def model(request: Any) -> Response:
        # Only the .tflite a job produced, named by the job: never any file
        # of the store picked by its hash.
        job_id = request.path_params["job_id"]
        name = request.path_params["name"]
        if not _JOB_RE.match(job_id) or not _MODEL_NAME_RE.match(name):
            return _not_found()
        from anyio import to_thread

        from core.server import jobs

        st = jobs.store(settings)
        try:
            job = await to_thread.run_sync(st.get, job_id)
            sha = job.output_sha
            if not sha or job.purged_at is not None:
                return _not_found()
            path = await to_thread.run_sync(st.verified_artifact, sha)
        except StudioError:
            return _not_found()
        with open(path, "rb") as f:
            if f.read(8)[4:8] != b"TFL3":
                return _not_found()
        return FileResponse(
            path,
            media_type="application/octet-stream",
            headers={**headers, "Cache-Control": "private, max-age=86400, immutable"},
        )

    return [
        Route(NETRON_PREFIX, index, methods=["GET"]),
        Route(f"{NETRON_PREFIX}/", index, methods=["GET"]),
        Route(f"{NETRON_PREFIX}/models/{{job_id}}/{{name}}", model, methods=["GET", "HEAD"]),
        Route(f"{NETRON_PREFIX}/{{name}}", asset, methods=["GET", "HEAD"]),
    ]
