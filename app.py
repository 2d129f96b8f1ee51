"""Entry point: ``streamlit run app.py`` (``make run``).

One server and one port for everything: the Streamlit pages (``studio.py``),
the HTTP API, artifact downloads and the embedded Netron viewer. Login is
enforced for all of them in one middleware. The lifespan starts the job
workers, so the app's own start command runs its queue.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import streamlit as st

from core.settings import load_settings


@asynccontextmanager
async def lifespan(app: Any):  # type: ignore[no-untyped-def]
    settings = load_settings()
    consumer = None
    if settings.embedded_workers:
        from core.jobs import start_consumer

        consumer = start_consumer(settings)
    try:
        yield {"settings": settings}
    finally:
        if consumer is not None:
            consumer.stop()


def _build() -> st.App:
    from core.api import api_routes
    from core.auth import auth_middleware, login_routes
    from ui.netron import netron_routes

    settings = load_settings()
    return st.App(
        "studio.py",
        routes=[*login_routes(settings), *api_routes(settings), *netron_routes(settings)],
        middleware=auth_middleware(settings),
        lifespan=lifespan,
    )


app = _build()
