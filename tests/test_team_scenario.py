"""The team server's "done when", in one run: two people and the CLI submit at
once through a real server, one job's TensorFlow process is killed, the
server restarts mid-queue — and every job ends done, or failed with a reason,
as History shows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests
from server_helpers import ROOT, studio_server, tiny_model, wait_for
from streamlit.testing.v1 import AppTest

from core.server.jobs import JobStatus, JobStore
from core.server.settings import Settings

pytestmark = pytest.mark.slow
PASSWORD = "team-secret"
FINISHED = ("done", "failed", "cancelled")


def _submit(srv, model, user: str, preset: str) -> str:
    with open(model, "rb") as f:
        r = requests.post(
            srv.url("/api/jobs"),
            files={"model": (model.name, f)},
            data={"preset": preset},
            auth=(user, PASSWORD),
            timeout=30,
        )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _status(srv, job_id: str) -> dict:
    r = requests.get(srv.url(f"/api/jobs/{job_id}"), auth=("ann", PASSWORD), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_submit_kill_restart_every_job_ends_with_a_reason(tmp_path, monkeypatch):
    model = tiny_model(tmp_path)
    data = tmp_path / "data"
    store = JobStore(Settings(data_dir=data))
    with studio_server(data, password=PASSWORD, workers="1") as srv:
        # two people and the CLI, at once; one worker, so the rest queue
        victim = _submit(srv, model, "ann", "float32")
        bob = _submit(srv, model, "bob", "dynamic")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TFLITE_STUDIO_PASSWORD": PASSWORD}
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "core.cli",
                "submit",
                str(model),
                "--server",
                srv.base,
                "--user",
                "carl",
                "--preset",
                "float16",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        carl = __import__("json").loads(cli.stdout)["id"]

        # kill the TensorFlow process of the running job
        pid = wait_for(
            lambda: (lambda j: j.pid if j.status is JobStatus.RUNNING else None)(store.get(victim)),
            timeout=120,
            what="the first job's worker pid",
        )
        os.kill(pid, signal.SIGKILL)
        killed = wait_for(
            lambda: (lambda j: j if j["status"] in FINISHED else None)(_status(srv, victim)),
            timeout=60,
            what="the killed job to end",
        )
        assert killed["status"] == "failed"
        assert "killed" in killed["error"]["message"] and killed["error"]["hint"]

        # the worker lives on: the next job starts; restart while it runs
        wait_for(
            lambda: (
                _status(srv, bob)["status"] == "running" or _status(srv, bob)["status"] in FINISHED
            ),
            timeout=120,
            what="bob's job",
        )
    with studio_server(data, password=PASSWORD, workers="1") as srv:
        ends = {
            i: wait_for(
                lambda i=i: (lambda j: j if j["status"] in FINISHED else None)(_status(srv, i)),
                timeout=240,
                every=0.5,
                what=f"job {i}",
            )
            for i in (bob, carl)
        }
    assert {i: j["status"] for i, j in ends.items()} == {bob: "done", carl: "done"}

    # History, for everyone: all three, with the failure's reason
    monkeypatch.setenv("TFLITE_STUDIO_DATA_DIR", str(data))
    monkeypatch.setenv("TFLITE_STUDIO_EMBEDDED_WORKERS", "0")
    monkeypatch.setenv("TFLITE_STUDIO_PASSWORD", "")
    at = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=30).run()
    at.segmented_control(key="history.who").set_value("all").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["Who"]) == ["ann", "bob", "carl"]
    by_who = dict(zip(table["Who"], table["Status"]))
    assert "failed" in by_who["ann"] and "done" in by_who["bob"] and "done" in by_who["carl"]
    assert all(f"job={i}" in " ".join(table["Open"]) for i in (victim, bob, carl))
    notes = dict(zip(table["Who"], table["Note"]))
    assert "killed" in notes["ann"]  # the reason, not just "failed"
