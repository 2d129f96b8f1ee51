"""The HTTP API on a real ``streamlit run app.py`` server, and the CLI that
talks to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from server_helpers import ROOT, Server, studio_server, tiny_model, wait_for

from core.server.jobs import JobStore
from core.server.settings import Settings

pytestmark = pytest.mark.slow

CAL = ROOT / "sample_models" / "digits_calibration.npz"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with studio_server(tmp_path_factory.mktemp("api") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No workers (jobs stay queued) and small limits."""
    with studio_server(
        tmp_path_factory.mktemp("idle") / "data",
        embedded_workers="0",
        max_upload_mb="1",
        max_jobs_per_user="2",
        max_queue="3",
    ) as srv:
        yield srv


def _post(
    srv: Server, model: Path | None, auth: Any = None, name: str | None = None, **fields: Any
) -> requests.Response:
    files = {}
    if model is not None:
        files["model"] = (name or model.name, model.read_bytes())
    if "calibration_data" in fields:
        cal = fields.pop("calibration_data")
        files["calibration_data"] = (cal.name, cal.read_bytes())
    return requests.post(
        srv.url("/api/jobs"), files=files or None, data=fields, auth=auth, timeout=60
    )


def _wait(srv: Server, job_id: str, timeout: float = 240) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        j = requests.get(srv.url(f"/api/jobs/{job_id}"), timeout=10).json()
        return j if j["status"] in ("done", "failed", "cancelled") else None

    return wait_for(finished, timeout=timeout, every=0.3, what=f"job {job_id}")


def test_convert_poll_download(server, model):
    fields: dict[str, Any] = {"preset": "int8"}
    if CAL.is_file():
        fields["calibration_data"] = CAL
    r = _post(server, model, **fields)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and job["kind"] == "convert"
    assert r.headers["Location"] == f"/api/jobs/{job['id']}"
    assert job["links"]["page"] == f"/inspect?job={job['id']}"
    assert job["preset"] == "int8" and job["model_name"] == model.name
    done = _wait(server, job["id"])
    assert done["status"] == "done", done
    assert done["output_size"] > 0 and done["seconds"] > 0 and done["error"] is None

    r = requests.get(server.url(done["links"]["model"]), timeout=30)
    assert r.status_code == 200 and r.content[4:8] == b"TFL3"
    assert len(r.content) == done["output_size"]
    stem = model.name.rsplit(".", 1)[0]
    assert f'filename="{stem}-int8.tflite"' in r.headers["content-disposition"]
    assert r.headers["etag"]
    r = requests.get(server.url(done["links"]["report"]), timeout=30)
    assert r.status_code == 200
    assert f'filename="{stem}-int8-report.json"' in r.headers["content-disposition"]
    assert json.loads(r.content)["file"]["name"] == f"{stem}-int8.tflite"

    listed = requests.get(server.url("/api/jobs?status=done"), timeout=10).json()["jobs"]
    assert job["id"] in [j["id"] for j in listed]
    mine = requests.get(server.url("/api/jobs?user=me"), timeout=10).json()["jobs"]
    assert all(j["user"] == "local" for j in mine)


def test_a_tflite_upload_becomes_an_inspection(server, model, tmp_path):
    r = _post(server, model, preset="float32")
    tfl = requests.get(
        server.url(_wait(server, r.json()["id"])["links"]["model"]), timeout=30
    ).content
    f = tmp_path / "mine.tflite"
    f.write_bytes(tfl)
    r = _post(server, f)
    assert r.status_code == 201 and r.json()["kind"] == "inspect"
    done = _wait(server, r.json()["id"])
    assert done["status"] == "done", done
    got = requests.get(server.url(done["links"]["model"]), timeout=30)
    assert got.content == tfl and 'filename="mine.tflite"' in got.headers["content-disposition"]
    assert requests.get(server.url(done["links"]["report"]), timeout=30).status_code == 200


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"preset": "int3"}, 400, "Unknown preset"),
        ({"input_shape": "x=1,a"}, 400, "Cannot read the input shape"),
        ({"calibration_samples": "lots"}, 400, "whole number"),
        ({"select_tf_ops": "maybe"}, 400, "not true or false"),
        ({"colour": "red"}, 400, "Unknown field"),
    ],
)
def test_bad_options_are_refused_with_the_fix(idle_server, model, fields, status, words):
    r = _post(idle_server, model, **fields)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert words in err["message"] and err["hint"] and err["phase"] == "options"


def test_bad_uploads_are_refused(idle_server, model, tmp_path):
    r = requests.post(idle_server.url("/api/jobs"), data={"preset": "float32"}, timeout=10)
    assert r.status_code == 415
    r = requests.post(idle_server.url("/api/jobs"), files={"preset": (None, "float32")}, timeout=10)
    assert r.status_code == 400 and "No model file" in r.json()["error"]["message"]
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    r = _post(idle_server, notes)
    assert r.status_code == 400 and r.json()["error"]["phase"] == "load"
    big = tmp_path / "big.zip"
    big.write_bytes(b"PK\x03\x04" + b"\0" * (3 << 20))
    r = _post(idle_server, big)
    assert r.status_code == 413 and "1 MiB" in r.json()["error"]["message"]
    # nothing half-written is left behind
    assert list((idle_server.data / "artifacts" / "tmp").glob("*")) == []


def test_queued_jobs_limits_not_ready_and_cancel(idle_server, model):
    a = _post(idle_server, model, auth=("ann", ""), preset="float32").json()
    b = _post(idle_server, model, auth=("ann", ""), preset="dynamic").json()
    assert (a["queue_position"], b["queue_position"]) == (1, 2)
    assert a["user"] == "ann"
    r = _post(idle_server, model, auth=("ann", ""), preset="float16")
    assert r.status_code == 429 and "already have 2 jobs" in r.json()["error"]["message"]
    assert r.headers["retry-after"]
    c = _post(idle_server, model, auth=("bob", "")).json()
    r = _post(idle_server, model, auth=("cid", ""))
    assert r.status_code == 503 and "queue is full" in r.json()["error"]["message"]

    r = requests.get(idle_server.url(a["links"]["model"]), timeout=10)
    assert r.status_code == 409 and "not ready" in r.json()["error"]["message"]
    r = requests.delete(idle_server.url(a["links"]["self"]), timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = requests.get(idle_server.url(a["links"]["report"]), timeout=10)
    assert r.status_code == 409 and "cancelled" in r.json()["error"]["message"]
    for j in (b, c):
        requests.delete(idle_server.url(j["links"]["self"]), timeout=10)


def test_unknown_jobs_and_path_traversal(idle_server):
    for path in (
        "/api/jobs/0123456789abcdef",
        "/api/jobs/nope/model.tflite",
        "/api/jobs/..%2F..%2Fjobs.db/model.tflite",
        "/api/jobs/%2e%2e/report.json",
        "/api/jobs/..%2fsecret_key",
        "/api/nothing",
    ):
        r = requests.get(idle_server.url(path), timeout=10)
        # 404 from the API, or 400 from Streamlit's own path check in front of it
        assert r.status_code in (400, 404), (path, r.status_code)
        assert b"CREATE TABLE" not in r.content and b"SQLite" not in r.content
    for path in (
        "/netron/models/..%2F..%2Fjobs.db/x.tflite",
        "/netron/models/" + "0" * 64 + "/..%2F..%2Fjobs.db",
        "/netron/..%2F..%2F..%2Fcore%2Fsettings.py",
        "/netron/%2e%2e/setup.py",
    ):
        r = requests.get(idle_server.url(path), timeout=10)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert b"CREATE TABLE" not in r.content and b"import" not in r.content


def test_purged_files_answer_gone(server, model):
    # a finished job whose files the retention clean-up removed
    job = _wait(server, _post(server, model, preset="dynamic", name="old.zip").json()["id"])
    st = JobStore(Settings(data_dir=server.data))
    st.update_record(job["id"], finished_at=1.0, created_at=1.0)
    assert st.cleanup(older_than_days=1)["job_ids"] == [job["id"]]
    r = requests.get(server.url(job["links"]["model"]), timeout=10)
    assert r.status_code == 410 and "retention" in r.json()["error"]["message"]
    assert requests.get(server.url(job["links"]["self"]), timeout=10).json()["purged"]


def test_cli_submit_status_fetch(server, model, tmp_path, capsys):
    from core.cli.client import fetch_cmd, status_cmd, submit_cmd

    out, rep = tmp_path / "out.tflite", tmp_path / "r.json"
    submit_cmd.main(
        [
            str(model),
            "--server",
            server.base,
            "--preset",
            "float16",
            "--wait",
            "-o",
            str(out),
            "--report",
            str(rep),
            "--user",
            "cli-user",
        ],
        standalone_mode=False,
    )
    job_id = capsys.readouterr().out.strip()
    assert out.read_bytes()[4:8] == b"TFL3" and json.loads(rep.read_text())["file"]
    status_cmd.main([job_id, "--server", server.base, "--json"], standalone_mode=False)
    st = json.loads(capsys.readouterr().out)
    assert st["status"] == "done" and st["user"] == "cli-user" and st["preset"] == "float16"
    again = tmp_path / "again.tflite"
    fetch_cmd.main([job_id, "--server", server.base, "-o", str(again)], standalone_mode=False)
    assert again.read_bytes() == out.read_bytes()

    from core.errors import StudioError

    with pytest.raises(StudioError, match="There is no job"):
        status_cmd.main(["0123456789abcdef", "--server", server.base], standalone_mode=False)
    with pytest.raises(StudioError, match="Cannot reach the server"):
        status_cmd.main([job_id, "--server", "http://127.0.0.1:9"], standalone_mode=False)


# ---------------------------------------------------------------- one job, not two


def test_an_identical_submission_answers_with_the_same_job(idle_server, model):
    """A CI retry (or a double click) while the first job waits queues nothing new;
    ``force=true`` does."""
    first = _post(idle_server, model, auth=("dan", ""), preset="dynamic", select_tf_ops="true")
    assert first.status_code == 201 and first.json()["reused"] is False
    again = _post(idle_server, model, auth=("dan", ""), preset="dynamic", select_tf_ops="true")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["reused"] is True
    other = _post(idle_server, model, auth=("dan", ""), preset="dynamic")  # other options
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    forced = _post(
        idle_server, model, auth=("eve", ""), preset="dynamic", select_tf_ops="true", force="true"
    )
    assert forced.status_code == 201
    for j in (first.json(), other.json(), forced.json()):
        requests.delete(idle_server.url(j["links"]["self"]), timeout=10)


# ---------------------------------------------------------------- every job kind

EVAL = ROOT / "sample_models" / "digits_eval.npz"


def _post_kind(srv: Server, kind: str, files: dict[str, Path], **fields: Any) -> requests.Response:
    return requests.post(
        srv.url("/api/jobs"),
        files={k: (p.name, p.read_bytes()) for k, p in files.items()},
        data={"kind": kind, **fields},
        timeout=60,
    )


@pytest.fixture(scope="module")
def two_tflites(server, model, tmp_path_factory) -> tuple[Path, Path]:
    """float32 and dynamic conversions of the model, downloaded."""
    out = tmp_path_factory.mktemp("tflites")
    paths = []
    for preset in ("float32", "dynamic"):
        done = _wait(server, _post(server, model, preset=preset).json()["id"])
        assert done["status"] == "done", done
        p = out / f"digits-{preset}.tflite"
        p.write_bytes(requests.get(server.url(done["links"]["model"]), timeout=30).content)
        paths.append(p)
    return paths[0], paths[1]


def test_api_index_lists_every_kind_with_its_fields(idle_server):
    kinds = requests.get(idle_server.url("/api"), timeout=10).json()["kinds"]
    assert list(kinds) == [
        "convert", "inspect", "evaluate", "layers", "sweep", "diff", "optimize", "deploy"
    ]  # fmt: skip
    assert "eval_data" in kinds["sweep"]["files"] and "presets" in kinds["sweep"]["fields"]
    assert kinds["diff"]["files"] == ["model", "b"]


def test_sweep_through_the_api(server, model):
    r = _post_kind(
        server,
        "sweep",
        {"model": model, "calibration_data": CAL, "eval_data": EVAL},
        presets="float32,dynamic",
        layer_errors="false",
        runs="5",
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["kind"] == "sweep" and job["links"]["page"] == f"/compare?job={job['id']}"
    done = _wait(server, job["id"], timeout=400)
    assert done["status"] == "done", done
    res = done["result"]
    assert [row["label"] for row in res["rows"]] == ["float32", "dynamic"]
    assert res["recommendation"]["label"] in ("float32", "dynamic")
    assert all(row["size_bytes"] > 0 and row["metrics"]["accuracy"] > 0.9 for row in res["rows"])
    # the recommended .tflite by default, any row by its label; names carry the preset
    rec = res["recommendation"]["label"]
    got = requests.get(server.url(done["links"]["model"]), timeout=30)
    assert got.status_code == 200 and got.content[4:8] == b"TFL3"
    assert f'filename="{model.stem}-{rec}.tflite"' in got.headers["content-disposition"]
    dyn = requests.get(server.url(done["links"]["model"] + "?preset=dynamic"), timeout=30)
    assert f'filename="{model.stem}-dynamic.tflite"' in dyn.headers["content-disposition"]
    assert (
        requests.get(server.url(done["links"]["model"] + "?preset=int8"), timeout=30).status_code
        == 404
    )
    rep = requests.get(server.url(done["links"]["report"]), timeout=30)
    assert rep.json()["kind"] == "sweep"
    assert f'filename="{model.stem}-sweep-report.json"' in rep.headers["content-disposition"]


def test_evaluate_a_given_tflite_through_the_api(server, model, two_tflites):
    _f32, dyn = two_tflites
    r = _post_kind(server, "evaluate", {"model": model, "tflite": dyn, "eval_data": EVAL}, runs="5")
    assert r.status_code == 201, r.text
    done = _wait(server, r.json()["id"])
    assert done["status"] == "done", done
    m = done["result"]["row"]["metrics"]
    assert m["samples"] > 0 and m["top1_agreement"] >= 0.9 and m["accuracy"] > 0.9
    assert done["result"]["row"]["latency_ms"] > 0
    got = requests.get(server.url(done["links"]["model"]), timeout=30)
    assert got.content == dyn.read_bytes()
    res = requests.get(server.url(done["links"]["result"]), timeout=30)
    assert res.status_code == 200 and res.json()["row"]["metrics"]["samples"] == m["samples"]


def test_layers_through_the_api(server, model):
    r = _post_kind(server, "layers", {"model": model, "calibration_data": CAL, "eval_data": EVAL})
    assert r.status_code == 201, r.text
    done = _wait(server, r.json()["id"])
    assert done["status"] == "done", done
    layers = done["result"]["layers"]
    assert layers["preset"] == "int8" and layers["layers"] and layers["worst"]
    rep = requests.get(server.url(done["links"]["report"]), timeout=30)
    assert rep.json()["worst"] == layers["worst"]
    assert f'filename="{model.stem}-int8-layers-report.json"' in rep.headers["content-disposition"]


def test_diff_through_the_api(server, two_tflites):
    f32, dyn = two_tflites
    r = _post_kind(server, "diff", {"model": f32, "b": dyn})
    assert r.status_code == 201, r.text
    done = _wait(server, r.json()["id"])
    assert done["status"] == "done", done
    diff = done["result"]["diff"]
    assert diff["quantized_tensors"] or diff["tensors_changed"]  # dynamic quantizes weights
    md = requests.get(server.url(done["links"]["report_md"]), timeout=30)
    assert md.status_code == 200 and "digits-float32" in md.text


@pytest.mark.parametrize(
    ("kind", "files", "fields", "words"),
    [
        ("sweep", {"model": "f32"}, {}, "already a .tflite file"),
        ("layers", {"model": "zip"}, {"preset": "float16"}, "int8 and int8-float-io"),
        ("diff", {"model": "f32"}, {}, "two .tflite files"),
        (
            "evaluate",
            {"model": "zip"},
            {"colour": "red"},
            "Unknown field(s) for kind=evaluate: colour",
        ),
        ("quantum", {"model": "zip"}, {}, "Unknown kind"),
    ],
)
def test_wrong_job_requests_are_refused_with_the_fix(
    idle_server, model, two_tflites, kind, files, fields, words
):
    paths = {"zip": model, "f32": two_tflites[0]}
    r = _post_kind(idle_server, kind, {k: paths[v] for k, v in files.items()}, **fields)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert words in err["message"], err
    assert err["hint"]


# ---------------------------------------------------------------- the CLI for every kind


def test_cli_submits_a_sweep_and_saves_its_result(server, model, tmp_path, capsys):
    from core.cli.client import submit_cmd

    out, result = tmp_path / "best.tflite", tmp_path / "sweep.json"
    submit_cmd.main(
        [
            str(model),
            "--server",
            server.base,
            "--kind",
            "sweep",
            "--presets",
            "float32,float16",
            "--no-layers",
            "--runs",
            "5",
            "--eval-data",
            str(EVAL),
            "--wait",
            "-o",
            str(out),
            "--result",
            str(result),
        ],
        standalone_mode=False,
    )
    capsys.readouterr()
    rows = json.loads(result.read_text())["rows"]
    assert [r["label"] for r in rows] == ["float32", "float16"]
    assert out.read_bytes()[4:8] == b"TFL3"


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with studio_server(tmp_path_factory.mktemp("locked") / "data", password="s3cret") as srv:
        yield srv


def test_cli_says_wrong_password_even_for_a_large_upload(locked_server, tmp_path):
    """The server refuses at once; the CLI says so instead of "Broken pipe"."""
    from core.cli.client import submit_cmd
    from core.errors import StudioError

    big = tmp_path / "big.zip"
    with open(big, "wb") as f:
        f.truncate(64 << 20)
    base = ["--server", locked_server.base]
    with pytest.raises(StudioError) as e:
        submit_cmd.main([str(big), *base, "--password", "wrong"], standalone_mode=False)
    assert "Wrong password" in e.value.message and "--password" in e.value.hint
    with pytest.raises(StudioError) as e:
        submit_cmd.main([str(big), *base, "--password", ""], standalone_mode=False)
    assert "needs the team password" in e.value.message
    # without the check first, the server's early 401 is still read mid-upload
    from core.cli.client import ApiClient

    client = ApiClient(locked_server.base, "wrong", "ann")
    client.check_login = lambda: {}  # type: ignore[method-assign]
    with pytest.raises(StudioError) as e:
        client.submit(big, [("preset", "float32")])
    assert "Wrong password" in e.value.message
