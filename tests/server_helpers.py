"""Helpers for the job, API and login tests: a real ``streamlit run app.py``
server in a subprocess, a tiny model to convert, and waiting without sleeping
longer than needed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The entry point under test; another launcher can be tried with this variable.
APP = Path(os.environ.get("TFLITE_STUDIO_TEST_APP") or ROOT / "app.py")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    pred: Callable[[], Any], timeout: float = 60.0, every: float = 0.1, what: str = "condition"
) -> Any:
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def tiny_model(cache: Path) -> Path:
    """A small SavedModel zip: the digits sample when it is there, else one
    built in code (tests/helpers/models.py) and zipped."""
    sample = ROOT / "sample_models" / "digits_classifier.zip"
    if sample.is_file():
        return sample
    from helpers.models import build_tiny_models

    out = build_tiny_models(cache / "tiny")
    z = cache / "tiny_sm.zip"
    if not z.exists():
        with zipfile.ZipFile(z, "w") as zf:
            for p in sorted((out / "tiny_sm").rglob("*")):
                zf.write(p, "tiny_sm/" + p.relative_to(out / "tiny_sm").as_posix())
    return z


class Server:
    def __init__(self, base: str, proc: subprocess.Popen[bytes], log: Path, data: Path) -> None:
        self.base, self.proc, self.log, self.data = base, proc, log, data

    def url(self, path: str) -> str:
        return self.base + path

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@contextmanager
def studio_server(data: Path, password: str = "", **env: str) -> Iterator[Server]:
    """``streamlit run app.py`` on a free port with its own data folder;
    stopped with SIGTERM (then SIGKILL) at the end."""
    import requests

    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"server-{port}.log"
    child_env = {
        **os.environ,
        "TFLITE_STUDIO_DATA_DIR": str(data),
        "TFLITE_STUDIO_PASSWORD": password,
        "TFLITE_STUDIO_EMBEDDED_WORKERS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        **{f"TFLITE_STUDIO_{k.upper()}": str(v) for k, v in env.items()},
    }
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", proc, log, data)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError("server exited:\n" + server.log_tail())
        try:
            return requests.get(server.url("/_stcore/health"), timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(healthy, timeout=90, every=0.25, what="the server's /_stcore/health")
        yield server
    finally:
        stop_server(server)


def stop_server(server: Server, timeout: float = 30.0) -> None:
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    # The server's own children (warm TensorFlow processes) end with it; a
    # leftover one in its process group is stopped here.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def copy_model(src: Path, dest_dir: Path, name: str | None = None) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / (name or src.name)
    shutil.copyfile(src, dest)
    return dest
