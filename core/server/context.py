"""What a runner gets: ``JobContext`` (the job, its work folder, progress,
cancel, the warm pool) and ``Runner``, the type of a runner function."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from core.model.naming import safe_model_name
from core.options import ConversionOptions
from core.pipeline.isolation import RunContext, WarmPool, WorkerLimits
from core.server.records import Job
from core.server.settings import Settings, sandbox_for

__all__ = ["JobContext", "Runner"]


class _Store(Protocol):
    """What a runner needs of the job store."""

    settings: Settings

    def get(self, job_id: str) -> Job: ...
    def job_dir(self, job_id: str) -> Path: ...
    def artifact_path(self, sha: str) -> Path: ...
    def put_artifact(
        self, source: str | os.PathLike[str] | bytes, max_bytes: int | None = None
    ) -> tuple[str, int]: ...
    def set_progress(self, job_id: str, message: str) -> None: ...
    def set_pid(self, job_id: str, pid: int) -> None: ...


class _CancelFlag:
    """A cancel token for ``RunContext``: set when someone cancelled the job
    (the database is asked at most every half second) or when the consumer is
    stopping."""

    def __init__(self, store: _Store, job_id: str, stopping: threading.Event | None = None) -> None:
        self.store, self.job_id, self.stopping = store, job_id, stopping
        self._set = False
        self._checked = 0.0

    def is_set(self) -> bool:
        if self.stopping is not None and self.stopping.is_set():
            return True
        now = time.monotonic()
        if not self._set and now - self._checked > 0.5:
            self._checked = now
            self._set = self.store.get(self.job_id).cancel_requested
        return self._set


class JobContext:
    """What a runner gets: the job, a work folder, progress, cancel, the pool.
    ``run_context`` is what every pipeline call takes: the server's limits, the
    warm pool, progress, cancel, and the pid record used after a crash."""

    def __init__(
        self,
        store: _Store,
        job: Job,
        pool: WarmPool | None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.job = job
        self.pool = pool
        self.stopping = stopping
        self.workdir = store.job_dir(job.id) / "work"
        shutil.rmtree(self.workdir, ignore_errors=True)  # left over from a dead run
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cancel = _CancelFlag(store, job.id, stopping)

    @property
    def interrupted(self) -> bool:
        """The consumer is stopping (not the user's cancel, not the model's fault)."""
        return self.stopping is not None and self.stopping.is_set()

    @property
    def limits(self) -> WorkerLimits:
        return WorkerLimits.from_settings(self.store.settings)

    @property
    def run_context(self) -> RunContext:
        s = self.store.settings
        return RunContext(
            limits=self.limits,
            pool=self.pool,
            on_progress=self.progress,
            cancel=self.cancel,
            on_start=self.on_start,
            sandbox=sandbox_for(s),
            scratch_root=str(Path(s.data_dir) / "sandbox"),
        )

    @property
    def input_path(self) -> Path:
        """The upload, linked under its original name (format detection and
        messages use the name)."""
        p = self.workdir / "input" / self.job.model_name
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(self.store.artifact_path(self.job.input_sha), p)
        return p

    def file(self, key: str) -> Path | None:
        info = self.job.params.get("files", {}).get(key)
        if not info:
            return None
        p = self.workdir / "files" / key / safe_model_name(info["name"])
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(self.store.artifact_path(info["sha"]), p)
        return p

    def options(self, key: str = "options") -> ConversionOptions:
        """The job's options, calibration pointing at its stored file."""
        d = dict(self.job.params.get(key) or {})
        d.pop("calibration_path", None)
        d.pop("calibration_source", None)
        cal = self.file("calibration")
        if cal is not None:
            d["calibration_path"] = str(cal)
        return ConversionOptions.from_dict(d)

    def progress(self, message: str) -> None:
        self.store.set_progress(self.job.id, str(message)[:500])

    def on_start(self, pid: int) -> None:
        """Record the job's worker process (its own process group)."""
        self.store.set_pid(self.job.id, int(pid))


Runner = Callable[[JobContext], dict[str, Any]]
