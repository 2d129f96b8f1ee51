"""Entry point: ``streamlit run app.py`` (``make run``).

One server and one port for everything: the Streamlit pages (``studio.py``),
the HTTP API, artifact downloads and the embedded Netron viewer. Login is
enforced for all of them in one middleware. The lifespan starts the job
workers, so the app's own start command runs its queue.

``streamlit run`` finds the app by reading this file for a literal
module-level ``app = st.App(...)``: keep that line as it is.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core.errors import StudioError
from core.server.api import api_routes
from core.server.auth import auth_middleware
from core.server.login import login_routes
from core.server.netron import netron_routes
from core.server.settings import load_settings, require_sandbox
from core.server.tuning import enable_tcp_nodelay, trust_forwarded_for_only_from
from ui.errors import on_script_error

# studio.py sits next to pages/: without this, a fresh server's first session
# runs the page file it is asked for on its own, its file names as navigation
# ("studio, compare, convert…"), instead of studio.py and its st.navigation.
PagesManager.uses_pages_directory = False
enable_tcp_nodelay()  # Streamlit 1.67 binds without TCP_NODELAY: +40 ms per kept-alive request
settings = load_settings()
trust_forwarded_for_only_from(settings.proxies)  # uvicorn would believe any local client
try:
    require_sandbox(settings)  # a shared server never runs models unsandboxed
except StudioError as e:
    sys.exit(f"TFLite Studio will not start: {e.message}\nFix: {e.hint}")


@asynccontextmanager
async def lifespan(app: Any):  # type: ignore[no-untyped-def]
    consumer = None
    if settings.embedded_workers:
        from core.server.jobs import start_consumer

        consumer = start_consumer(settings)
    try:
        yield {"settings": settings}
    finally:
        if consumer is not None:
            consumer.stop()  # running jobs go back to the queue


app = st.App(
    "studio.py",
    routes=[*login_routes(settings), *api_routes(settings), *netron_routes(settings)],
    middleware=auth_middleware(settings),
    lifespan=lifespan,
    on_script_error=on_script_error,
)
