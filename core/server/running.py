"""Running one job inside a consumer: claim it, call the runner of its kind,
record how it ended. A job's failure, even a bug in its runner, ends that job
only; the consumer goes on."""

from __future__ import annotations

import logging
import shutil
import threading
from typing import TYPE_CHECKING

from core.errors import JobError, Phase, StudioError
from core.pipeline.isolation import WarmPool
from core.server.records import Job, JobKind, JobStatus
from core.server.recovery import worker_id
from core.server.runners import RUNNERS, JobContext, Runner

if TYPE_CHECKING:
    from core.server.jobs import JobStore

__all__ = ["run_job", "runner_for"]

log = logging.getLogger("tflite_studio.jobs")


def runner_for(kind: JobKind) -> Runner:
    if kind not in RUNNERS:
        raise JobError(
            f"This server's workers cannot run {kind.value} jobs.",
            "Update TFLite Studio on every worker machine to the same version.",
        )
    return RUNNERS[kind]


def _requeue_interrupted(st: JobStore, job: Job) -> None:
    """The consumer is stopping: this run does not count as an attempt."""
    st.db.update_if(
        job.id,
        JobStatus.RUNNING,
        status=JobStatus.QUEUED,
        attempts=job.attempts - 1,
        progress="Re-queued: the server stopped while it ran",
        worker="",
        pid=None,
        started_at=None,
    )
    st.enqueue(job.id)


def _unexpected(e: Exception) -> StudioError:
    return StudioError(
        f"Unexpected error: {type(e).__name__}: {str(e)[:300]}",
        "This is a bug in TFLite Studio; the server log has details.",
        phase=Phase.JOB,
    )


def run_job(
    st: JobStore,
    job_id: str,
    pool: WarmPool | None = None,
    *,
    worker: str = "",
    stopping: threading.Event | None = None,
) -> None:
    """Run one job. Never raises for the job's sake."""
    try:
        job = st.db.claim(job_id, worker or worker_id("inline"))
    except JobError:
        return  # no such job (an old message)
    if job is None:
        return  # cancelled while queued, or another consumer has it
    ctx = JobContext(st, job, pool, stopping)
    try:
        result = runner_for(job.kind)(ctx)
    except StudioError as e:
        if ctx.interrupted and not st.get(job_id).cancel_requested:
            _requeue_interrupted(st, job)
        elif ctx.cancel.is_set():
            st.finish(job_id, JobStatus.CANCELLED, progress="Cancelled")
        else:
            st.finish(job_id, JobStatus.FAILED, error=e.to_dict(), progress="Failed")
        return
    except Exception as e:  # a bug in a runner fails its job, not the consumer
        log.exception("job %s failed", job_id)
        st.finish(job_id, JobStatus.FAILED, error=_unexpected(e).to_dict(), progress="Failed")
        return
    finally:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    st.finish(job_id, JobStatus.DONE, result=result, progress="Done")
