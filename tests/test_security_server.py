"""The shared server against an attacker: a real server with a password,
hostile SavedModels through the HTTP API and through ``tflite-studio sweep``,
a tampered artifact, forged ``X-Forwarded-For``, cross-site requests, and a
``.tflite`` built to exhaust the server's memory. After each, nothing outside
a task's scratch folder changed, no secret leaked, other users' files are
intact and the server keeps serving."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.crafted import many_ops_model
from tests.helpers.hostile import build_hostile_models
from tests.server_helpers import ROOT, Server, studio_server, tiny_model, wait_for

pytestmark = pytest.mark.slow

PASSWORD = "team-secret-Zq8"
AUTH = ("mallory", PASSWORD)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("security")
    data = base / "data"
    planted = base / "planted"  # where a model would like to drop files
    planted.mkdir()
    with studio_server(data, password=PASSWORD) as srv:
        # a browser login makes the server's signing key (a secret to protect)
        r = requests.post(
            srv.url("/login"),
            data={"name": "bob", "password": PASSWORD},
            allow_redirects=False,
            timeout=10,
        )
        assert r.status_code == 303 and (data / "secret_key").is_file()
        # bob's job first: its files must survive everything below
        model = tiny_model(base)
        with open(model, "rb") as f:
            r = requests.post(
                srv.url("/api/jobs"),
                auth=("bob", PASSWORD),
                files={"model": (model.name, f)},
                data={"preset": "float32"},
                timeout=60,
            )
        assert r.status_code == 201, r.text
        bob = _wait(srv, r.json()["id"], ("bob", PASSWORD))
        assert bob["status"] == "done", bob
        bob_tflite = requests.get(
            srv.url(bob["links"]["model"]), auth=("bob", PASSWORD), timeout=30
        ).content
        yield srv, data, planted, bob, bob_tflite


def _wait(srv: Server, job_id: str, auth=AUTH, timeout: float = 400) -> dict:
    def done():
        j = requests.get(srv.url(f"/api/jobs/{job_id}"), auth=auth, timeout=10).json()
        return j if j["status"] in ("done", "failed", "cancelled") else None

    return wait_for(done, timeout=timeout, every=0.5, what=f"job {job_id}")


def _secrets(data: Path) -> list[str]:
    return [PASSWORD, (data / "secret_key").read_text().strip()]


def _intact(srv: Server, data: Path, bob: dict, bob_tflite: bytes) -> None:
    assert requests.get(srv.url("/_stcore/health"), timeout=10).status_code == 200
    assert requests.get(srv.url("/api"), auth=AUTH, timeout=10).status_code == 200
    listed = requests.get(srv.url("/api/jobs?user=all"), auth=AUTH, timeout=10)
    assert listed.status_code == 200 and any(j["id"] == bob["id"] for j in listed.json()["jobs"])
    got = requests.get(srv.url(bob["links"]["model"]), auth=("bob", PASSWORD), timeout=30)
    assert got.status_code == 200 and got.content == bob_tflite


def _hostile_plan(data: Path, planted: Path, bob: dict) -> dict:
    code = ROOT / "core" / "planted_by_model.py"
    secret_key = data / "secret_key"
    writes = [
        {"do": "write", "path": str(planted / "load.txt"), "text": "pwned"},
        {"do": "write", "path": "/planted_by_model.txt", "text": "pwned"},
        {"do": "write", "path": str(data / "planted.txt"), "text": "pwned"},
        {"do": "write", "path": str(data / "jobs.db"), "text": "overwritten"},
        {"do": "write", "path": str(code), "text": "raise SystemExit"},
    ]
    return {
        "writer": {"on_load": writes},
        "reader": {
            "on_load": [
                {"do": "copy", "from": "/proc/self/environ", "to": str(planted / "env.txt")},
                {"do": "copy", "from": str(secret_key), "to": str(planted / "key.txt")},
            ]
        },
        "network": {"on_load": [{"do": "net", "url": "gs://tflite-studio-exfil/x"}]},
        "serve_writer": {"on_serve": writes},
    }


@pytest.fixture(scope="module")
def hostile(world, tmp_path_factory):
    srv, data, planted, bob, _ = world
    out = tmp_path_factory.mktemp("hostile-models")
    models = build_hostile_models(out, _hostile_plan(data, planted, bob))
    zips = {
        name: Path(shutil.make_archive(str(out / name), "zip", models, name))
        for name in ("writer", "reader", "network", "serve_writer")
    }
    return zips, models


def _nothing_planted(data: Path, planted: Path) -> None:
    assert list(planted.iterdir()) == []
    assert not Path("/planted_by_model.txt").exists()
    assert not (data / "planted.txt").exists()
    assert not (ROOT / "core" / "planted_by_model.py").exists()


@pytest.mark.parametrize("name", ["writer", "reader", "network"])
@pytest.mark.parametrize("preset", ["float32", "int8"])
def test_hostile_models_through_the_api(world, hostile, name, preset):
    srv, data, planted, bob, bob_tflite = world
    zips, models = hostile
    fields = {"preset": preset}
    files = {"model": (f"{name}.zip", zips[name].read_bytes())}
    if preset == "int8":
        files["calibration_data"] = ("cal.npz", (models / "cal.npz").read_bytes())
    r = requests.post(srv.url("/api/jobs"), auth=AUTH, files=files, data=fields, timeout=60)
    assert r.status_code == 201, r.text
    job = _wait(srv, r.json()["id"])
    assert job["status"] in ("done", "failed")
    if job["status"] == "failed":  # a clear message, not a traceback
        assert job["error"]["message"] and job["error"]["hint"]
        assert "Traceback" not in job["error"]["message"]
    _nothing_planted(data, planted)
    text = json.dumps(job)
    for secret in _secrets(data):
        assert secret not in text
    _intact(srv, data, bob, bob_tflite)


def test_hostile_model_through_the_sweep_command(world, hostile, tmp_path):
    """The serving function's code runs in the reference run of a sweep."""
    srv, data, planted, bob, bob_tflite = world
    zips, models = hostile
    env = {
        **os.environ,
        "TFLITE_STUDIO_DATA_DIR": str(data),
        "TFLITE_STUDIO_PASSWORD": PASSWORD,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.cli",
            "sweep",
            str(zips["serve_writer"]),
            "--presets",
            "float32,dynamic",
            "--no-layers",
            "--runs",
            "5",
            "--report",
            str(tmp_path / "r.json"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    assert proc.returncode in (0, 1), out
    _nothing_planted(data, planted)
    for secret in _secrets(data):
        assert secret not in out
    _intact(srv, data, bob, bob_tflite)


def test_the_data_folder_is_the_servers_alone(world):
    srv, data, *_ = world
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "jobs.db").stat().st_mode) == 0o600
    store = data / "artifacts"
    arts = [p for p in store.rglob("*") if p.is_file() and p.relative_to(store).parts[0] != "tmp"]
    assert arts and all(stat.S_IMODE(p.stat().st_mode) == 0o400 for p in arts)


def test_a_tampered_artifact_is_never_served(world):
    srv, data, planted, bob, bob_tflite = world
    import hashlib

    sha = hashlib.sha256(bob_tflite).hexdigest()
    path = data / "artifacts" / sha[:2] / sha
    os.chmod(path, 0o600)
    original = path.read_bytes()
    try:
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0xFF
        path.write_bytes(bytes(flipped))
        r = requests.get(srv.url(bob["links"]["model"]), auth=("bob", PASSWORD), timeout=30)
        assert r.status_code == 500 and r.content != bytes(flipped)
        assert "damaged or changed" in r.json()["error"]["message"]
        page = requests.get(
            srv.url(f"/netron/models/{bob['id']}/m.tflite"), auth=("bob", PASSWORD), timeout=30
        )
        assert page.status_code == 404
        path.write_bytes(original[: len(original) // 2])  # cut short
        r = requests.get(srv.url(bob["links"]["model"]), auth=("bob", PASSWORD), timeout=30)
        assert r.status_code == 500
        assert "does not match its SHA-256" in srv.log_tail(20_000)
    finally:
        path.write_bytes(original)
        os.chmod(path, 0o400)
    r = requests.get(srv.url(bob["links"]["model"]), auth=("bob", PASSWORD), timeout=30)
    assert r.status_code == 200 and r.content == bob_tflite


def test_cross_site_requests_are_refused(world, tmp_path):
    srv, *_ = world
    login = requests.post(
        srv.url("/login"),
        data={"name": "ann", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    jar = {"tflite_studio_session": login.cookies["tflite_studio_session"]}
    model = tiny_model(tmp_path)
    for headers in (
        {"Origin": "http://127.0.0.1:9", "Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
    ):
        with open(model, "rb") as f:
            r = requests.post(
                srv.url("/api/jobs"),
                cookies=jar,
                headers=headers,
                files={"model": (model.name, f)},
                timeout=30,
            )
        assert r.status_code == 403, r.text
        r = requests.delete(
            srv.url("/api/jobs/0123456789abcdef"), cookies=jar, headers=headers, timeout=10
        )
        assert r.status_code == 403
    # the same page's own request goes through
    r = requests.get(srv.url("/api/jobs"), cookies=jar, timeout=10)
    assert r.status_code == 200
    # a websocket from another site is refused at the handshake
    import asyncio

    import websockets

    async def connect(origin: str) -> bool:
        url = srv.base.replace("http", "ws") + "/_stcore/stream"
        try:
            async with websockets.connect(
                url,
                origin=origin,
                additional_headers={
                    "Cookie": f"tflite_studio_session={jar['tflite_studio_session']}"
                },
                open_timeout=10,
            ):
                return True
        except Exception:  # noqa: BLE001  (refused: any failure to open)
            return False

    assert not asyncio.run(connect("http://evil.example"))
    assert asyncio.run(connect(srv.base))


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_million_op_tflite_costs_the_server_nothing(world, tmp_path):
    srv, data, planted, bob, bob_tflite = world
    blob = many_ops_model(999_000)
    before = _rss(srv.proc.pid)
    r = requests.post(
        srv.url("/api/jobs"), auth=AUTH, files={"model": ("huge.tflite", blob)}, timeout=120
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    peak = before
    end = time.monotonic() + 300
    while time.monotonic() < end:
        peak = max(peak, _rss(srv.proc.pid))
        j = requests.get(srv.url(f"/api/jobs/{job_id}"), auth=AUTH, timeout=10).json()
        if j["status"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert j["status"] == "failed" and "999,000 operators" in j["error"]["message"]
    assert peak - before < 300 << 20, (before, peak)
    _intact(srv, data, bob, bob_tflite)


def test_forged_forwarded_for_does_not_reset_the_lockout(world):
    """Last in this module: it locks 127.0.0.1 out for the rest of the window."""
    srv, *_ = world
    codes = []
    for i in range(12):
        r = requests.get(
            srv.url("/api"),
            auth=("eve", "wrong"),
            headers={"X-Forwarded-For": f"10.0.{i}.{i}"},
            timeout=10,
        )
        codes.append(r.status_code)
    # the same as from one address: the tenth wrong password locks it out
    assert codes[:9] == [401] * 9 and codes[9:] == [429, 429, 429]
