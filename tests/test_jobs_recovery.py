"""Nothing is lost: a stop or a crash mid-queue, dead workers on this or
another machine, and the retention clean-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from server_helpers import ROOT, wait_for
from test_jobs_queue import quick, sleepy

from core.server import jobs
from core.server.jobs import JobKind, JobStatus
from core.server.settings import Settings


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", **{"workers": 1, "lease_s": 30.0, "max_jobs_per_user": 10, **kw}
    )


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except OSError:
        return True


def test_stop_puts_running_jobs_back_and_a_new_consumer_runs_all(tmp_path, monkeypatch):
    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, sleepy)
    s = _settings(tmp_path)
    st = jobs.store(s)
    ids = [
        st.submit(
            JobKind.CONVERT, f"m{i}".encode(), model_name=f"m{i}.zip", params={"seconds": 120}
        ).id
        for i in range(3)
    ]
    first = jobs.start_consumer(s, warm=False)
    try:
        pid = wait_for(lambda: st.get(ids[0]).pid, timeout=30, what="job 1 to run")
    finally:
        first.stop()
    j = st.get(ids[0])
    assert j.status is JobStatus.QUEUED and j.attempts == 0
    assert "server stopped" in j.progress
    assert [st.get(i).status for i in ids[1:]] == [JobStatus.QUEUED] * 2
    wait_for(lambda: _gone(pid), timeout=10, what="the interrupted worker process to end")

    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, quick)
    second = jobs.start_consumer(s, warm=False)
    try:
        for i in ids:
            done = st.wait(i, timeout=30)
            assert done.status is JobStatus.DONE and done.attempts == 1
    finally:
        second.stop()


_CONSUMER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from core.server import jobs
    from core.server.settings import Settings
    from test_jobs_queue import sleepy
    jobs.RUNNERS[jobs.JobKind.CONVERT] = sleepy
    jobs.start_consumer(Settings(data_dir=Path(sys.argv[1]), workers=1, lease_s=30.0,
                                 max_jobs_per_user=10), warm=False)
    print("started", flush=True)
    time.sleep(600)
""")


def test_a_killed_consumer_loses_nothing(tmp_path, monkeypatch):
    """SIGKILL the whole consumer process mid-job: its TensorFlow process is
    orphaned. The next consumer stops the orphan, runs that job again and runs
    the jobs still queued."""
    s = _settings(tmp_path)
    st = jobs.store(s)
    ids = [
        st.submit(
            JobKind.CONVERT, f"m{i}".encode(), model_name=f"m{i}.zip", params={"seconds": 120}
        ).id
        for i in range(3)
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CONSUMER, str(s.data_dir), str(ROOT / "tests")],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        pid = wait_for(lambda: st.get(ids[0]).pid, timeout=60, what="job 1 to run")
        assert st.get(ids[0]).status is JobStatus.RUNNING
    finally:
        proc.kill()
        proc.wait(10)
    time.sleep(0.3)
    assert not _gone(pid), "the orphaned worker should still run until recovered"

    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, quick)
    c = jobs.start_consumer(s, warm=False)
    try:
        wait_for(lambda: _gone(pid), timeout=10, what="recover() to stop the orphan")
        for i in ids:
            assert st.wait(i, timeout=30).status is JobStatus.DONE
        assert st.get(ids[0]).attempts == 2
        assert [st.get(i).attempts for i in ids[1:]] == [1, 1]
    finally:
        c.stop()


def _fake_running(st: jobs.JobStore, worker: str, attempts: int, beat: float) -> str:
    job = st.submit(JobKind.CONVERT, os.urandom(8), model_name="m.zip")
    st.update_record(
        job.id,
        status=JobStatus.RUNNING,
        worker=worker,
        attempts=attempts,
        started_at=beat,
        heartbeat_at=beat,
    )
    return job.id


def test_recover_uses_the_heartbeat_lease_and_gives_up_after_max_attempts(tmp_path):
    s = _settings(tmp_path, lease_s=20.0)
    st = jobs.store(s)
    now = time.time()
    alive_elsewhere = _fake_running(st, "otherhost:1:aa", 1, now)
    dead_elsewhere = _fake_running(st, "otherhost:1:bb", 1, now - 21)
    dead_here = _fake_running(st, f"{jobs.HOST}:999999999:cc", 1, now)
    twice = _fake_running(st, f"{jobs.HOST}:999999999:dd", jobs.MAX_ATTEMPTS, now)
    mine = _fake_running(st, "me", 1, now - 100)
    touched = st.recover(me="me")
    assert sorted(touched) == sorted([dead_elsewhere, dead_here, twice])
    assert st.get(alive_elsewhere).status is JobStatus.RUNNING
    assert st.get(mine).status is JobStatus.RUNNING
    for i in (dead_elsewhere, dead_here):
        j = st.get(i)
        assert j.status is JobStatus.QUEUED and "worker stopped" in j.progress
    failed = st.get(twice)
    assert failed.status is JobStatus.FAILED
    assert "stopped 2 times" in failed.error["message"] and failed.error["hint"]
    pending = {t.args[0] for t in st.huey.pending()}
    assert {dead_elsewhere, dead_here} <= pending


def test_a_queued_job_lost_from_the_queue_is_sent_again(tmp_path, monkeypatch):
    monkeypatch.setitem(jobs.RUNNERS, JobKind.CONVERT, quick)
    s = _settings(tmp_path)
    st = jobs.store(s)
    job = st.submit(JobKind.CONVERT, b"x", model_name="m.zip")
    st.huey.flush()  # the broker lost its message
    st.update_record(job.id, created_at=time.time() - 10)
    c = jobs.start_consumer(s, warm=False)
    try:
        assert st.wait(job.id, timeout=30).status is JobStatus.DONE
    finally:
        c.stop()


# ---------------------------------------------------------------- retention


def _finished(
    st: jobs.JobStore, data: bytes, out: bytes, age_days: float, user: str = "local"
) -> jobs.Job:
    job = st.submit(JobKind.CONVERT, data, model_name="m.zip", user=user)
    osha, osize = st.put_artifact(out)
    rsha, _ = st.put_artifact(json.dumps({"report": out.decode()}).encode())
    t = time.time() - age_days * 86400
    st.update_record(
        job.id,
        status=JobStatus.DONE,
        created_at=t,
        finished_at=t,
        result={"output_sha": osha, "output_size": osize, "report_sha": rsha},
    )
    for sha in (job.input_sha, osha, rsha):
        os.utime(st.artifact_path(sha), (t, t))
    return st.get(job.id)


def test_cleanup_keeps_what_newer_jobs_use(tmp_path):
    s = _settings(tmp_path, retention_days=30)
    st = jobs.store(s)
    old = _finished(st, b"shared input", b"old output", age_days=40)
    new = _finished(st, b"shared input", b"new output", age_days=1)
    queued = st.submit(JobKind.CONVERT, b"queued input", model_name="q.zip")
    orphan_sha, _ = st.put_artifact(b"orphan")
    t = time.time() - 50 * 86400
    os.utime(st.artifact_path(orphan_sha), (t, t))
    fresh_orphan, _ = st.put_artifact(b"fresh orphan")

    dry = st.cleanup(dry_run=True)
    assert dry["jobs"] == 1 and dry["artifacts"] == 3 and dry["dry_run"]
    assert st.has_artifact(old.output_sha) and st.get(old.id).purged_at is None

    r = st.cleanup()
    assert r["job_ids"] == [old.id] and r["artifacts"] == 3 and r["bytes"] > 0
    assert not st.has_artifact(old.output_sha) and not st.has_artifact(old.report_sha)
    assert not st.has_artifact(orphan_sha)
    assert st.has_artifact(old.input_sha)  # the newer job uses it
    assert st.has_artifact(new.output_sha) and st.has_artifact(new.report_sha)
    assert st.has_artifact(queued.input_sha) and st.has_artifact(fresh_orphan)
    assert st.get(old.id).purged_at is not None
    assert st.cleanup()["jobs"] == 0  # nothing left to do

    r = st.cleanup(older_than_days=0.5)
    assert r["job_ids"] == [new.id]
    assert not st.has_artifact(new.input_sha)
    assert st.has_artifact(queued.input_sha)


def test_cleanup_command(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from core.cli.server import cleanup_cmd

    monkeypatch.setenv("TFLITE_STUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TFLITE_STUDIO_PASSWORD", "")
    st = jobs.store()
    old = _finished(st, b"in", b"out", age_days=10)
    r = CliRunner().invoke(cleanup_cmd, ["--older-than", "5", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "would remove the files of 1 job(s) older than 5.0 days" in r.output
    assert st.has_artifact(old.output_sha)
    r = CliRunner().invoke(cleanup_cmd, ["--older-than", "5"])
    assert r.exit_code == 0 and "removed the files of 1 job(s)" in r.output
    assert not st.has_artifact(old.output_sha)


# ---------------------------------------------------------------- the real server


@pytest.mark.slow
def test_server_restart_mid_queue_loses_no_job(tmp_path):
    """``streamlit run app.py`` with one worker, three conversions queued; the
    server is stopped (SIGTERM) while the first runs and started again on the
    same data folder: all three finish."""
    import requests
    from server_helpers import studio_server, tiny_model

    model = tiny_model(tmp_path)
    data = tmp_path / "data"
    with studio_server(data, workers="1") as srv:
        ids = []
        for preset in ("float32", "float16", "dynamic"):
            with open(model, "rb") as f:
                r = requests.post(
                    srv.url("/api/jobs"),
                    files={"model": (model.name, f)},
                    data={"preset": preset},
                    timeout=30,
                )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        wait_for(
            lambda: (
                requests.get(srv.url(f"/api/jobs/{ids[0]}"), timeout=5).json()["status"] != "queued"
            ),
            timeout=60,
            what="job 1 to start",
        )
    st = jobs.JobStore(Settings(data_dir=data))
    states = {i: st.get(i).status for i in ids}
    assert JobStatus.RUNNING not in states.values(), states
    with studio_server(data, workers="1") as srv:
        for i in ids:
            job = wait_for(
                lambda i=i: (
                    lambda j: j if j["status"] in ("done", "failed", "cancelled") else None
                )(requests.get(srv.url(f"/api/jobs/{i}"), timeout=5).json()),
                timeout=180,
                every=0.5,
                what=f"job {i}",
            )
            assert job["status"] == "done", job


@pytest.mark.slow
def test_worker_command_runs_jobs_and_stops_cleanly(tmp_path):
    """``tflite-studio worker``: a standalone consumer on the same data folder,
    as on an extra machine; SIGTERM stops it."""
    import signal

    from server_helpers import tiny_model

    s = _settings(tmp_path)
    st = jobs.JobStore(s)
    model = tiny_model(tmp_path)
    job = st.submit_model(model, model_name=model.name, options={"preset": "float32"})
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TFLITE_STUDIO_DATA_DIR": str(s.data_dir),
        "TFLITE_STUDIO_PASSWORD": "",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from core.cli.server import worker_cmd; worker_cmd()",
            "--workers",
            "1",
            "--no-warm",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        done = st.wait(job.id, timeout=180)
        assert done.status is JobStatus.DONE, done.error
        assert done.worker.split(":")[1] == str(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    assert "1 at once" in out and "stopped" in out
