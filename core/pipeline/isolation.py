"""Run a worker task in a separate, limited process: the one way the
pipeline reaches ``core.worker`` (by the task's name, never by import).

The converter leaks memory across calls and can abort the process, and an
uploaded model is a program: so every task runs in its own process (one task
per process) with a wall-clock timeout, an address-space cap and a cap on the
size of files it writes. A crash fails that task with a plain message; the
caller goes on.

A *warm* worker has imported TensorFlow before its task arrives, which hides
the import time from the person waiting (see ``WarmPool``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar

from core.errors import (
    Cancelled,
    Phase,
    StudioError,
    WorkerCrashed,
    WorkerOutOfMemory,
    WorkerTimeout,
)
from core.serial import DataError, from_data
from core.tasks.requests import TaskRequest

__all__ = [
    "WorkerLimits",
    "RunContext",
    "CancelToken",
    "run_task",
    "WarmPool",
    "Cancelled",
    "work_folder",
    "check_cancel",
]

R = TypeVar("R")

RESULT_FILE = "result.json"
PROGRESS_FILE = "progress.jsonl"
LOG_FILE = "worker.log"
_POLL_S = 0.1


@dataclass(frozen=True)
class WorkerLimits:
    timeout_s: float = 900.0
    memory_bytes: int = 6 << 30  # address space; TensorFlow itself needs ~1.5 GiB
    file_bytes: int = 4 << 30  # largest single file the task may write

    @classmethod
    def from_settings(cls, s: _LimitSettings, timeout_s: float | None = None) -> WorkerLimits:
        """The per-task limits of the server's settings (``core.server.settings``)."""
        return cls(float(timeout_s or s.timeout_s), s.memory_mb << 20, s.file_mb << 20)


class _LimitSettings(Protocol):
    timeout_s: float
    memory_mb: int
    file_mb: int


class CancelToken(Protocol):
    """Anything with ``is_set()``: a ``threading.Event``, or a job's cancel flag."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class RunContext:
    """How a caller runs worker tasks: limits, an optional warm pool, where
    progress goes, what cancels, and who wants to know the worker's pid."""

    limits: WorkerLimits = WorkerLimits()
    pool: WarmPool | None = None
    on_progress: Callable[[str], None] | None = None
    cancel: CancelToken | None = None
    on_start: Callable[[int], None] | None = None

    def say(self, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(message)

    def without_pool(self) -> RunContext:
        return replace(self, pool=None)

    def quiet(self) -> RunContext:
        return replace(self, on_progress=None)


def check_cancel(ctx: RunContext, phase: Phase = Phase.EVALUATE) -> None:
    if ctx.cancel is not None and ctx.cancel.is_set():
        raise Cancelled("The job was cancelled.", "", phase=phase)


@contextlib.contextmanager
def work_folder(workdir: str | os.PathLike[str] | None, prefix: str) -> Iterator[Path]:
    """The caller's folder as given, or a temporary one removed afterwards."""
    if workdir is not None:
        yield Path(workdir).resolve()
        return
    wd = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    try:
        yield wd
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    env["PYTHONUNBUFFERED"] = "1"
    # The worker must find `core` even when run from a job folder.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _limit(limits: WorkerLimits) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()  # own process group: a timeout kills the whole tree
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _spawn(limits: WorkerLimits, log_path: Path, warm: bool) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115  (the child keeps it; closed in finally)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "core.worker"] + (["--warm"] if warm else []),
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            preexec_fn=_limit(limits),
            close_fds=True,
        )
    finally:
        log.close()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _log_tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _read_progress(path: Path, seen: int, on_progress: Callable[[str], None] | None) -> int:
    if on_progress is None or not path.exists():
        return seen
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines[seen:]:
        try:
            on_progress(str(json.loads(line).get("message", "")))
        except (ValueError, AttributeError):
            continue
    return len(lines)


def _failure(
    proc: subprocess.Popen[bytes], log: Path, limits: WorkerLimits, phase: Phase
) -> StudioError:
    rc = proc.returncode
    tail = _log_tail(log)
    details = {"log_tail": tail[-2000:], "exit_code": rc}
    oom_words = ("bad_alloc", "Cannot allocate memory", "MemoryError", "out of memory")
    if rc is not None and rc < 0:
        sig = -rc
        if sig == signal.SIGKILL:
            return WorkerOutOfMemory(
                "The worker process was killed (the server ran out of memory, or an admin "
                "stopped it).",
                "Try a smaller model or fewer calibration samples, then run it again.",
                phase=phase,
                details=details,
            )
        if any(w in tail for w in oom_words):
            return WorkerOutOfMemory(
                f"The task ran out of memory (limit {limits.memory_bytes >> 20} MiB).",
                "Use fewer calibration samples or a smaller model; the admin can raise "
                "TFLITE_STUDIO_MEMORY_MB.",
                phase=phase,
                details=details,
            )
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
        last = _last_meaningful_line(tail)
        return WorkerCrashed(
            f"TensorFlow crashed during {phase.value} ({name})."
            + (f" Last message: {last}" if last else ""),
            "This is a TensorFlow bug on this model. Try another preset, enable Select TF "
            "ops, or fix the input shapes; the server is unaffected.",
            phase=phase,
            details={**details, "signal": str(name)},
        )
    last = _last_meaningful_line(tail)
    return WorkerCrashed(
        f"The worker stopped without a result (exit code {rc})."
        + (f" Last message: {last}" if last else ""),
        "Try again; if it repeats, report the model to the admin.",
        phase=phase,
        details=details,
    )


def _last_meaningful_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line and not line.startswith(("W0000", "I0000", "WARNING: All log")):
            return line[:300]
    return ""


class WarmPool:
    """Keeps ``size`` processes that have already imported TensorFlow. Each
    takes exactly one task and exits; a fresh one is started to replace it."""

    def __init__(
        self, size: int = 1, limits: WorkerLimits | None = None, log_dir: Path | None = None
    ) -> None:
        self.size = size
        self.limits = limits or WorkerLimits()
        self.log_dir = Path(log_dir or Path.cwd() / ".worker-logs")
        self._lock = threading.Lock()
        self._idle: list[tuple[subprocess.Popen[bytes], Path]] = []
        self._n = 0

    def _start_one(self) -> None:
        self._n += 1
        log = self.log_dir / f"warm-{os.getpid()}-{self._n}.log"
        self._idle.append((_spawn(self.limits, log, warm=True), log))

    def fill(self) -> None:
        with self._lock:
            self._idle = [(p, log) for p, log in self._idle if p.poll() is None]
            while len(self._idle) < self.size:
                self._start_one()

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until every idle worker has TensorFlow imported (benchmarks, tests)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                logs = [log for _, log in self._idle]
            if logs and all(
                "tflite-studio-worker-ready" in _log_tail(log, 1 << 16) for log in logs
            ):
                return True
            time.sleep(0.1)
        return False

    def take(self) -> tuple[subprocess.Popen[bytes], Path] | None:
        with self._lock:
            while self._idle:
                proc, log = self._idle.pop(0)
                if proc.poll() is None:
                    return proc, log
        return None

    def close(self) -> None:
        with self._lock:
            for proc, _ in self._idle:
                _kill(proc)
            self._idle.clear()


def run_task(
    request: TaskRequest,
    result_type: type[R],
    *,
    workdir: str | os.PathLike[str],
    ctx: RunContext | None = None,
    phase: Phase | None = None,
) -> R:
    """Run ``request`` in a limited child process with ``workdir`` as its
    folder. Returns the task's result as ``result_type`` or raises the task's
    ``StudioError`` (a ``WorkerError`` when the process died)."""
    ctx = ctx or RunContext()
    phase = phase or request.PHASE
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    for name in (RESULT_FILE, PROGRESS_FILE):
        (wd / name).unlink(missing_ok=True)
    pool = ctx.pool
    limits = ctx.limits
    taken = pool.take() if pool is not None else None
    if taken is not None:
        proc, log = taken
    else:
        log = wd / LOG_FILE
        proc = _spawn(limits, log, warm=False)
    if pool is not None:
        threading.Thread(target=pool.fill, daemon=True).start()
    if ctx.on_start is not None:
        ctx.on_start(proc.pid)
    line = json.dumps(
        {
            "task": request.TASK,
            "request": request.to_dict(),
            "workdir": str(wd),
            "phase": phase.value,
        }
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(line.encode() + b"\n")
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    _wait(proc, wd, log, limits, ctx, phase)
    result_path = wd / RESULT_FILE
    if not result_path.exists():
        raise _failure(proc, log, limits, phase)
    try:
        body = json.loads(result_path.read_text())
    except ValueError:
        raise _failure(proc, log, limits, phase) from None
    if not isinstance(body, dict):
        raise _failure(proc, log, limits, phase)
    if not body.get("ok"):
        raise StudioError.from_dict(body.get("error") or {})
    try:
        return from_data(result_type, body.get("result"))
    except DataError as e:
        raise WorkerCrashed(
            f"The worker returned a result that does not fit ({e}).",
            "This is a bug in TFLite Studio, or the model tampered with its worker; "
            "the server is unaffected.",
            phase=phase,
        ) from None


def _wait(
    proc: subprocess.Popen[bytes],
    wd: Path,
    log: Path,
    limits: WorkerLimits,
    ctx: RunContext,
    phase: Phase,
) -> None:
    deadline = time.monotonic() + limits.timeout_s
    seen = 0
    try:
        while proc.poll() is None:
            seen = _read_progress(wd / PROGRESS_FILE, seen, ctx.on_progress)
            if ctx.cancel is not None and ctx.cancel.is_set():
                _kill(proc)
                raise Cancelled("The job was cancelled.", "", phase=phase)
            if time.monotonic() > deadline:
                _kill(proc)
                raise WorkerTimeout(
                    f"The task took longer than {limits.timeout_s:.0f} s and was stopped.",
                    "Try a smaller model or fewer calibration samples; the admin can raise "
                    "TFLITE_STUDIO_TIMEOUT_S.",
                    phase=phase,
                    details={"log_tail": _log_tail(log)[-2000:]},
                )
            time.sleep(_POLL_S)
    except BaseException:
        _kill(proc)
        raise
    _read_progress(wd / PROGRESS_FILE, seen, ctx.on_progress)
