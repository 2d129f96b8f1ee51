"""The Huey queue (SQLite on one machine, Redis across machines) and the
consumer that runs its jobs on threads of this process.

A queue message carries only a job id: the job's state lives in its record,
so a lost message is found again (``recover``) and a duplicate is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.pipeline.isolation import WarmPool, WorkerLimits
from core.server.db import private_file
from core.server.recovery import worker_id
from core.server.settings import Settings, sandbox_for

if TYPE_CHECKING:
    from core.server.jobs import JobStore

__all__ = ["JobQueue", "Consumer"]

log = logging.getLogger("tflite_studio.jobs")


class JobQueue:
    """The Huey instance of one data folder (made on first use) and its one
    task, which hands a job id to ``run``."""

    def __init__(self, settings: Settings, root: Path, run: Callable[[str], None]) -> None:
        self.settings = settings
        self.root = root
        self._run = run
        self._huey: Any = None
        self._task: Any = None
        self._lock = threading.Lock()

    @property
    def huey(self) -> Any:
        with self._lock:
            if self._huey is None:
                self._huey, self._task = self._make()
            return self._huey

    def _make(self) -> tuple[Any, Any]:
        from huey import RedisHuey, SqliteHuey

        s = self.settings
        if s.redis_url:
            h = RedisHuey("tflite-studio", url=s.redis_url, results=False)
        else:
            private_file(self.root / "queue.db")
            h = SqliteHuey(
                "tflite-studio", filename=str(self.root / "queue.db"), results=False, timeout=30
            )
        run = self._run

        @h.task(name="tflite_studio.run_job")
        def run_job(job_id: str) -> None:
            run(job_id)

        return h, run_job

    def enqueue(self, job_id: str) -> None:
        try:
            huey = self.huey
            huey.enqueue(self._task.s(job_id))
        except Exception:  # the broker is down: the record stays queued and recover() re-sends it
            log.exception("could not enqueue job %s; it will be re-sent by recover()", job_id)

    def pending(self) -> set[str]:
        """The job ids waiting in the broker."""
        return {t.args[0] for t in self.huey.pending() if t.args}


class Consumer:
    """Huey workers run from any thread of this process (Huey's own consumer
    installs signal handlers, which only the main thread may do; the caller
    handles signals). Each job's TensorFlow work runs in its own limited child
    process. Also keeps the heartbeat of its running jobs and re-queues the
    jobs of dead consumers (``JobStore.recover``)."""

    def __init__(self, st: JobStore, workers: int, warm: bool) -> None:
        from huey.consumer import Consumer as HueyConsumer

        class _Consumer(HueyConsumer):
            def _set_signal_handlers(self) -> None:
                pass

        self.store = st
        self.id = worker_id(uuid.uuid4().hex[:6])
        self.stopping = threading.Event()
        self.pool: WarmPool | None = None
        if warm:
            self.pool = WarmPool(
                size=max(1, workers),
                limits=WorkerLimits.from_settings(st.settings),
                log_dir=st.root / "worker-logs",
                sandbox=sandbox_for(st.settings),
                scratch_root=str(st.root / "sandbox"),
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
                self.store.db.heartbeat(self.id)
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + s.lease_s / 2
                    self.store.recover(me=self.id)
            except Exception:  # a locked or unreachable database: beat again next time
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
