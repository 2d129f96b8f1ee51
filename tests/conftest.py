"""Shared fixtures: an isolated data folder, a real job consumer, free ports.

Keep this file small and general; fixtures used by one file live in that file.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # pages and ui/ are imported from the repo root
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def studio_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings for one test: a fresh data folder, no embedded workers, no login.

    The environment is set too, so pages and subprocesses see the same store."""
    from core.server.settings import load_settings

    data = tmp_path / "data"
    monkeypatch.setenv("TFLITE_STUDIO_DATA_DIR", str(data))
    monkeypatch.setenv("TFLITE_STUDIO_EMBEDDED_WORKERS", "0")
    monkeypatch.setenv("TFLITE_STUDIO_PASSWORD", "")
    return load_settings()


@pytest.fixture(scope="module")
def studio_env_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Like ``studio_env`` but shared by one test module (for slow consumers)."""
    from core.server.settings import load_settings

    data = tmp_path_factory.mktemp("studio") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TFLITE_STUDIO_DATA_DIR", str(data))
        mp.setenv("TFLITE_STUDIO_EMBEDDED_WORKERS", "0")
        mp.setenv("TFLITE_STUDIO_PASSWORD", "")
        yield load_settings()


@pytest.fixture(scope="module")
def job_consumer(studio_env_module):
    """A real Huey consumer (one thread, no warm pool) on the module's store."""
    from core.server.jobs import start_consumer

    consumer = start_consumer(studio_env_module, workers=1, warm=False)
    try:
        yield consumer
    finally:
        consumer.stop()


def chromium_path() -> str | None:
    for p in (
        os.environ.get("TFLITE_STUDIO_CHROMIUM"),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
    ):
        if p and Path(p).is_file():
            return p
    return None


def shown(text: object) -> str:
    """Markdown source as a person reads it: the pages escape names from
    models (``md()``), so AppTest sees ``digits\\_classifier\\.zip``."""
    import re

    return re.sub(r"\\(.)", r"\1", str(text))
