"""The HTTP API's error body, shared by the API and the login middleware."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

__all__ = ["error_response"]


def error_response(
    http_status: int,
    message: str,
    hint: str = "",
    phase: str = "job",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """``{"error": {message, hint, phase}}`` with ``Cache-Control: no-store``."""
    body = {"error": {"message": message, "hint": hint, "phase": phase}, **extra}
    return JSONResponse(
        body, status_code=http_status, headers={"Cache-Control": "no-store", **(headers or {})}
    )
