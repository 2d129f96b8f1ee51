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
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import JobError, Phase, StudioError
from core.model.naming import safe_model_name
from core.pipeline.isolation import WarmPool, WorkerLimits
from core.server.records import (
    ACTIVE,
    MIGRATIONS,
    SCHEMA,
    ArtifactRef,
    Job,
    JobKind,
    JobStatus,
    row_to_job,
    safe_user,
)
from core.server.runners import RUNNERS, JobContext, Runner
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
    "put_artifact",
    "start_consumer",
    "RUNNERS",
    "MAX_ATTEMPTS",
    "ACTIVE",
    "safe_model_name",
    "safe_user",
]

log = logging.getLogger("tflite_studio.jobs")

MAX_ATTEMPTS = 2  # runs of one job cut short by a dead worker before it fails
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_JOB_ID = re.compile(r"^[0-9a-f]{16,32}$")


class ArtifactWriter:
    """Write one artifact in chunks, hashing as it goes; ``commit`` files it
    under its hash. Refuses to grow past ``max_bytes``."""

    def __init__(
        self,
        store: JobStore,
        max_bytes: int | None = None,
        too_large: Callable[[int], StudioError] | None = None,
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self._too_large = too_large
        tmp_dir = store.root / "artifacts" / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_dir / uuid.uuid4().hex
        self._f = open(self.tmp, "wb")  # noqa: SIM115  (lives across write() calls)
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            self.abort()
            if self._too_large is not None:
                raise self._too_large(self.size)
            raise JobError(
                f"The file is larger than the {self.max_bytes >> 20} MiB limit.",
                "Upload a smaller file, or ask the admin to raise TFLITE_STUDIO_MAX_UPLOAD_MB.",
                details={"code": "too_large", "limit_mb": self.max_bytes >> 20},
            )
        self._h.update(chunk)
        self._f.write(chunk)

    def commit(self, name: str = "") -> ArtifactRef:
        self._f.close()
        sha = self._h.hexdigest()
        dest = self.store.artifact_path(sha)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            self.tmp.unlink(missing_ok=True)
            try:
                os.utime(dest)  # fresh again: `cleanup` keeps recently stored files
            except OSError:
                pass
        else:
            os.chmod(self.tmp, 0o444)  # a job's worker process must not rewrite it
            os.replace(self.tmp, dest)
        return ArtifactRef(sha, self.size, name)

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:
            self.abort()


def too_large_upload(limit_mb: int) -> Callable[[int], StudioError]:
    def make(size: int) -> StudioError:
        return JobError(
            f"The upload is over the {limit_mb} MiB limit"
            + (f" ({size / (1 << 20):.0f} MiB or more)." if size else "."),
            "Upload a smaller model, or ask the admin to raise TFLITE_STUDIO_MAX_UPLOAD_MB.",
            details={"code": "too_large", "limit_mb": limit_mb},
        )

    return make


def _shas_in(obj: Any) -> Iterator[str]:
    """Every artifact id mentioned anywhere in a job's params or result."""
    if isinstance(obj, str):
        if _HEX64.match(obj):
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _shas_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _shas_in(v)


def _job_shas(job: Job) -> set[str]:
    return {job.input_sha, *_shas_in(job.params), *_shas_in(job.result)}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_HOST = socket.gethostname()


class JobStore:
    """Job records and content-addressed artifacts under one data folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "artifacts").mkdir(exist_ok=True)
        (self.root / "jobs").mkdir(exist_ok=True)
        self.db_path = self.root / "jobs.db"
        self._local = threading.local()
        with self._db() as db:
            db.executescript(SCHEMA)
            have = {r["name"] for r in db.execute("PRAGMA table_info(jobs)")}
            for name, decl in MIGRATIONS:
                if name not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")
        self._huey: Any = None
        self._lock = threading.Lock()
        self.consumer: Consumer | None = None

    # ------------------------------------------------------------ database
    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            # WAL needs shared memory, i.e. one machine. With Redis the database
            # may sit on a network file system: use the rollback journal there.
            mode = "DELETE" if self.settings.redis_url else "WAL"
            conn.execute(f"PRAGMA journal_mode={mode}")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        yield conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: checks and writes inside it are atomic."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _update(self, job_id: str, **cols: Any) -> None:
        for k in ("params", "error", "result"):
            if k in cols and cols[k] is not None and not isinstance(cols[k], str):
                cols[k] = json.dumps(cols[k])
        for k in ("kind", "status"):
            if k in cols and isinstance(cols[k], enum.Enum):
                cols[k] = cols[k].value
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self._db() as db:
            db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*cols.values(), job_id))

    def set_progress(self, job_id: str, message: str) -> None:
        self._update(job_id, progress=message)

    def set_pid(self, job_id: str, pid: int) -> None:
        self._update(job_id, pid=pid)

    def get(self, job_id: str) -> Job:
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise JobError(
                f"There is no job {str(job_id)[:80]!r}.",
                "Check the link or the job id.",
                details={"code": "not_found"},
            )
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobError(
                f"There is no job {job_id!r}.",
                "Check the link or the job id.",
                details={"code": "not_found"},
            )
        return row_to_job(row)

    def list(
        self,
        limit: int = 200,
        user: str | None = None,
        status: JobStatus | Iterable[JobStatus] | None = None,
        offset: int = 0,
    ) -> list[Job]:
        """Newest first."""
        q, args = "SELECT * FROM jobs", []
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
        with self._db() as db:
            return [row_to_job(r) for r in db.execute(q, args).fetchall()]

    def count(
        self,
        statuses: tuple[JobStatus, ...],
        user: str | None = None,
        db: sqlite3.Connection | None = None,
    ) -> int:
        marks = ",".join("?" for _ in statuses)
        q = f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})"
        args: list[Any] = [s.value for s in statuses]
        if user:
            q += " AND user = ?"
            args.append(user)
        if db is not None:
            return int(db.execute(q, args).fetchone()[0])
        with self._db() as conn:
            return int(conn.execute(q, args).fetchone()[0])

    def queue_position(self, job: Job) -> int | None:
        """1 for the next queued job to run; None unless queued."""
        if job.status is not JobStatus.QUEUED:
            return None
        with self._db() as db:
            n = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status = ? AND created_at < ?",
                (JobStatus.QUEUED.value, job.created_at),
            ).fetchone()[0]
        return int(n) + 1

    # ------------------------------------------------------------ artifacts
    def artifact_path(self, sha: str) -> Path:
        if not (isinstance(sha, str) and _HEX64.match(sha)):
            raise JobError("That is not an artifact id.", "Use a link from the job page.")
        return self.root / "artifacts" / sha[:2] / sha

    def has_artifact(self, sha: str | None) -> bool:
        return bool(sha) and self.artifact_path(str(sha)).is_file()

    def artifact_writer(
        self, max_bytes: int | None = None, too_large: Callable[[int], StudioError] | None = None
    ) -> ArtifactWriter:
        return ArtifactWriter(self, max_bytes, too_large)

    def put_artifact(
        self, source: str | os.PathLike[str] | bytes, max_bytes: int | None = None
    ) -> tuple[str, int]:
        """Store bytes or a file once; returns (sha256, size)."""
        with self.artifact_writer(max_bytes) as w:
            if isinstance(source, bytes):
                w.write(source)
            else:
                with open(source, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        w.write(chunk)
            ref = w.commit()
        return ref.sha, ref.size

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    # ------------------------------------------------------------ queue
    @property
    def huey(self) -> Any:
        with self._lock:
            if self._huey is None:
                self._huey = _make_huey(self)
            return self._huey

    def _check_limits(self, user: str, db: sqlite3.Connection | None = None) -> None:
        s = self.settings
        if self.count(ACTIVE, user=user, db=db) >= s.max_jobs_per_user:
            raise JobError(
                f"You already have {s.max_jobs_per_user} jobs queued or running.",
                "Wait for one to finish, or cancel one in History.",
                details={"code": "too_many_jobs", "limit": s.max_jobs_per_user},
            )
        if self.count((JobStatus.QUEUED,), db=db) >= s.max_queue:
            raise JobError(
                f"The queue is full ({s.max_queue} jobs waiting).",
                "Try again in a few minutes.",
                details={"code": "queue_full", "limit": s.max_queue},
            )

    def _store_upload(
        self, src: Any, limit: int, too_large: Callable[[int], StudioError], name: str = ""
    ) -> ArtifactRef:
        if isinstance(src, ArtifactRef):
            if not self.has_artifact(src.sha):
                raise JobError("The uploaded file is gone from the store.", "Upload it again.")
            if src.size > limit:
                raise too_large(src.size)
            return src
        if isinstance(src, bytes):
            if len(src) > limit:
                raise too_large(len(src))
        else:
            path = Path(src)
            if path.is_dir():
                raise JobError(
                    f"{path.name} is a folder.", "Zip the SavedModel folder and upload the .zip."
                )
            size = path.stat().st_size
            if size > limit:
                raise too_large(size)
            name = name or path.name
        sha, size = self.put_artifact(src, max_bytes=limit)
        return ArtifactRef(sha, size, name)

    def submit(
        self,
        kind: JobKind,
        upload: str | os.PathLike[str] | bytes | ArtifactRef,
        *,
        model_name: str,
        params: dict[str, Any] | None = None,
        user: str = "local",
        extra_files: dict[str, str | os.PathLike[str] | bytes | ArtifactRef] | None = None,
    ) -> Job:
        """Queue a job. ``upload`` is the model (stored as an artifact);
        ``extra_files`` (e.g. ``{"calibration": path}``) are stored too and
        passed to the runner by hash. Raises ``JobError`` when a limit is hit
        (upload size, the user's active jobs, the queue length)."""
        kind = JobKind(kind)
        user = safe_user(user)
        s = self.settings
        limit = s.max_upload_mb << 20
        too_large = too_large_upload(s.max_upload_mb)
        self._check_limits(user)  # fail fast, before storing anything
        ref = self._store_upload(upload, limit, too_large)
        params = dict(params or {})
        files = {}
        for key, src in (extra_files or {}).items():
            fref = self._store_upload(
                src, limit, too_large, name=src.name if isinstance(src, ArtifactRef) else ""
            )
            files[key] = {
                "sha": fref.sha,
                "size": fref.size,
                "name": safe_model_name(fref.name or key),
            }
        params["files"] = files
        job_id = uuid.uuid4().hex[:16]
        with self._tx() as db:
            self._check_limits(user, db)  # again, atomically with the insert
            db.execute(
                "INSERT INTO jobs (id, kind, status, user, created_at, model_name, input_sha, "
                "input_size, params) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    job_id,
                    kind.value,
                    JobStatus.QUEUED.value,
                    user,
                    time.time(),
                    safe_model_name(model_name),
                    ref.sha,
                    ref.size,
                    json.dumps(params),
                ),
            )
        self._enqueue(job_id)
        return self.get(job_id)

    def submit_model(
        self,
        upload: str | os.PathLike[str] | bytes | ArtifactRef,
        *,
        model_name: str,
        options: Any = None,
        user: str = "local",
        calibration: str | os.PathLike[str] | bytes | ArtifactRef | None = None,
        calibration_name: str = "",
    ) -> Job:
        """Queue the right job for an upload: a ``.tflite`` is inspected, a
        model (SavedModel archive, ``.keras``, ``.h5``) is converted with
        ``options`` (``ConversionOptions`` or its dict). The format and the
        options are checked now, so a bad upload fails here, not in the queue."""
        from core.model.archive import detect_kind
        from core.options import ConversionOptions

        s = self.settings
        user = safe_user(user)
        name = safe_model_name(model_name)
        self._check_limits(user)
        ref = self._store_upload(
            upload, s.max_upload_mb << 20, too_large_upload(s.max_upload_mb), name=name
        )
        probe_dir = self.root / "artifacts" / "tmp" / f"probe-{uuid.uuid4().hex}"
        probe_dir.mkdir(parents=True)
        try:
            probe = probe_dir / name
            os.symlink(self.artifact_path(ref.sha), probe)
            kind = detect_kind(probe)
        finally:
            shutil.rmtree(probe_dir, ignore_errors=True)
        if kind == "tflite":
            return self.submit(JobKind.INSPECT, ref, model_name=name, user=user)
        if isinstance(options, ConversionOptions):
            opts = options.to_dict()
        else:
            opts = dict(options or {})
        cal_name = ""
        if calibration is not None:
            cal_name = safe_model_name(
                calibration_name
                or (calibration.name if isinstance(calibration, ArtifactRef) else "")
                or (Path(calibration).name if not isinstance(calibration, bytes) else "")
                or "calibration.npz"
            )
            opts["calibration_path"] = cal_name
        else:
            opts.pop("calibration_path", None)
            opts.pop("calibration_source", None)
        opts = ConversionOptions.from_dict(opts).to_dict()  # raises OptionsError
        extra: dict[str, Any] = {}
        if calibration is not None:
            cref = (
                calibration
                if isinstance(calibration, ArtifactRef)
                else self._store_upload(
                    calibration,
                    s.max_upload_mb << 20,
                    too_large_upload(s.max_upload_mb),
                    name=cal_name,
                )
            )
            extra["calibration"] = ArtifactRef(cref.sha, cref.size, cal_name)
        return self.submit(
            JobKind.CONVERT,
            ref,
            model_name=name,
            user=user,
            params={"options": opts, "source_format": kind},
            extra_files=extra,
        )

    def _enqueue(self, job_id: str) -> None:
        try:
            self.huey.enqueue(self.huey._tflite_studio_task.s(job_id))
        except Exception:
            log.exception("could not enqueue job %s; it will be re-sent by recover()", job_id)

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
        with self._tx() as db:
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
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float = 600, poll: float = 0.25) -> Job:
        end = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status.finished or time.monotonic() > end:
                return job
            time.sleep(poll)

    # ------------------------------------------------------------ recovery
    def _worker_gone(self, job: Job, now: float) -> bool:
        host, _, rest = job.worker.partition(":")
        pid = rest.split(":", 1)[0]
        if host == _HOST and pid.isdigit() and not _pid_alive(int(pid)):
            return True
        beat = job.heartbeat_at or job.started_at or job.created_at
        return now - beat > self.settings.lease_s

    def _kill_orphan(self, job: Job) -> None:
        """A dead consumer's TensorFlow process (its own process group) may
        still run on this machine: stop it before the job runs again."""
        if not job.pid or not job.worker.startswith(_HOST + ":"):
            return
        try:
            cmdline = Path(f"/proc/{job.pid}/cmdline").read_bytes()
        except OSError:
            return
        if b"core.worker" in cmdline:
            try:
                os.killpg(job.pid, signal.SIGKILL)
            except OSError:
                pass

    def recover(self, me: str | None = None) -> list[str]:
        """Re-queue running jobs whose worker is gone (once; a job whose worker
        died ``MAX_ATTEMPTS`` times fails with the reason) and re-send queued
        jobs missing from the queue. Safe to run from every consumer at once.
        ``me`` is the calling consumer's id (its own jobs are alive). Returns
        the ids touched."""
        now = time.time()
        touched: list[str] = []
        for job in self.list(limit=100_000, status=JobStatus.RUNNING):
            if job.worker == me or not self._worker_gone(job, now):
                continue
            self._kill_orphan(job)
            if job.cancel_requested:
                cols = (
                    "status=?, finished_at=?, progress=?",
                    (JobStatus.CANCELLED.value, now, "Cancelled"),
                )
            elif job.attempts >= MAX_ATTEMPTS:
                cols = (
                    "status=?, finished_at=?, progress=?, error=?",
                    (
                        JobStatus.FAILED.value,
                        now,
                        "Failed",
                        json.dumps(
                            JobError(
                                f"The worker running this job stopped {job.attempts} times "
                                "(server restart or crash) before it could finish.",
                                "Submit it again; if it repeats, the model may crash the "
                                "converter or need more memory than the server allows.",
                            ).to_dict()
                        ),
                    ),
                )
            else:
                cols = (
                    "status=?, progress=?, worker='', pid=NULL",
                    (JobStatus.QUEUED.value, "Re-queued: its worker stopped"),
                )
            with self._db() as db:
                n = db.execute(
                    f"UPDATE jobs SET {cols[0]} WHERE id=? AND status=? AND worker=?",
                    (*cols[1], job.id, JobStatus.RUNNING.value, job.worker),
                ).rowcount
            if n:
                requeued = cols[1][0] == JobStatus.QUEUED.value
                log.warning(
                    "job %s: worker %s is gone; %s",
                    job.id,
                    job.worker,
                    "re-queued" if requeued else cols[1][0],
                )
                if requeued:
                    self._enqueue(job.id)
                touched.append(job.id)
        queued = [
            j
            for j in self.list(limit=100_000, status=JobStatus.QUEUED)
            if j.id not in touched and now - j.created_at > 2
        ]
        if queued:
            pending = {t.args[0] for t in self.huey.pending() if t.args}
            for job in queued:
                if job.id not in pending:
                    self._enqueue(job.id)
                    touched.append(job.id)
        return touched

    # ------------------------------------------------------------ running
    def _claim(self, job_id: str, worker: str) -> Job | None:
        """queued -> running, atomically: one run per job however many
        consumers got its message."""
        now = time.time()
        with self._db() as db:
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

    def _finish(
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
        self._update(job_id, **cols)

    def _requeue_interrupted(self, job: Job) -> None:
        """The consumer is stopping: this run does not count as an attempt."""
        with self._db() as db:
            db.execute(
                "UPDATE jobs SET status=?, attempts=?, progress=?, worker='', pid=NULL, "
                "started_at=NULL WHERE id=? AND status=?",
                (
                    JobStatus.QUEUED.value,
                    job.attempts - 1,
                    "Re-queued: the server stopped while it ran",
                    job.id,
                    JobStatus.RUNNING.value,
                ),
            )
        self._enqueue(job.id)

    def run(
        self,
        job_id: str,
        pool: Any = None,
        *,
        worker: str = "",
        stopping: threading.Event | None = None,
    ) -> None:
        """Run one job (inside a consumer). Never raises for the job's sake."""
        try:
            job = self._claim(job_id, worker or f"{_HOST}:{os.getpid()}:inline")
        except JobError:
            return  # no such job (an old message)
        if job is None:
            return  # cancelled while queued, or another consumer has it
        ctx = JobContext(self, job, pool, stopping)
        try:
            result = _runner_for(job.kind)(ctx)
        except StudioError as e:
            if ctx.interrupted and not self.get(job_id).cancel_requested:
                self._requeue_interrupted(job)
            elif ctx.cancel.is_set():
                self._finish(job_id, JobStatus.CANCELLED, progress="Cancelled")
            else:
                self._finish(job_id, JobStatus.FAILED, error=e.to_dict(), progress="Failed")
            return
        except Exception as e:
            log.exception("job %s failed", job_id)
            self._finish(
                job_id,
                JobStatus.FAILED,
                error=StudioError(
                    f"Unexpected error: {type(e).__name__}: {str(e)[:300]}",
                    "This is a bug in TFLite Studio; the server log has details.",
                    phase=Phase.JOB,
                ).to_dict(),
                progress="Failed",
            )
            return
        finally:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
        self._finish(job_id, JobStatus.DONE, result=result, progress="Done")

    # ------------------------------------------------------------ retention
    def cleanup(
        self, older_than_days: float | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        """Remove the artifacts of finished jobs older than the retention
        period, keeping every artifact a newer or unfinished job still uses.
        Records stay (marked purged) so History and links say what happened.
        Also removes unreferenced artifacts, stale temporary files and worker
        logs older than the period."""
        days = self.settings.retention_days if older_than_days is None else older_than_days
        now = time.time()
        cutoff = now - float(days) * 86400
        with self._db() as db:
            rows = [row_to_job(r) for r in db.execute("SELECT * FROM jobs").fetchall()]
        expired = [
            j
            for j in rows
            if j.status.finished
            and j.purged_at is None
            and (j.finished_at or j.created_at) < cutoff
        ]
        expired_ids = {j.id for j in expired}
        keep: set[str] = set()
        for j in rows:
            if j.id not in expired_ids and j.purged_at is None:
                keep |= _job_shas(j)
        candidates: set[str] = set()
        for j in expired:
            candidates |= _job_shas(j)
        art = self.root / "artifacts"
        orphans = set()
        for sub in art.glob("[0-9a-f][0-9a-f]"):
            for p in sub.iterdir():
                if _HEX64.match(p.name) and p.name not in keep and p.name not in candidates:
                    orphans.add(p.name)
        removed, freed = [], 0
        for sha in sorted((candidates - keep) | orphans):
            p = self.artifact_path(sha)
            try:
                st = p.stat()
            except OSError:
                continue
            if st.st_mtime >= cutoff and sha not in candidates:
                continue  # a fresh orphan may belong to a submit in progress
            if st.st_mtime > now - 60:
                continue  # stored again this minute: a new job is about to use it
            removed.append(sha)
            freed += st.st_size
            if not dry_run:
                p.unlink(missing_ok=True)
        stale = []
        for folder, age in ((art / "tmp", 86400.0), (self.root / "worker-logs", now - cutoff)):
            if folder.is_dir():
                for p in folder.iterdir():
                    try:
                        if p.is_file() and now - p.stat().st_mtime > max(age, 3600):
                            stale.append(p)
                            freed += p.stat().st_size
                    except OSError:
                        continue
        if not dry_run:
            for p in stale:
                p.unlink(missing_ok=True)
            with self._db() as db:
                for j in expired:
                    db.execute("UPDATE jobs SET purged_at=? WHERE id=?", (now, j.id))
            for j in expired:
                shutil.rmtree(self.job_dir(j.id), ignore_errors=True)
        return {
            "dry_run": dry_run,
            "older_than_days": days,
            "jobs": len(expired),
            "job_ids": sorted(expired_ids),
            "artifacts": len(removed),
            "other_files": len(stale),
            "bytes": freed,
        }


def _runner_for(kind: JobKind) -> Runner:
    if kind not in RUNNERS:
        raise JobError(
            f"This server's workers cannot run {kind.value} jobs.",
            "Update TFLite Studio on every worker machine to the same version.",
        )
    return RUNNERS[kind]


def _make_huey(st: JobStore) -> Any:
    from huey import RedisHuey, SqliteHuey

    if st.settings.redis_url:
        h = RedisHuey("tflite-studio", url=st.settings.redis_url, results=False)
    else:
        h = SqliteHuey(
            "tflite-studio", filename=str(st.root / "queue.db"), results=False, timeout=30
        )

    @h.task(name="tflite_studio.run_job")
    def run_job(job_id: str) -> None:
        c = st.consumer
        st.run(
            job_id,
            pool=c.pool if c else None,
            worker=c.id if c else "",
            stopping=c.stopping if c else None,
        )

    h._tflite_studio_task = run_job
    return h


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


def put_artifact(source: Any) -> tuple[str, int]:
    return store().put_artifact(source)


class Consumer:
    """Huey workers run from any thread of this process (Huey's own consumer
    installs signal handlers, which only the main thread may do; the caller
    handles signals). Each job's TensorFlow work runs in its own limited child
    process. Also keeps the heartbeat of its running jobs and re-queues the
    jobs of dead consumers (``JobStore.recover``)."""

    def __init__(self, st: JobStore, workers: int, warm: bool) -> None:
        from huey.consumer import Consumer as HueyConsumer

        class _Consumer(HueyConsumer):  # type: ignore[misc]
            def _set_signal_handlers(self) -> None:
                pass

        self.store = st
        self.id = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.pool: Any = None
        s = st.settings
        if warm:
            self.pool = WarmPool(
                size=max(1, workers),
                limits=WorkerLimits.from_settings(s),
                log_dir=st.root / "worker-logs",
            )
        self.consumer = _Consumer(
            st.huey,
            workers=max(1, workers),
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            max_delay=0.5,
            backoff=1.15,
            check_worker_health=False,
        )
        self._beat = threading.Thread(
            target=self._heartbeat, name="tflite-studio-heartbeat", daemon=True
        )

    def _heartbeat(self) -> None:
        s = self.store.settings
        beat = max(0.5, s.lease_s / 6)
        next_reap = time.monotonic() + s.lease_s / 2
        while not self.stopping.wait(beat):
            try:
                with self.store._db() as db:
                    db.execute(
                        "UPDATE jobs SET heartbeat_at=? WHERE worker=? AND status=?",
                        (time.time(), self.id, JobStatus.RUNNING.value),
                    )
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + s.lease_s / 2
                    self.store.recover(me=self.id)
            except Exception:
                log.exception("heartbeat")

    def start(self) -> None:
        if self.store.consumer is not None:
            raise RuntimeError(
                "A consumer is already running for this data folder in this process."
            )
        self.store.consumer = self
        if self.pool is not None:
            threading.Thread(target=self.pool.fill, daemon=True).start()
        self.store.recover(me=self.id)
        self.consumer.start()
        self._beat.start()
        log.info("consumer %s: %d workers on %s", self.id, self.consumer.workers, self.store.root)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop taking jobs; jobs running here are stopped and re-queued (they
        run again on the next start, or on another machine's worker)."""
        self.stopping.set()
        self.consumer.stop(graceful=False)
        end = time.monotonic() + timeout
        for _, t in self.consumer.worker_threads:
            t.join(max(0.0, end - time.monotonic()))
        self.consumer.scheduler.join(max(0.0, end - time.monotonic()))
        if self.pool is not None:
            self.pool.close()
        if self.store.consumer is self:
            self.store.consumer = None


def start_consumer(
    settings: Settings | None = None, workers: int | None = None, warm: bool = True
) -> Consumer:
    """Start Huey workers in this process (threads; each job's TensorFlow work
    runs in its own limited child process)."""
    st = store(settings)
    c = Consumer(st, workers if workers is not None else st.settings.workers, warm)
    c.start()
    return c
