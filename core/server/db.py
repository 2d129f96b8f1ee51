"""The job table in SQLite (``jobs.db``): one connection per thread, write
transactions, and every query on job records. State changes that race (claim,
cancel, re-queue) are single conditional updates, so they are atomic across
threads, processes and machines."""

from __future__ import annotations

import enum
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import JobError
from core.server.records import (
    MIGRATIONS,
    SCHEMA,
    ArtifactRef,
    Job,
    JobKind,
    JobStatus,
    row_to_job,
)

__all__ = ["private_file", "JobDB"]

_JOB_ID = re.compile(r"^[0-9a-f]{16,32}$")
_JSON_COLS = ("params", "error", "result")
_ENUM_COLS = ("kind", "status")


def _encode(cols: dict[str, Any]) -> dict[str, Any]:
    """Column values as SQLite stores them: JSON text, enum values."""
    out = dict(cols)
    for k in _JSON_COLS:
        if k in out and out[k] is not None and not isinstance(out[k], str):
            out[k] = json.dumps(out[k])
    for k in _ENUM_COLS:
        if k in out and isinstance(out[k], enum.Enum):
            out[k] = out[k].value
    return out


def _not_found(job_id: object) -> JobError:
    return JobError(
        f"There is no job {job_id!r}.",
        "Check the link or the job id.",
        details={"code": "not_found"},
    )


def private_file(path: Path) -> None:
    """Create ``path`` readable and writable by the server alone (0600); SQLite
    gives its -wal and -shm files the same mode."""
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)


class JobDB:
    """Job records in one SQLite file."""

    def __init__(self, path: Path, wal: bool = True) -> None:
        self.path = path
        # WAL needs shared memory, i.e. one machine. With Redis the database
        # may sit on a network file system: use the rollback journal there.
        self.journal_mode = "WAL" if wal else "DELETE"
        self._local = threading.local()
        private_file(path)
        with self.connect() as db:
            db.executescript(SCHEMA)
            have = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
            for name, decl in MIGRATIONS:
                if name not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")

    # ------------------------------------------------------------ connections
    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (autocommit: each statement is its own write)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA journal_mode={self.journal_mode}")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        yield conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: checks and writes inside it are atomic."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------ reading
    def get(self, job_id: str) -> Job:
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise _not_found(str(job_id)[:80])
        with self.connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise _not_found(job_id)
        return row_to_job(row)

    def select(
        self,
        limit: int = 200,
        user: str | None = None,
        status: JobStatus | Iterable[JobStatus] | None = None,
        offset: int = 0,
    ) -> list[Job]:
        """Newest first."""
        q = "SELECT * FROM jobs"
        args: list[Any] = []
        conds = []
        if user:
            conds.append("user = ?")
            args.append(user)
        if status is not None:
            sts = [status] if isinstance(status, JobStatus) else list(status)
            conds.append(f"status IN ({','.join('?' for _ in sts)})")
            args.extend(JobStatus(s).value for s in sts)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        q += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
        args.extend([max(0, int(limit)), max(0, int(offset))])
        with self.connect() as db:
            return [row_to_job(r) for r in db.execute(q, args).fetchall()]

    def all(self) -> list[Job]:
        with self.connect() as db:
            return [row_to_job(r) for r in db.execute("SELECT * FROM jobs").fetchall()]

    def count(
        self,
        statuses: tuple[JobStatus, ...],
        user: str | None = None,
        db: sqlite3.Connection | None = None,
    ) -> int:
        """Jobs in these states (``db``: inside that open transaction)."""
        marks = ",".join("?" for _ in statuses)
        q = f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})"
        args: list[Any] = [s.value for s in statuses]
        if user:
            q += " AND user = ?"
            args.append(user)
        if db is not None:
            return int(db.execute(q, args).fetchone()[0])
        with self.connect() as conn:
            return int(conn.execute(q, args).fetchone()[0])

    def queue_position(self, job: Job) -> int | None:
        """1 for the next queued job to run; None unless queued."""
        if job.status is not JobStatus.QUEUED:
            return None
        with self.connect() as db:
            n = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = ? AND created_at < ?",
                (JobStatus.QUEUED.value, job.created_at),
            ).fetchone()[0]
        return int(n) + 1

    # ------------------------------------------------------------ writing
    def insert(
        self,
        db: sqlite3.Connection,
        job_id: str,
        kind: JobKind,
        user: str,
        model_name: str,
        upload: ArtifactRef,
        params: dict[str, Any],
    ) -> None:
        """A new queued job (``db``: the caller's transaction, which checked the limits)."""
        db.execute(
            "INSERT INTO jobs (id, kind, status, user, created_at, model_name, input_sha, "
            "input_size, params) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                job_id,
                kind.value,
                JobStatus.QUEUED.value,
                user,
                time.time(),
                model_name,
                upload.sha,
                upload.size,
                json.dumps(params),
            ),
        )

    def update(self, job_id: str, **cols: Any) -> None:
        """Set these columns of one record (JSON and enum values encoded)."""
        cols = _encode(cols)
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self.connect() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*cols.values(), job_id))

    def update_if(
        self, job_id: str, only_if: JobStatus, held_by: str | None = None, **cols: Any
    ) -> bool:
        """Set these columns only while the job is in state ``only_if`` (and,
        if given, held by worker ``held_by``); False when someone else changed
        it first."""
        cols = _encode(cols)
        sets = ", ".join(f"{k} = ?" for k in cols)
        q = f"UPDATE jobs SET {sets} WHERE id = ? AND status = ?"
        args = [*cols.values(), job_id, only_if.value]
        if held_by is not None:
            q += " AND worker = ?"
            args.append(held_by)
        with self.connect() as db:
            return bool(db.execute(q, args).rowcount)

    def claim(self, job_id: str, worker: str) -> Job | None:
        """queued -> running, atomically: one run per job however many
        consumers got its message."""
        now = time.time()
        with self.connect() as db:
            n = db.execute(
                "UPDATE jobs SET status=?, started_at=?, heartbeat_at=?, attempts=attempts+1, "
                "progress=?, worker=?, pid=NULL, finished_at=NULL, error=NULL "
                "WHERE id=? AND status=? AND cancel_requested=0",
                (
                    JobStatus.RUNNING.value,
                    now,
                    now,
                    "Starting",
                    worker,
                    job_id,
                    JobStatus.QUEUED.value,
                ),
            ).rowcount
        return self.get(job_id) if n else None

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        progress: str | None = None,
    ) -> None:
        cols: dict[str, Any] = {"status": status, "finished_at": time.time()}
        if error is not None:
            cols["error"] = error
        if result is not None:
            cols["result"] = result
        if progress is not None:
            cols["progress"] = progress
        self.update(job_id, **cols)

    def cancel(self, job_id: str) -> None:
        """A queued job is cancelled at once; any job gets the cancel request
        (a running one sees it and stops)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status=?, finished_at=?, progress=? WHERE id=? AND status=?",
                (
                    JobStatus.CANCELLED.value,
                    time.time(),
                    "Cancelled before it started",
                    job_id,
                    JobStatus.QUEUED.value,
                ),
            )
            db.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))

    def heartbeat(self, worker: str) -> None:
        """The running jobs of ``worker`` are alive now."""
        with self.connect() as db:
            db.execute(
                "UPDATE jobs SET heartbeat_at=? WHERE worker=? AND status=?",
                (time.time(), worker, JobStatus.RUNNING.value),
            )

    def mark_purged(self, job_ids: Iterable[str], when: float) -> None:
        with self.connect() as db:
            for job_id in job_ids:
                db.execute("UPDATE jobs SET purged_at=? WHERE id=?", (when, job_id))
