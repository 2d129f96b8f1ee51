"""Queue semantics on the embedded engine (SqliteHuey) with a real consumer.

Runners are replaced by small ones so these tests need no TensorFlow; the
ones that need a worker process use the worker's ``selftest`` task, a real
isolated, limited child process.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from server_helpers import wait_for

from core.errors import JobError, ModelFormatError, OptionsError
from core.server import jobs
from core.server.jobs import JobKind, JobStatus
from core.server.settings import Settings


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", **{"workers": 1, "lease_s": 30.0, **kw})


def quick(ctx: jobs.JobContext) -> dict[str, Any]:
    ctx.progress("quick")
    sha, size = ctx.store.put_artifact(b"TFL3" + ctx.job.id.encode())
    return {"output_sha": sha, "output_size": size, "report_sha": None}


def sleepy(ctx: jobs.JobContext) -> dict[str, Any]:
    """Runs a real isolated worker process that sleeps (cancel/kill/timeout target)."""
    from core.pipeline.isolation import run_task
    from core.tasks.requests import SelftestRequest, SelftestResult

    seconds = float(ctx.job.params.get("seconds", 60))
    run_task(
        SelftestRequest(action="sleep", seconds=seconds),
        SelftestResult,
        workdir=ctx.workdir / "w",
        ctx=ctx.run_context,
    )
    return quick(ctx)


@pytest.fixture
def make_consumer():
    started: list[jobs.Consumer] = []

    def make(settings: Settings, **kw: Any) -> jobs.Consumer:
        c = jobs.start_consumer(settings, warm=False, **kw)
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


def test_job_runs_and_everything_persists(tmp_path, monkeypatch, make_consumer):
    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, quick)
    s = _settings(tmp_path)
    st = jobs.store(s)
    make_consumer(s)
    job = st.submit(
        JobKind.CONVERT,
        b"model bytes",
        model_name="m.zip",
        params={"options": {"preset": "dynamic"}},
        user="ann",
    )
    done = st.wait(job.id, timeout=30)
    assert done.status is JobStatus.DONE, done.error
    assert done.attempts == 1 and done.progress == "Done" and done.preset == "dynamic"
    out = st.artifact_path(done.output_sha)
    assert out.read_bytes() == b"TFL3" + job.id.encode()
    assert not os.stat(out).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    # content-addressed: the same bytes are stored once
    assert st.put_artifact(b"model bytes") == (done.input_sha, 11)
    assert len(list((s.data_dir / "artifacts").glob("??/*"))) == 2
    # a new process (a new store on the same folder) sees the same record
    again = jobs.JobStore(s).get(job.id)
    assert again.status is JobStatus.DONE and again.user == "ann"
    assert not (st.job_dir(job.id) / "work").exists()


def test_one_worker_runs_jobs_in_submission_order(tmp_path, monkeypatch, make_consumer):
    order: list[str] = []

    def record(ctx: jobs.JobContext) -> dict[str, Any]:
        order.append(ctx.job.model_name)
        return {}

    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, record)
    s = _settings(tmp_path, max_jobs_per_user=10)
    st = jobs.store(s)
    ids = [
        st.submit(JobKind.CONVERT, f"m{i}".encode(), model_name=f"m{i}.zip").id for i in range(5)
    ]
    make_consumer(s)
    for i in ids:
        assert st.wait(i, timeout=30).status is JobStatus.DONE
    assert order == [f"m{i}.zip" for i in range(5)]


def test_cancel_queued_job_never_runs(tmp_path, monkeypatch, make_consumer):
    ran: list[str] = []
    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, lambda ctx: ran.append(ctx.job.id) or {})
    s = _settings(tmp_path)
    st = jobs.store(s)
    job = st.submit(JobKind.CONVERT, b"x", model_name="m.zip")
    assert st.queue_position(job) == 1
    cancelled = st.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert st.queue_position(cancelled) is None
    other = st.submit(JobKind.CONVERT, b"y", model_name="n.zip")
    make_consumer(s)
    assert st.wait(other.id, timeout=30).status is JobStatus.DONE
    assert ran == [other.id]
    assert st.get(job.id).status is JobStatus.CANCELLED


def test_cancel_running_job_kills_its_process(tmp_path, monkeypatch, make_consumer):
    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, sleepy)
    s = _settings(tmp_path)
    st = jobs.store(s)
    make_consumer(s)
    job = st.submit(JobKind.CONVERT, b"x", model_name="m.zip", params={"seconds": 120})
    pid = wait_for(lambda: st.get(job.id).pid, timeout=30, what="the worker pid")
    with pytest.raises(JobError, match="only they can cancel"):
        st.cancel(job.id, by="someone else")
    st.cancel(job.id, by="local")
    done = st.wait(job.id, timeout=15)
    assert done.status is JobStatus.CANCELLED and done.error is None
    wait_for(
        lambda: (
            not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
        ),
        timeout=10,
        what="the cancelled worker process to end",
    )


def test_a_runner_bug_fails_one_job_and_the_consumer_goes_on(tmp_path, monkeypatch, make_consumer):
    def buggy(ctx: jobs.JobContext) -> dict[str, Any]:
        if ctx.job.model_name == "bad.zip":
            raise KeyError("oops")
        return quick(ctx)

    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, buggy)
    s = _settings(tmp_path)
    st = jobs.store(s)
    make_consumer(s)
    bad = st.submit(JobKind.CONVERT, b"1", model_name="bad.zip")
    good = st.submit(JobKind.CONVERT, b"2", model_name="good.zip")
    b = st.wait(bad.id, timeout=30)
    assert b.status is JobStatus.FAILED
    assert "Unexpected error: KeyError" in b.error["message"]
    assert st.wait(good.id, timeout=30).status is JobStatus.DONE


def test_timeout_fails_the_job_with_a_plain_message(tmp_path, monkeypatch, make_consumer):
    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, sleepy)
    s = _settings(tmp_path, timeout_s=1.5)
    st = jobs.store(s)
    make_consumer(s)
    job = st.submit(JobKind.CONVERT, b"x", model_name="m.zip", params={"seconds": 60})
    done = st.wait(job.id, timeout=30)
    assert done.status is JobStatus.FAILED
    assert done.error["type"] == "WorkerTimeout"
    assert "longer than 2 s" in done.error["message"] and done.error["hint"]


def test_per_user_and_queue_limits(tmp_path):
    s = _settings(tmp_path, max_jobs_per_user=2, max_queue=3)
    st = jobs.store(s)  # no consumer: everything stays queued
    for _ in range(2):
        st.submit(JobKind.CONVERT, b"a", model_name="m.zip", user="ann")
    with pytest.raises(JobError, match="already have 2 jobs") as e:
        st.submit(JobKind.CONVERT, b"a", model_name="m.zip", user="ann")
    assert e.value.details["code"] == "too_many_jobs" and "cancel" in e.value.hint
    st.submit(JobKind.CONVERT, b"a", model_name="m.zip", user="bob")
    with pytest.raises(JobError, match="queue is full") as e:
        st.submit(JobKind.CONVERT, b"a", model_name="m.zip", user="cid")
    assert e.value.details["code"] == "queue_full"
    # a cancelled job frees its place
    st.cancel(st.list(user="ann")[0].id)
    st.submit(JobKind.CONVERT, b"a", model_name="m.zip", user="ann")


def test_limits_hold_when_many_submit_at_once(tmp_path):
    s = _settings(tmp_path, max_jobs_per_user=3, max_queue=100)
    st = jobs.store(s)
    ok, refused = [], []
    barrier = threading.Barrier(12)

    def one(i: int) -> None:
        barrier.wait()
        try:
            ok.append(
                st.submit(JobKind.CONVERT, f"m{i}".encode(), model_name="m.zip", user="ann").id
            )
        except JobError:
            refused.append(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(ok) == 3 and len(refused) == 9
    assert st.count(jobs.ACTIVE, user="ann") == 3


def test_upload_size_limit(tmp_path):
    s = _settings(tmp_path, max_upload_mb=1)
    st = jobs.store(s)
    big = b"x" * ((1 << 20) + 1)
    with pytest.raises(JobError, match="over the 1 MiB limit") as e:
        st.submit(JobKind.CONVERT, big, model_name="m.zip")
    assert e.value.details["code"] == "too_large"
    f = tmp_path / "big.zip"
    f.write_bytes(big)
    with pytest.raises(JobError, match="1 MiB"):
        st.submit(JobKind.CONVERT, f, model_name="big.zip")
    with pytest.raises(JobError, match="1 MiB"), st.artifact_writer(1 << 20) as w:
        for _ in range(3):
            w.write(b"y" * (600 << 10))
    assert st.list() == []
    assert list((s.data_dir / "artifacts").glob("??/*")) == []
    assert list((s.data_dir / "artifacts" / "tmp").iterdir()) == []


def test_a_duplicate_queue_message_runs_the_job_once(tmp_path, monkeypatch, make_consumer):
    runs: list[str] = []

    def count(ctx: jobs.JobContext) -> dict[str, Any]:
        runs.append(ctx.job.id)
        time.sleep(0.3)
        return {}

    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, count)
    s = _settings(tmp_path, workers=2)
    st = jobs.store(s)
    job = st.submit(JobKind.CONVERT, b"x", model_name="m.zip")
    st.enqueue(job.id)  # e.g. recover() raced with a consumer that had it
    st.enqueue(job.id)
    c = make_consumer(s, workers=2)
    assert st.wait(job.id, timeout=30).status is JobStatus.DONE
    wait_for(lambda: len(st.huey.pending()) == 0, timeout=10, what="the queue to drain")
    c.stop()  # joins the workers: any second run would have happened by now
    assert runs == [job.id] and st.get(job.id).attempts == 1


def test_a_failed_job_names_the_upload_not_its_hash(tmp_path, make_consumer):
    s = _settings(tmp_path)
    st = jobs.store(s)
    make_consumer(s)
    job = st.submit(
        JobKind.CONVERT,
        b"PK\x03\x04 cut short",
        model_name="my_model.zip",
        params={"options": {"preset": "float32"}},
    )
    done = st.wait(job.id, timeout=60)
    assert done.status is JobStatus.FAILED
    assert done.error["message"].startswith("my_model.zip ")
    assert done.input_sha not in done.error["message"]


def test_names_from_uploads_cannot_escape_the_job_folder(tmp_path):
    st = jobs.store(_settings(tmp_path))
    assert st.submit(JobKind.CONVERT, b"x", model_name="../../etc/passwd").model_name == "passwd"
    assert st.submit(JobKind.CONVERT, b"x", model_name="..", user="b").model_name == "model"
    assert (
        st.submit(JobKind.CONVERT, b"x", model_name="C:\\x\\m.zip", user="c").model_name == "m.zip"
    )
    assert jobs.safe_user("  ann\x00\n ") == "ann" and jobs.safe_user("") == "local"
    with pytest.raises(JobError, match="no job"):
        st.get("../jobs.db")


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/saved_model.pb", b"not really")
    return buf.getvalue()


def test_submit_model_detects_the_format_and_checks_options(tmp_path):
    st = jobs.store(_settings(tmp_path, max_jobs_per_user=10))
    tfl = b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64
    assert st.submit_model(tfl, model_name="a.tflite").kind is JobKind.INSPECT
    job = st.submit_model(
        _zip_bytes(),
        model_name="m.zip",
        options={"preset": "int8", "input_shapes": {"x": [1, 4]}},
        calibration=b"npz",
        calibration_name="cal.npz",
    )
    assert job.kind is JobKind.CONVERT and job.preset == "int8"
    assert job.params["options"]["input_shapes"] == {"x": [1, 4]}
    assert job.params["files"]["calibration"]["name"] == "cal.npz"
    assert st.artifact_path(job.params["files"]["calibration"]["sha"]).read_bytes() == b"npz"
    with pytest.raises(ModelFormatError, match="not a model format"):
        st.submit_model(b"hello", model_name="notes.txt")
    with pytest.raises(OptionsError, match="Unknown preset"):
        st.submit_model(_zip_bytes(), model_name="m.zip", options={"preset": "int3"})
    assert len(st.list()) == 2
