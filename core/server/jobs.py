"""Jobs: submit, status, cancel, results — on Huey (SQLite on one machine,
Redis across machines).

Job records live in SQLite under the data folder (``jobs.db``); artifacts
(uploads, ``.tflite`` files, reports) are stored once, keyed by their SHA-256
(``artifacts/ab/abcd…``). A Huey task carries only a job id; the job's state
lives in its record, so a lost queue message is found again (``recover``) and a
duplicate one is harmless (a job is *claimed* atomically before it runs). The
TensorFlow part runs in an isolated, limited worker process (``core.worker``),
so a crash fails one job and the consumer lives on.

Life of a job::

    submit ──► queued ──claim──► running ──► done | failed | cancelled
                 ▲                  │
                 └──── re-queued ───┘  the worker stopped (restart, crash, lost
                                      machine): at most MAX_ATTEMPTS runs, then
                                      failed with the reason

A consumer (``start_consumer``: in the app process, or ``tflite-studio worker``
on any machine) writes a heartbeat into each running job's record; any consumer
re-queues running jobs whose worker is gone (same machine: its process is dead;
another machine: no heartbeat for ``settings.lease_s``).

``JobStore`` puts the parts together: ``db`` (records), ``artifacts``,
``queue`` (Huey), ``intake`` (submitting), ``recovery``, ``running`` and
``retention``; this module is what the rest of the program imports.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from core.errors import JobError, StudioError
from core.model.naming import safe_model_name
from core.pipeline.isolation import WarmPool
from core.server import recovery, retention
from core.server.artifacts import ArtifactStore, ArtifactWriter, too_large_upload
from core.server.db import JobDB
from core.server.intake import Intake, Upload
from core.server.queue import Consumer, JobQueue
from core.server.records import ACTIVE, ArtifactRef, Job, JobKind, JobStatus, safe_user
from core.server.recovery import HOST, MAX_ATTEMPTS
from core.server.runners import RUNNERS, JobContext
from core.server.running import run_job
from core.server.settings import Settings, load_settings

__all__ = [
    "JobKind",
    "JobStatus",
    "Job",
    "JobStore",
    "JobContext",
    "ArtifactRef",
    "ArtifactWriter",
    "Consumer",
    "store",
    "submit",
    "get",
    "list_jobs",
    "cancel",
    "wait",
    "artifact_path",
    "verified_artifact",
    "read_artifact",
    "put_artifact",
    "start_consumer",
    "too_large_upload",
    "RUNNERS",
    "MAX_ATTEMPTS",
    "HOST",
    "ACTIVE",
    "safe_model_name",
    "safe_user",
]


class JobStore:
    """Job records and content-addressed artifacts under one data folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # the data folder is the server's alone
        self.artifacts = ArtifactStore(self.root / "artifacts")
        (self.root / "jobs").mkdir(mode=0o700, exist_ok=True)
        self.db_path = self.root / "jobs.db"
        self.db = JobDB(self.db_path, wal=not settings.redis_url)
        self.queue = JobQueue(settings, self.root, self._run_queued)
        self.intake = Intake(settings, self.db, self.artifacts, self.queue.enqueue)
        self.consumer: Consumer | None = None

    # ------------------------------------------------------------ records
    def get(self, job_id: str) -> Job:
        return self.db.get(job_id)

    def list(
        self,
        limit: int = 200,
        user: str | None = None,
        status: JobStatus | Iterable[JobStatus] | None = None,
        offset: int = 0,
    ) -> builtins.list[Job]:
        """Newest first."""
        return self.db.select(limit=limit, user=user, status=status, offset=offset)

    def count(
        self,
        statuses: tuple[JobStatus, ...],
        user: str | None = None,
        db: sqlite3.Connection | None = None,
    ) -> int:
        return self.db.count(statuses, user=user, db=db)

    def queue_position(self, job: Job) -> int | None:
        """1 for the next queued job to run; None unless queued."""
        return self.db.queue_position(job)

    def update_record(self, job_id: str, **cols: Any) -> None:
        """Set columns of a job's record as they are (tests and tools)."""
        self.db.update(job_id, **cols)

    def set_progress(self, job_id: str, message: str) -> None:
        self.db.update(job_id, progress=message)

    def set_pid(self, job_id: str, pid: int) -> None:
        self.db.update(job_id, pid=pid)

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        progress: str | None = None,
    ) -> None:
        """Record how a job ended."""
        self.db.finish(job_id, status, error=error, result=result, progress=progress)

    # ------------------------------------------------------------ artifacts
    def artifact_path(self, sha: str) -> Path:
        """Where an artifact lives (for the store's own work; serve ``verified_artifact``)."""
        return self.artifacts.path(sha)

    def verified_artifact(self, sha: str) -> Path:
        """The path of an artifact checked against its SHA-256, to serve or read."""
        return self.artifacts.verified(sha)

    def read_artifact(self, sha: str) -> bytes:
        return self.artifacts.read(sha)

    def has_artifact(self, sha: str | None) -> bool:
        return self.artifacts.has(sha)

    def artifact_writer(
        self, max_bytes: int | None = None, too_large: Callable[[int], StudioError] | None = None
    ) -> ArtifactWriter:
        return self.artifacts.writer(max_bytes, too_large)

    def put_artifact(
        self, source: str | os.PathLike[str] | bytes, max_bytes: int | None = None
    ) -> tuple[str, int]:
        """Store bytes or a file once; returns (sha256, size)."""
        return self.artifacts.put(source, max_bytes)

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    # ------------------------------------------------------------ queue
    @property
    def huey(self) -> Any:
        return self.queue.huey

    def enqueue(self, job_id: str) -> None:
        """Send a job's id to the queue (a duplicate message is harmless)."""
        self.queue.enqueue(job_id)

    def check_limits(self, user: str, db: sqlite3.Connection | None = None) -> None:
        """Raise ``JobError`` if ``user`` may not queue one more job now."""
        self.intake.check_limits(user, db)

    def submit(
        self,
        kind: JobKind,
        upload: Upload,
        *,
        model_name: str,
        params: dict[str, Any] | None = None,
        user: str = "local",
        extra_files: dict[str, Upload] | None = None,
    ) -> Job:
        """Queue a job. ``upload`` is the model (stored as an artifact);
        ``extra_files`` (e.g. ``{"calibration": path}``) are stored too and
        passed to the runner by hash. Raises ``JobError`` when a limit is hit
        (upload size, the user's active jobs, the queue length)."""
        admitted = self.intake.admit(
            kind, upload, model_name=model_name, params=params, user=user, extra_files=extra_files
        )
        return self.get(admitted.job_id)

    def submit_model(
        self,
        upload: Upload,
        *,
        model_name: str,
        options: Any = None,
        user: str = "local",
        calibration: Upload | None = None,
        calibration_name: str = "",
    ) -> Job:
        """Queue the right job for an upload: a ``.tflite`` is inspected, a
        model (SavedModel archive, ``.keras``, ``.h5``) is converted with
        ``options`` (``ConversionOptions`` or its dict). The format and the
        options are checked now, so a bad upload fails here, not in the queue."""
        admitted = self.intake.admit_model(
            upload,
            model_name=model_name,
            options=options,
            user=user,
            calibration=calibration,
            calibration_name=calibration_name,
        )
        return self.get(admitted.job_id)

    def cancel(self, job_id: str, by: str | None = None) -> Job:
        """Cancel a queued job at once; ask a running one to stop (its worker
        process is killed within a second). ``by``: only that user's job."""
        job = self.get(job_id)
        if by is not None and safe_user(by) != job.user:
            raise JobError(
                f"This is {job.user}'s job; only they can cancel it.",
                "Ask them, or wait for it to finish.",
                details={"code": "forbidden"},
            )
        if job.status.finished:
            return job
        self.db.cancel(job_id)
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float = 600, poll: float = 0.25) -> Job:
        end = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status.finished or time.monotonic() > end:
                return job
            time.sleep(poll)

    # ------------------------------------------------------------ recovery, running, retention
    def recover(self, me: str | None = None) -> builtins.list[str]:
        """Re-queue running jobs whose worker is gone (once; a job whose worker
        died ``MAX_ATTEMPTS`` times fails with the reason) and re-send queued
        jobs missing from the queue. Safe to run from every consumer at once.
        ``me`` is the calling consumer's id (its own jobs are alive). Returns
        the ids touched."""
        return recovery.recover(self.db, self.queue, self.settings.lease_s, me)

    def run(
        self,
        job_id: str,
        pool: WarmPool | None = None,
        *,
        worker: str = "",
        stopping: threading.Event | None = None,
    ) -> None:
        """Run one job (inside a consumer). Never raises for the job's sake."""
        run_job(self, job_id, pool, worker=worker, stopping=stopping)

    def _run_queued(self, job_id: str) -> None:
        """The queue task: run the job on this process's consumer."""
        c = self.consumer
        self.run(
            job_id,
            pool=c.pool if c else None,
            worker=c.id if c else "",
            stopping=c.stopping if c else None,
        )

    def cleanup(
        self, older_than_days: float | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Remove the artifacts of finished jobs older than the retention
        period, keeping every artifact a newer or unfinished job still uses.
        Records stay (marked purged) so History and links say what happened.
        Also removes unreferenced artifacts, stale temporary files and worker
        logs older than the period."""
        days = self.settings.retention_days if older_than_days is None else older_than_days
        return retention.cleanup(self.db, self.artifacts, self.root, days, dry_run)


# ---------------------------------------------------------------- module-level API

_stores: dict[Settings, JobStore] = {}
_stores_lock = threading.Lock()


def store(settings: Settings | None = None) -> JobStore:
    """The process's JobStore for these settings (default: the environment's)."""
    s = settings or load_settings()
    with _stores_lock:
        st = _stores.get(s)
        if st is None:
            st = _stores[s] = JobStore(s)
        return st


def submit(kind: JobKind, upload: Any, **kw: Any) -> Job:
    return store().submit(kind, upload, **kw)


def get(job_id: str) -> Job:
    return store().get(job_id)


def list_jobs(
    limit: int = 200, user: str | None = None, status: JobStatus | Iterable[JobStatus] | None = None
) -> list[Job]:
    return store().list(limit=limit, user=user, status=status)


def cancel(job_id: str, by: str | None = None) -> Job:
    return store().cancel(job_id, by=by)


def wait(job_id: str, timeout: float = 600) -> Job:
    return store().wait(job_id, timeout)


def artifact_path(sha: str) -> Path:
    return store().artifact_path(sha)


def verified_artifact(sha: str) -> Path:
    return store().verified_artifact(sha)


def read_artifact(sha: str) -> bytes:
    return store().read_artifact(sha)


def put_artifact(source: Any) -> tuple[str, int]:
    return store().put_artifact(source)


def start_consumer(
    settings: Settings | None = None, workers: int | None = None, warm: bool = True
) -> Consumer:
    """Start Huey workers in this process (threads; each job's TensorFlow work
    runs in its own limited child process)."""
    st = store(settings)
    c = Consumer(st, workers if workers is not None else st.settings.workers, warm)
    c.start()
    return c
