"""A model is a program: every worker task runs in the sandbox. These tests
run real code in a real worker (the ``selftest`` task does what a hostile
model's code would) and real hostile SavedModels, and check what they could
not do: reach the network, read hidden folders or secrets, write anywhere but
their scratch folder."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from core.errors import WorkerError
from core.options import ConversionOptions
from core.pipeline.convert import convert_model
from core.pipeline.isolation import RunContext, Sandbox, WorkerLimits, run_task
from core.pipeline.sandbox import sandbox_status
from core.tasks.requests import SelftestRequest, SelftestResult
from tests.helpers.hostile import build_hostile_models

LIMITS = WorkerLimits(timeout_s=60, memory_bytes=2 << 30, file_bytes=8 << 20)
SECRET = "s3cret-value-of-the-server"


@pytest.fixture(scope="module", autouse=True)
def require_sandbox():
    status = sandbox_status()
    if not status.available:
        if os.environ.get("CI"):
            pytest.fail(f"no sandbox in CI: {status.reason}")
        pytest.skip(f"no sandbox here: {status.reason}")


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("TFLITE_STUDIO_PASSWORD", SECRET)
    monkeypatch.setenv("TFLITE_STUDIO_REDIS_URL", "redis://:" + SECRET + "@queue:6379/0")


@pytest.fixture
def data_dir(tmp_path):
    """A stand-in for the server's data folder, with a secret and an artifact."""
    d = tmp_path / "data"
    (d / "artifacts" / "ab").mkdir(parents=True)
    (d / "secret_key").write_text(SECRET)
    (d / "artifacts" / "ab" / "theirs.tflite").write_bytes(b"their model")
    (d / "jobs.db").write_bytes(b"the job records")
    os.chmod(d, 0o700)
    return d


def probe(tmp_path: Path, action: str, target: str = "", hide: tuple[str, ...] = ()) -> str:
    ctx = RunContext(limits=LIMITS, sandbox=Sandbox(hide=hide, required=True))
    res = run_task(
        SelftestRequest(action=action, target=target),
        SelftestResult,
        workdir=tmp_path / f"w-{action}",
        ctx=ctx,
    )
    return res.outcome


def test_no_network_even_to_this_machine(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(5)
    port = srv.getsockname()[1]
    got: list[object] = []

    def accept() -> None:
        try:
            got.append(srv.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    outcome = probe(tmp_path, "connect", f"127.0.0.1:{port}")
    t.join()
    srv.close()
    assert outcome.startswith("error:") and not got, outcome
    assert probe(tmp_path, "connect", "8.8.8.8:53").startswith("error:")


def test_the_environment_holds_no_secret(tmp_path, secret_env):
    outcome = probe(tmp_path, "environ")
    assert outcome.startswith("environ:") and "PATH=" in outcome
    assert SECRET not in outcome and "TFLITE_STUDIO" not in outcome


def test_hidden_folders_and_secrets_cannot_be_read(tmp_path, data_dir):
    hide = (str(data_dir),)
    for target in (
        data_dir / "secret_key",
        data_dir / "jobs.db",
        data_dir / "artifacts" / "ab" / "theirs.tflite",
        Path("/etc/shadow"),
    ):
        outcome = probe(tmp_path, "read", str(target), hide)
        assert outcome.startswith("error:"), (target, outcome)
    assert SECRET not in probe(tmp_path, "read", str(data_dir / "secret_key"), hide)


def test_nothing_outside_the_scratch_folder_can_be_written(tmp_path, data_dir):
    hide = (str(data_dir),)
    code = Path(__file__).resolve().parent.parent / "core" / "planted.py"
    targets = [
        Path("/planted.txt"),
        data_dir / "planted.txt",
        data_dir / "jobs.db",
        data_dir / "artifacts" / "ab" / "theirs.tflite",
        code,
        tmp_path / "planted.txt",
    ]
    for target in targets:
        probe(tmp_path, "write_at", str(target), hide)
    assert not Path("/planted.txt").exists() and not code.exists()
    assert not (data_dir / "planted.txt").exists() and not (tmp_path / "planted.txt").exists()
    assert (data_dir / "jobs.db").read_bytes() == b"the job records"
    assert (data_dir / "artifacts" / "ab" / "theirs.tflite").read_bytes() == b"their model"
    # its own scratch folder is writable (relative paths land there)
    assert probe(tmp_path, "write_at", "mine.txt") == "wrote"


def test_a_required_sandbox_that_cannot_be_made_refuses_the_task(tmp_path, monkeypatch):
    from core.pipeline import isolation, sandbox

    bad = sandbox.SandboxStatus(False, None, "bubblewrap (bwrap) is not installed")
    monkeypatch.setattr(isolation, "sandbox_status", lambda: bad)
    with pytest.raises(WorkerError, match="No sandbox can be created"):
        run_task(
            SelftestRequest(),
            SelftestResult,
            workdir=tmp_path,
            ctx=RunContext(limits=LIMITS, sandbox=Sandbox(required=True)),
        )


# ---------------------------------------------------------------- hostile SavedModels


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    data = base / "data"
    data.mkdir()
    (data / "jobs.db").write_bytes(b"the job records")
    (data / "secret_key").write_text(SECRET)
    planted = base / "planted"  # a folder outside everything the worker is given
    planted.mkdir()
    plan = {
        "on_load": {
            "on_load": [
                {"do": "write", "path": str(planted / "on_load.txt"), "text": "pwned"},
                {"do": "write", "path": str(data / "jobs.db"), "text": "overwritten"},
                {"do": "copy", "from": str(data / "secret_key"), "to": str(planted / "key.txt")},
            ]
        },
        "environ": {
            "on_load": [
                {"do": "copy", "from": "/proc/self/environ", "to": str(planted / "environ.txt")},
            ]
        },
        "network": {"on_load": [{"do": "net", "url": "gs://tflite-studio-exfil/x"}]},
    }
    return build_hostile_models(base / "models", plan), data, planted


@pytest.mark.slow
@pytest.mark.parametrize("name", ["on_load", "environ", "network"])
def test_hostile_savedmodels_run_their_code_only_inside_the_sandbox(
    hostile, tmp_path, name, secret_env
):
    models, data, planted = hostile
    ctx = RunContext(sandbox=Sandbox(hide=(str(data),), required=True))
    out = tmp_path / "m.tflite"
    try:
        convert_model(models / name, out, ConversionOptions(), ctx=ctx)
    except Exception as e:  # noqa: BLE001  (any clear error is fine; what it did is checked below)
        assert getattr(e, "message", "") and "Traceback" not in str(e)
        assert SECRET not in str(e)
    assert list(planted.iterdir()) == []
    assert (data / "jobs.db").read_bytes() == b"the job records"


@pytest.mark.slow
def test_the_same_model_without_a_sandbox_does_plant_its_file(hostile, tmp_path):
    """The hostile model is real: with the sandbox off its initializer writes."""
    models, data, planted = hostile
    ctx = RunContext(sandbox=Sandbox(enabled=False))
    try:
        convert_model(models / "on_load", tmp_path / "m.tflite", ConversionOptions(), ctx=ctx)
    except Exception:  # noqa: BLE001  (the conversion itself fails after the write)
        pass
    try:
        assert (planted / "on_load.txt").read_text() == "pwned"
    finally:
        for p in planted.iterdir():
            p.unlink()
        (data / "jobs.db").write_bytes(b"the job records")


def test_a_shared_server_without_a_sandbox_refuses_to_start(tmp_path):
    """With a password and no usable bwrap, `serve` says why and does not start;
    without a password it starts and warns (checked on the command's output)."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "TFLITE_STUDIO_BWRAP": str(tmp_path / "no-bwrap"),
        "TFLITE_STUDIO_DATA_DIR": str(tmp_path / "data"),
        "TFLITE_STUDIO_PASSWORD": "pw",
    }
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli", "serve", "--port", "1"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "will not start" in proc.stderr
    assert "bubblewrap" in proc.stderr and "Traceback" not in proc.stderr
    env["TFLITE_STUDIO_PASSWORD"] = ""
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli", "inspect", str(tmp_path / "x")],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0  # no such file; the point is the warning before it
    env_ok = {**env, "TFLITE_STUDIO_BWRAP": str(tmp_path / "no-bwrap")}
    (tmp_path / "m.tflite").write_bytes(b"\x00" * 8)
    proc = subprocess.run(
        [sys.executable, "-m", "core.cli", "inspect", str(tmp_path / "m.tflite"), "--no-micro"],
        env=env_ok,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "warning: No sandbox" in proc.stderr


@pytest.mark.skipif(not Path("/usr/bin/bwrap").exists(), reason="no system bubblewrap")
def test_the_system_bubblewrap_works_as_the_fallback(tmp_path):
    """Debian's bwrap (installed by .ci/run) sandboxes as the wheel's does."""
    import json
    import subprocess
    import sys

    code = (
        "import json; from pathlib import Path\n"
        "from core.pipeline.sandbox import sandbox_status\n"
        "from core.pipeline.isolation import RunContext, Sandbox, run_task\n"
        "from core.tasks.requests import SelftestRequest, SelftestResult\n"
        "r = run_task(SelftestRequest(action='connect', target='8.8.8.8:53'), SelftestResult,"
        f" workdir=Path({str(tmp_path)!r}), ctx=RunContext(sandbox=Sandbox(required=True)))\n"
        "print(json.dumps([sandbox_status().binary, r.outcome]))\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "TFLITE_STUDIO_BWRAP": "/usr/bin/bwrap", "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=120
    )
    binary, outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert binary == "/usr/bin/bwrap" and outcome.startswith("error:"), out.stderr
