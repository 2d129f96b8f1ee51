"""Jobs whose worker is gone: found, their orphaned TensorFlow process
stopped, and re-queued (at most ``MAX_ATTEMPTS`` runs, then failed with the
reason); queued jobs the broker lost are sent again.

A worker id is ``host:pid:tag``. A worker on this machine is gone when its
process is; one on another machine when its heartbeat is older than
``settings.lease_s``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import JobError
from core.server.db import JobDB
from core.server.records import Job, JobStatus

if TYPE_CHECKING:
    from core.server.queue import JobQueue

__all__ = ["HOST", "MAX_ATTEMPTS", "worker_id", "pid_alive", "worker_gone", "recover"]

log = logging.getLogger("tflite_studio.jobs")

MAX_ATTEMPTS = 2  # runs of one job cut short by a dead worker before it fails
HOST = socket.gethostname()


def worker_id(tag: str) -> str:
    """``host:pid:tag``: what ``worker_gone`` reads back."""
    return f"{HOST}:{os.getpid()}:{tag}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_gone(job: Job, now: float, lease_s: float) -> bool:
    host, _, rest = job.worker.partition(":")
    pid = rest.split(":", 1)[0]
    if host == HOST and pid.isdigit() and not pid_alive(int(pid)):
        return True
    beat = job.heartbeat_at or job.started_at or job.created_at
    return now - beat > lease_s


def _kill_orphan(job: Job) -> None:
    """A dead consumer's TensorFlow process (its own process group) may
    still run on this machine: stop it before the job runs again."""
    if not job.pid or not job.worker.startswith(HOST + ":"):
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


def _gave_up(job: Job) -> JobError:
    return JobError(
        f"The worker running this job stopped {job.attempts} times "
        "(server restart or crash) before it could finish.",
        "Submit it again; if it repeats, the model may crash the "
        "converter or need more memory than the server allows.",
    )


def _release(db: JobDB, queue: JobQueue, job: Job, now: float) -> bool:
    """Take a dead worker's job back: cancelled if asked, failed after
    ``MAX_ATTEMPTS``, else queued again. False if another consumer did first."""
    _kill_orphan(job)
    cols: dict[str, Any]
    if job.cancel_requested:
        cols = {"status": JobStatus.CANCELLED, "finished_at": now, "progress": "Cancelled"}
    elif job.attempts >= MAX_ATTEMPTS:
        cols = {
            "status": JobStatus.FAILED,
            "finished_at": now,
            "progress": "Failed",
            "error": _gave_up(job).to_dict(),
        }
    else:
        cols = {
            "status": JobStatus.QUEUED,
            "progress": "Re-queued: its worker stopped",
            "worker": "",
            "pid": None,
        }
    if not db.update_if(job.id, JobStatus.RUNNING, held_by=job.worker, **cols):
        return False
    requeued = cols["status"] is JobStatus.QUEUED
    log.warning(
        "job %s: worker %s is gone; %s",
        job.id,
        job.worker,
        "re-queued" if requeued else cols["status"].value,
    )
    if requeued:
        queue.enqueue(job.id)
    return True


def recover(db: JobDB, queue: JobQueue, lease_s: float, me: str | None = None) -> list[str]:
    """Re-queue running jobs whose worker is gone and re-send queued jobs
    missing from the queue. Safe to run from every consumer at once. ``me`` is
    the calling consumer's id (its own jobs are alive). Returns the ids touched."""
    now = time.time()
    touched = [
        job.id
        for job in db.select(limit=100_000, status=JobStatus.RUNNING)
        if job.worker != me and worker_gone(job, now, lease_s) and _release(db, queue, job, now)
    ]
    queued = [
        j
        for j in db.select(limit=100_000, status=JobStatus.QUEUED)
        if j.id not in touched and now - j.created_at > 2  # younger: its message is on its way
    ]
    if queued:
        pending = queue.pending()
        for job in queued:
            if job.id not in pending:
                queue.enqueue(job.id)
                touched.append(job.id)
    return touched
