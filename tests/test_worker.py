"""The isolated worker: every way a task can die fails that task with a plain
message, and the caller goes on to run the next one."""

import pytest

from core.errors import (
    Phase,
    StudioError,
    WorkerCrashed,
    WorkerError,
    WorkerOutOfMemory,
    WorkerTimeout,
)
from core.pipeline.isolation import RunContext, WarmPool, WorkerLimits, run_task
from core.tasks.requests import SelftestRequest, SelftestResult

LIMITS = WorkerLimits(timeout_s=30, memory_bytes=1 << 30, file_bytes=8 << 20)


def run(tmp_path, payload, limits=LIMITS, **kw):
    return run_task(
        SelftestRequest(**payload),
        SelftestResult,
        workdir=tmp_path,
        ctx=RunContext(limits=limits, **kw),
        phase=Phase.CONVERT,
    )


@pytest.mark.parametrize(
    "payload, err_type, words",
    [
        ({"action": "abort"}, WorkerCrashed, "crashed during convert (SIGABRT)"),
        ({"action": "kill"}, WorkerOutOfMemory, "was killed"),
        ({"action": "alloc", "bytes": 2 << 30}, WorkerOutOfMemory, "ran out of memory"),
        ({"action": "write", "bytes": 16 << 20}, WorkerError, "larger than"),
        ({"action": "raise"}, StudioError, "selftest error"),
        ({"action": "missing"}, StudioError, "Unexpected error: FileNotFoundError"),
    ],
)
def test_each_death_is_a_plain_message_and_the_next_task_runs(tmp_path, payload, err_type, words):
    with pytest.raises(err_type) as e:
        run(tmp_path, payload)
    assert words in e.value.message
    assert e.value.hint
    assert "Traceback" not in str(e.value)
    # the caller goes on
    assert run(tmp_path, {"action": "echo", "echo": 7}).echo == 7


def test_timeout_kills_the_task(tmp_path):
    with pytest.raises(WorkerTimeout, match="longer than 1 s"):
        run(
            tmp_path,
            {"action": "sleep", "seconds": 60},
            limits=WorkerLimits(timeout_s=1, memory_bytes=1 << 30, file_bytes=1 << 20),
        )


def test_progress_reaches_the_caller(tmp_path):
    seen = []
    run(tmp_path, {"action": "echo"}, on_progress=seen.append)
    assert seen == ["selftest started"]


def test_cancel_stops_a_running_task(tmp_path):
    import threading

    ev = threading.Event()
    threading.Timer(0.5, ev.set).start()
    with pytest.raises(WorkerError, match="cancelled"):
        run(tmp_path, {"action": "sleep", "seconds": 60}, cancel=ev)


@pytest.mark.slow
def test_warm_pool_has_tensorflow_loaded_and_runs_one_task_per_process(tmp_path):
    pool = WarmPool(size=1, limits=WorkerLimits(timeout_s=60), log_dir=tmp_path / "logs")
    try:
        pool.fill()
        pids = []
        for i in range(2):
            out = run_task(
                SelftestRequest(action="tf"),
                SelftestResult,
                workdir=tmp_path / str(i),
                ctx=RunContext(limits=pool.limits, pool=pool, on_start=pids.append),
            )
            assert out.tf.startswith("2.")
        assert len(set(pids)) == 2  # a fresh process per task
    finally:
        pool.close()
