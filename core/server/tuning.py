"""Small fixes to the web server the app runs on (no Streamlit import).

``enable_tcp_nodelay()``: Streamlit 1.67 binds its listening socket itself with
``socket.socket(family)`` (protocol number 0). asyncio turns Nagle's algorithm
off only for sockets whose protocol is ``IPPROTO_TCP``, so every accepted
connection keeps Nagle on; a response written in two parts (headers, then
body) then waits for the client's delayed ACK: about 40 ms added to every
request on a kept-alive connection (browsers' fetches, API clients with a
session). Measured on this server: 44 ms → 1–4 ms per status request. Call it
once at import of the app, before connections are accepted.

``trust_forwarded_for_only_from(proxies)``: uvicorn believes ``X-Forwarded-For``
from 127.0.0.1 by default, so any local client (or a proxy passing the header
through) could pose as any address and reset the login lockout. Streamlit
gives uvicorn the app by its import string, so uvicorn reads its
``FORWARDED_ALLOW_IPS`` setting before ``app.py`` runs; the proxy middleware
is built after, and that is where the setting is applied.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

__all__ = ["enable_tcp_nodelay", "trust_forwarded_for_only_from"]

_done = False


def enable_tcp_nodelay() -> None:
    """Turn on TCP_NODELAY for every TCP stream asyncio wraps in a transport."""
    global _done
    if _done:
        return
    from asyncio import base_events

    # A private asyncio helper without a type stub: reached through the module's namespace.
    namespace = vars(base_events)
    original: Callable[[socket.socket], None] = namespace["_set_nodelay"]

    def _set_nodelay(sock: socket.socket) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                original(sock)
        else:
            original(sock)

    namespace["_set_nodelay"] = _set_nodelay
    _done = True


def trust_forwarded_for_only_from(proxies: frozenset[str]) -> None:
    """Make uvicorn read ``X-Forwarded-For`` only from ``proxies`` (none: the
    peer address is always the client)."""
    import os

    from uvicorn import config as uvicorn_config
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    trusted = ",".join(sorted(proxies))
    os.environ["FORWARDED_ALLOW_IPS"] = trusted  # for a server configured after this

    class OnlyTrustedProxies(ProxyHeadersMiddleware):
        def __init__(self, app: Any, trusted_hosts: list[str] | str = "") -> None:
            super().__init__(app, trusted_hosts=trusted)

    vars(uvicorn_config)["ProxyHeadersMiddleware"] = OnlyTrustedProxies
