"""Real conversions through the queue: each in its own limited TensorFlow
process. A killed process fails only its job; many jobs at once all finish."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from server_helpers import ROOT, tiny_model, wait_for

from core.server import jobs
from core.server.jobs import JobStatus
from core.server.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("models"))


def _calibration() -> Path | None:
    p = ROOT / "sample_models" / "digits_calibration.npz"
    return p if p.is_file() else None


def test_killed_tensorflow_process_fails_its_job_and_the_next_runs(tmp_path, model):
    s = Settings(data_dir=tmp_path / "data", workers=1, max_jobs_per_user=10)
    st = jobs.store(s)
    c = jobs.start_consumer(s, warm=False)
    try:
        victim = st.submit_model(model, model_name=model.name, options={"preset": "dynamic"})
        after = st.submit_model(model, model_name=model.name, options={"preset": "float16"})
        pid = wait_for(lambda: st.get(victim.id).pid, timeout=60, what="the worker pid")
        os.killpg(pid, signal.SIGKILL)
        failed = st.wait(victim.id, timeout=60)
        assert failed.status is JobStatus.FAILED
        assert failed.error["type"] == "WorkerOutOfMemory"
        assert "killed" in failed.error["message"] and failed.error["hint"]
        done = st.wait(after.id, timeout=180)
        assert done.status is JobStatus.DONE, done.error
        out = st.artifact_path(done.output_sha).read_bytes()
        assert out[4:8] == b"TFL3"
        assert done.result["conversion"]["preset"] == "float16"
    finally:
        c.stop()


def test_eight_jobs_submitted_at_once_all_complete(tmp_path, model):
    s = Settings(data_dir=tmp_path / "data", workers=2, max_jobs_per_user=8)
    st = jobs.store(s)
    c = jobs.start_consumer(s, warm=True)
    presets = ["float32", "float16", "dynamic", "int8-float-io"] * 2
    ids: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    cal = _calibration()

    def one(preset: str) -> None:
        try:
            job = st.submit_model(
                model,
                model_name=model.name,
                options={"preset": preset},
                calibration=cal if preset.startswith("int8") else None,
                user="ann",
            )
            with lock:
                ids.append(job.id)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    try:
        threads = [threading.Thread(target=one, args=(p,)) for p in presets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and len(ids) == 8
        for i in ids:
            done = st.wait(i, timeout=400)
            assert done.status is JobStatus.DONE, done.error
            assert st.artifact_path(done.output_sha).read_bytes()[4:8] == b"TFL3"
        assert sorted(st.get(i).preset for i in ids) == sorted(presets)
    finally:
        c.stop()
