"""Jobs: submit, status, cancel, results — on Huey (SQLite on one machine,
Redis across machines).

Job records live in SQLite under the data folder; artifacts (uploads,
``.tflite`` files, reports) are stored once, keyed by their SHA-256. A Huey
task runs each job; the TensorFlow part runs in an isolated worker process
(``core.worker``), so a crash fails one job and the consumer lives on.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import JobError, Phase, StudioError
from core.settings import Settings, load_settings

__all__ = [
    "JobKind",
    "JobStatus",
    "Job",
    "JobStore",
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
]


class JobKind(str, enum.Enum):
    CONVERT = "convert"
    INSPECT = "inspect"
    EVALUATE = "evaluate"
    SWEEP = "sweep"


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    status: JobStatus
    user: str
    created_at: float
    model_name: str
    input_sha: str
    input_size: int
    params: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    progress: str = ""
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    attempts: int = 0
    cancel_requested: bool = False

    @property
    def preset(self) -> str:
        return str(self.params.get("options", {}).get("preset", ""))

    @property
    def output_sha(self) -> str | None:
        return (self.result or {}).get("output_sha")

    @property
    def report_sha(self) -> str | None:
        return (self.result or {}).get("report_sha")

    @property
    def error_obj(self) -> StudioError | None:
        return StudioError.from_dict(self.error) if self.error else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "status": self.status.value,
            "user": self.user,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "model_name": self.model_name,
            "input_sha": self.input_sha,
            "input_size": self.input_size,
            "preset": self.preset,
            "params": self.params,
            "progress": self.progress,
            "error": self.error,
            "result": self.result,
            "attempts": self.attempts,
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    user TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    model_name TEXT NOT NULL,
    input_sha TEXT NOT NULL,
    input_size INTEGER NOT NULL,
    params TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '',
    error TEXT,
    result TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""


def _row_to_job(r: sqlite3.Row) -> Job:
    return Job(
        id=r["id"],
        kind=JobKind(r["kind"]),
        status=JobStatus(r["status"]),
        user=r["user"],
        created_at=r["created_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        model_name=r["model_name"],
        input_sha=r["input_sha"],
        input_size=r["input_size"],
        params=json.loads(r["params"]),
        progress=r["progress"],
        error=json.loads(r["error"]) if r["error"] else None,
        result=json.loads(r["result"]) if r["result"] else None,
        attempts=r["attempts"],
        cancel_requested=bool(r["cancel_requested"]),
    )


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
            db.executescript(_SCHEMA)
        self._huey: Any = None
        self._lock = threading.Lock()

    # -- database
    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        yield conn

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

    def get(self, job_id: str) -> Job:
        if not isinstance(job_id, str) or not job_id.isalnum() or len(job_id) > 64:
            raise JobError(f"There is no job {job_id!r}.", "Check the link or the job id.")
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobError(f"There is no job {job_id!r}.", "Check the link or the job id.")
        return _row_to_job(row)

    def list(self, limit: int = 200, user: str | None = None,
             status: JobStatus | None = None) -> list[Job]:
        q, args = "SELECT * FROM jobs", []
        conds = []
        if user:
            conds.append("user = ?")
            args.append(user)
        if status:
            conds.append("status = ?")
            args.append(status.value)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        q += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        with self._db() as db:
            return [_row_to_job(r) for r in db.execute(q, args).fetchall()]

    def count(self, statuses: tuple[JobStatus, ...], user: str | None = None) -> int:
        marks = ",".join("?" for _ in statuses)
        q = f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})"
        args: list[Any] = [s.value for s in statuses]
        if user:
            q += " AND user = ?"
            args.append(user)
        with self._db() as db:
            return int(db.execute(q, args).fetchone()[0])

    # -- artifacts
    def artifact_path(self, sha: str) -> Path:
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise JobError("That is not an artifact id.", "Use a link from the job page.")
        return self.root / "artifacts" / sha[:2] / sha

    def put_artifact(self, source: str | os.PathLike[str] | bytes) -> tuple[str, int]:
        """Store bytes or a file once; returns (sha256, size)."""
        tmp_dir = self.root / "artifacts" / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / uuid.uuid4().hex
        h = hashlib.sha256()
        size = 0
        with open(tmp, "wb") as out:
            if isinstance(source, bytes):
                h.update(source)
                out.write(source)
                size = len(source)
            else:
                with open(source, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
        sha = h.hexdigest()
        dest = self.artifact_path(sha)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            tmp.unlink()
        else:
            os.replace(tmp, dest)
        return sha, size

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    # -- queue
    @property
    def huey(self) -> Any:
        with self._lock:
            if self._huey is None:
                self._huey = _make_huey(self)
            return self._huey

    def submit(
        self,
        kind: JobKind,
        upload: str | os.PathLike[str] | bytes,
        *,
        model_name: str,
        params: dict[str, Any] | None = None,
        user: str = "local",
        extra_files: dict[str, str | os.PathLike[str] | bytes] | None = None,
    ) -> Job:
        """Queue a job. ``upload`` is the model (stored as an artifact);
        ``extra_files`` (e.g. calibration data) are stored too and passed by sha."""
        s = self.settings
        active = (JobStatus.QUEUED, JobStatus.RUNNING)
        if self.count(active, user=user) >= s.max_jobs_per_user:
            raise JobError(
                f"You already have {s.max_jobs_per_user} jobs queued or running.",
                "Wait for one to finish, or cancel one in History.",
            )
        if self.count((JobStatus.QUEUED,)) >= s.max_queue:
            raise JobError(
                f"The queue is full ({s.max_queue} jobs waiting).",
                "Try again in a few minutes.",
            )
        sha, size = self.put_artifact(upload)
        if size > s.max_upload_mb << 20:
            raise JobError(
                f"The upload is {size >> 20} MiB; the limit is {s.max_upload_mb} MiB.",
                "Upload a smaller model, or ask the admin to raise TFLITE_STUDIO_MAX_UPLOAD_MB.",
            )
        params = dict(params or {})
        files = {}
        for key, src in (extra_files or {}).items():
            fsha, fsize = self.put_artifact(src)
            files[key] = {"sha": fsha, "size": fsize,
                          "name": Path(src).name if not isinstance(src, bytes) else key}
        params["files"] = files
        job_id = uuid.uuid4().hex[:16]
        with self._db() as db:
            db.execute(
                "INSERT INTO jobs (id, kind, status, user, created_at, model_name, input_sha, "
                "input_size, params) VALUES (?,?,?,?,?,?,?,?,?)",
                (job_id, kind.value, JobStatus.QUEUED.value, user, time.time(),
                 os.path.basename(model_name) or "model", sha, size, json.dumps(params)),
            )
        self.huey.enqueue(self._task(job_id))
        return self.get(job_id)

    def _task(self, job_id: str) -> Any:
        return self.huey._tflite_studio_task.s(job_id)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status.finished:
            return job
        if job.status is JobStatus.QUEUED:
            with self._db() as db:
                db.execute(
                    "UPDATE jobs SET status=?, finished_at=?, progress=? WHERE id=? AND status=?",
                    (JobStatus.CANCELLED.value, time.time(), "Cancelled before it started",
                     job_id, JobStatus.QUEUED.value),
                )
        self._update(job_id, cancel_requested=1)
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float = 600, poll: float = 0.25) -> Job:
        end = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status.finished or time.monotonic() > end:
                return job
            time.sleep(poll)

    def recover(self) -> list[str]:
        """After a restart: a job left 'running' by a dead consumer is queued
        again once, then failed with a reason; queued jobs missing from the
        queue are re-enqueued. Returns the ids touched."""
        touched = []
        for job in self.list(limit=10_000, status=JobStatus.RUNNING):
            if job.attempts >= 2:
                self._finish(job.id, JobStatus.FAILED, error=JobError(
                    "The server restarted twice while this job was running.",
                    "Submit it again; if it repeats, the model may crash the converter.",
                ).to_dict())
            else:
                self._update(job.id, status=JobStatus.QUEUED,
                             progress="Re-queued after a server restart")
                self.huey.enqueue(self._task(job.id))
            touched.append(job.id)
        pending = {t.args[0] for t in self.huey.pending() if t.args}
        for job in self.list(limit=10_000, status=JobStatus.QUEUED):
            if job.id not in pending and job.id not in touched:
                self.huey.enqueue(self._task(job.id))
                touched.append(job.id)
        return touched

    def _finish(self, job_id: str, status: JobStatus, *, error: dict[str, Any] | None = None,
                result: dict[str, Any] | None = None, progress: str | None = None) -> None:
        cols: dict[str, Any] = {"status": status, "finished_at": time.time()}
        if error is not None:
            cols["error"] = error
        if result is not None:
            cols["result"] = result
        if progress is not None:
            cols["progress"] = progress
        self._update(job_id, **cols)

    # -- running (inside a consumer)
    def run(self, job_id: str, pool: Any = None) -> None:
        job = self.get(job_id)
        if job.status is not JobStatus.QUEUED:
            return  # cancelled while queued, or already handled
        self._update(job_id, status=JobStatus.RUNNING, started_at=time.time(),
                     attempts=job.attempts + 1, progress="Starting")
        ctx = JobContext(self, self.get(job_id), pool)
        try:
            runner = RUNNERS[job.kind]
            result = runner(ctx)
        except StudioError as e:
            status = JobStatus.CANCELLED if ctx.cancel.is_set() else JobStatus.FAILED
            self._finish(job_id, status, error=None if status is JobStatus.CANCELLED
                         else e.to_dict(), progress="Cancelled" if
                         status is JobStatus.CANCELLED else "Failed")
            return
        except Exception as e:  # noqa: BLE001  (a bug must fail one job, not the consumer)
            self._finish(job_id, JobStatus.FAILED, error=StudioError(
                f"Unexpected error: {type(e).__name__}: {str(e)[:300]}",
                "This is a bug in TFLite Studio; the server log has details.",
                phase=Phase.JOB).to_dict(), progress="Failed")
            import logging

            logging.getLogger("tflite_studio").exception("job %s failed", job_id)
            return
        finally:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
        self._finish(job_id, JobStatus.DONE, result=result, progress="Done")


class _CancelFlag:
    """Looks like threading.Event to ``run_isolated``; asks the database,
    at most every half second, whether someone cancelled the job."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._set = False
        self._checked = 0.0

    def is_set(self) -> bool:
        now = time.monotonic()
        if not self._set and now - self._checked > 0.5:
            self._checked = now
            self._set = self.store.get(self.job_id).cancel_requested
        return self._set


class JobContext:
    """What a runner gets: the job, a work folder, progress, cancel, the pool."""

    def __init__(self, store: JobStore, job: Job, pool: Any) -> None:
        self.store = store
        self.job = job
        self.pool = pool
        self.workdir = store.job_dir(job.id) / "work"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cancel = _CancelFlag(store, job.id)

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
        p = self.workdir / "files" / key / os.path.basename(info["name"])
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(self.store.artifact_path(info["sha"]), p)
        return p

    def progress(self, message: str) -> None:
        self.store._update(self.job.id, progress=message)


def _run_convert(ctx: JobContext) -> dict[str, Any]:
    from core.convert import convert_model
    from core.options import ConversionOptions
    from core.worker import WorkerLimits

    d = dict(ctx.job.params.get("options", {}))
    cal = ctx.file("calibration")
    if cal is not None:
        d["calibration_path"] = str(cal)
    options = ConversionOptions.from_dict(d)
    out = ctx.workdir / "model.tflite"
    s = ctx.store.settings
    result = convert_model(
        ctx.input_path, out, options, workdir=ctx.workdir / "convert",
        display_name=ctx.job.model_name,
        limits=WorkerLimits(s.timeout_s, s.memory_mb << 20, 4 << 30),
        pool=ctx.pool, on_progress=ctx.progress, cancel=ctx.cancel,
    )
    out_sha, out_size = ctx.store.put_artifact(out)
    ctx.progress("Building the report")
    report_sha = _store_report(ctx, out, result.input_kind, result.input_size)
    return {"conversion": result.to_dict(), "output_sha": out_sha, "output_size": out_size,
            "report_sha": report_sha}


def _store_report(ctx: JobContext, tflite: Path, kind: str | None, size: int | None) -> str | None:
    from core.report import build_report, render

    report = build_report(tflite, source_kind=kind, source_size=size)
    sha, _ = ctx.store.put_artifact(render(report, "json").encode())
    return sha


def _run_inspect(ctx: JobContext) -> dict[str, Any]:
    ctx.progress("Reading the FlatBuffer")
    path = ctx.input_path
    report_sha = _store_report(ctx, path, None, None)
    return {"output_sha": ctx.job.input_sha, "output_size": ctx.job.input_size,
            "report_sha": report_sha}


# kind -> runner; other modules (evaluation) add theirs here.
RUNNERS: dict[JobKind, Callable[[JobContext], dict[str, Any]]] = {
    JobKind.CONVERT: _run_convert,
    JobKind.INSPECT: _run_inspect,
}


def _make_huey(st: JobStore) -> Any:
    from huey import RedisHuey, SqliteHuey

    if st.settings.redis_url:
        h = RedisHuey("tflite-studio", url=st.settings.redis_url, results=False)
    else:
        h = SqliteHuey("tflite-studio", filename=str(st.root / "queue.db"), results=False)

    @h.task(name="tflite_studio.run_job")
    def run_job(job_id: str) -> None:
        st.run(job_id, pool=getattr(h, "_tflite_pool", None))

    h._tflite_studio_task = run_job
    return h


# ---------------------------------------------------------------- module-level API

_stores: dict[Path, JobStore] = {}
_stores_lock = threading.Lock()


def store(settings: Settings | None = None) -> JobStore:
    """The process's JobStore for the configured data folder."""
    s = settings or load_settings()
    with _stores_lock:
        st = _stores.get(s.data_dir)
        if st is None:
            st = _stores[s.data_dir] = JobStore(s)
        return st


def submit(kind: JobKind, upload: Any, **kw: Any) -> Job:
    return store().submit(kind, upload, **kw)


def get(job_id: str) -> Job:
    return store().get(job_id)


def list_jobs(limit: int = 200, user: str | None = None) -> list[Job]:
    return store().list(limit=limit, user=user)


def cancel(job_id: str) -> Job:
    return store().cancel(job_id)


def wait(job_id: str, timeout: float = 600) -> Job:
    return store().wait(job_id, timeout)


def artifact_path(sha: str) -> Path:
    return store().artifact_path(sha)


def put_artifact(source: Any) -> tuple[str, int]:
    return store().put_artifact(source)


class _ThreadConsumer:
    """A Huey consumer run from any thread (Huey's own installs signal
    handlers, which only the main thread may do)."""

    def __init__(self, st: JobStore, workers: int, warm: bool) -> None:
        from huey.consumer import Consumer

        class _Consumer(Consumer):  # type: ignore[misc]
            def _set_signal_handlers(self) -> None:
                if threading.current_thread() is threading.main_thread():
                    super()._set_signal_handlers()

        h = st.huey
        if warm:
            from core.worker import WarmPool, WorkerLimits

            s = st.settings
            h._tflite_pool = WarmPool(
                size=max(1, workers),
                limits=WorkerLimits(s.timeout_s, s.memory_mb << 20, 4 << 30),
                log_dir=st.root / "worker-logs",
            )
            threading.Thread(target=h._tflite_pool.fill, daemon=True).start()
        self.consumer = _Consumer(h, workers=workers, worker_type="thread", periodic=False,
                                  initial_delay=0.05, max_delay=0.5, backoff=1.1,
                                  check_worker_health=False)
        self.store = st

    def start(self) -> None:
        self.store.recover()
        self.consumer.start()

    def stop(self) -> None:
        self.consumer.stop(graceful=False)
        pool = getattr(self.store.huey, "_tflite_pool", None)
        if pool is not None:
            pool.close()


def start_consumer(settings: Settings | None = None, workers: int | None = None,
                   warm: bool = True) -> _ThreadConsumer:
    """Start Huey workers in this process (threads; each job's TensorFlow work
    runs in its own limited child process)."""
    st = store(settings)
    c = _ThreadConsumer(st, workers if workers is not None else st.settings.workers, warm)
    c.start()
    return c
