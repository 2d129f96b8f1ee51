"""The ``tflite-studio`` command line, one module per group of commands.

It drives the pipeline (local work) and the server (queue, store, HTTP client)
and may import every room below it, never the web pages.
"""

from __future__ import annotations

from core.cli.app import cli, main

__all__ = ["cli", "main"]
