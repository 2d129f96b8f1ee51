"""The workflow's last steps from the command line and the HTTP API:
``tflite-studio optimize`` / ``optimize-sweep`` / ``deploy`` / ``recipes``
(exit codes, one ``error:`` and one ``fix:`` line, no partial output), and
``kind=optimize`` / ``kind=deploy`` jobs on a real server with their downloads."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from server_helpers import Server, studio_server, wait_for

from tests.conftest import ROOT
from tests.helpers.optimize_models import build_optimize_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
CLI = [sys.executable, "-m", "core.cli"]


def cli(*args: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_optimize_models(tmp_path_factory.mktemp("cli-models"))


def _clean_failure(proc: subprocess.CompletedProcess[str], out: Path, *words: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    fixes = [ln for ln in proc.stderr.splitlines() if ln.strip().startswith("fix: ")]
    assert len(errors) == 1 and len(fixes) == 1, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr
    assert not out.exists()


def test_cli_optimize_writes_the_file_and_the_report(models: Path, tmp_path: Path) -> None:
    out, rep = tmp_path / "w4.tflite", tmp_path / "r.json"
    p = cli("optimize", models / "convnet.tflite", "-o", out, "--recipe", "weight-only-int4",
            "--eval-data", models / "convnet_x.npz", "--report", rep)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[4:8] == b"TFL3"
    r = json.loads(rep.read_text())
    assert r["kind"] == "optimize" and r["recipe"]["recipe"] == "weight-only-int4"
    assert r["output_size"] == out.stat().st_size < 0.25 * r["input_size"]
    assert r["validation"] and r["accuracy"]["samples"] == 16
    assert "wrote" in p.stderr and "worst tensors" in p.stderr


def test_cli_optimize_with_a_recipe_file(models: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "mine.json"
    p = cli("recipes", "--json", "weight-only-int8")
    assert p.returncode == 0
    entries = json.loads(p.stdout)
    entries[0]["regex"] = ".*ffn.*"
    recipe.write_text(json.dumps(entries))
    out = tmp_path / "ffn.tflite"
    p = cli("optimize", models / "transformer.tflite", "-o", out, "--recipe", recipe,
            "--no-validate")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "custom (mine.json)" in p.stderr and "Kept in float" in p.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--recipe", "weight-only-int-4"], ["[quantize]", "did you mean weight-only-int4"]),
        (["--recipe", "dynamic-int8", "--block-size", "32"], ["Block size 32"]),
    ],
)
def test_cli_optimize_refuses_bad_recipes(models: Path, tmp_path: Path, args: list[str],
                                          words: list[str]) -> None:  # fmt: skip
    out = tmp_path / "x.tflite"
    _clean_failure(cli("optimize", models / "convnet.tflite", "-o", out, *args), out, *words)


def test_cli_optimize_refuses_a_recipe_file_with_a_mistake(models: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"regex": "(", "operation": "*", "algorithm_key": "no_quantize"}]))
    out = tmp_path / "x.tflite"
    _clean_failure(cli("optimize", models / "convnet.tflite", "-o", out, "--recipe", bad), out,
                   "not a valid regular expression")  # fmt: skip
    bad.write_text(json.dumps([{"regex": "nothing_here", "operation": "*",
                                "algorithm_key": "no_quantize"}]))  # fmt: skip
    _clean_failure(cli("optimize", models / "convnet.tflite", "-o", out, "--recipe", bad), out,
                   "'nothing_here' matches no layer")  # fmt: skip


def test_cli_optimize_refuses_nothing_to_quantize(models: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.tflite"
    _clean_failure(cli("optimize", models / "no_weights.tflite", "-o", out), out,
                   "quantized no tensor")  # fmt: skip


def test_cli_deploy_writes_a_kit(models: Path, tmp_path: Path) -> None:
    kit = tmp_path / "kit.zip"
    p = cli("deploy", models / "convnet.tflite", "-o", kit, "--targets", "python,micro")
    assert p.returncode == 0, p.stderr
    names = zipfile.ZipFile(kit).namelist()
    assert "python/run.py" in names and "micro/model_data.cc" in names
    assert not any(n.startswith("android/") for n in names)
    assert "TFLite Micro arena" in p.stderr
    bad = tmp_path / "bad.zip"
    _clean_failure(cli("deploy", models / "convnet.tflite", "-o", bad, "--targets", "web"), bad,
                   "Unknown deploy target 'web'")  # fmt: skip


def test_cli_optimize_sweep_recommends_by_the_rule(models: Path, tmp_path: Path) -> None:
    rep = tmp_path / "sweep.json"
    p = cli("optimize-sweep", models / "convnet.tflite", "--eval-data", models / "convnet_x.npz",
            "--runs", "5", "--report", rep)  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(rep.read_text())
    labels = [row["label"] for row in r["rows"]]
    assert labels[0] == "input (float32)" and "weight-only-int4" in labels
    assert "static-int8" not in labels  # needs calibration data
    assert r["recommendation"]["label"] in labels and "Rule:" in r["recommendation"]["text"]


# ---------------------------------------------------------------- the HTTP API


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with studio_server(tmp_path_factory.mktemp("opt-api") / "data") as srv:
        yield srv


def _post(srv: Server, model: Path, **fields: Any) -> requests.Response:
    files = {"model": (model.name, model.read_bytes())}
    for k in ("calibration_data", "eval_data"):
        if k in fields:
            p = fields.pop(k)
            files[k] = (p.name, p.read_bytes())
    return requests.post(srv.url("/api/jobs"), files=files, data=fields, timeout=60)


def _wait(srv: Server, job_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        j = requests.get(srv.url(f"/api/jobs/{job_id}"), timeout=10).json()
        return j if j["status"] in ("done", "failed", "cancelled") else None

    return wait_for(finished, timeout=600, every=0.3, what=f"job {job_id}")


def test_api_optimize_then_deploy(server: Server, models: Path) -> None:
    r = _post(server, models / "convnet.tflite", kind="optimize", recipe="weight-only-int4",
              eval_data=models / "convnet_x.npz")  # fmt: skip
    assert r.status_code == 201, r.text
    done = _wait(server, r.json()["id"])
    assert done["status"] == "done", done["error"]
    result = done["result"]["optimize"]
    assert result["recipe"]["recipe"] == "weight-only-int4" and result["validation"]
    model = requests.get(server.url(done["links"]["model"]), timeout=30)
    assert model.status_code == 200 and model.content[4:8] == b"TFL3"
    assert "weight-only-int4" in model.headers["content-disposition"]
    assert len(model.content) == result["output_size"] < 0.25 * result["input_size"]
    assert done["links"]["page"] == f"/optimize?job={done['id']}"

    r = _post(server, models / "convnet.tflite", kind="deploy", targets="python,android")
    assert r.status_code == 201, r.text
    kit_job = _wait(server, r.json()["id"])
    assert kit_job["status"] == "done", kit_job["error"]
    kit = requests.get(server.url(kit_job["links"]["kit"]), timeout=30)
    assert kit.status_code == 200 and kit.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(kit.content)).namelist()
    assert "android/ModelRunner.kt" in names and "micro/model_data.cc" not in names


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"kind": "optimize", "recipe": "int3"}, "Unknown recipe"),
        ({"kind": "optimize", "recipe_json": "[{"}, "not valid JSON"),
        ({"kind": "optimize", "block_size": "16"}, "block_size='16'"),
        ({"kind": "deploy", "targets": "web"}, "Unknown deploy target"),
    ],
)
def test_api_refuses_bad_optimize_fields(server: Server, models: Path, fields: dict[str, str],
                                         words: str) -> None:  # fmt: skip
    r = _post(server, models / "convnet.tflite", **fields)
    assert r.status_code == 400 and words in r.json()["error"]["message"], r.text


def test_api_refuses_to_optimize_an_original_model(server: Server) -> None:
    sample = ROOT / "sample_models" / "digits_classifier.zip"
    r = _post(server, sample, kind="optimize")
    assert r.status_code == 400 and "not a .tflite" in r.json()["error"]["message"]


def test_cli_submits_optimize_and_deploy_jobs(server: Server, models: Path, tmp_path: Path) -> None:
    """``tflite-studio submit --kind optimize|deploy``: the same jobs as the API's."""
    out = tmp_path / "int4.tflite"
    proc = cli("submit", models / "convnet.tflite", "--server", server.base, "--kind", "optimize",
               "--recipe", "weight-only-int4", "--block-size", "32", "--wait", "-o", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[4:8] == b"TFL3"
    assert out.stat().st_size < 0.25 * (models / "convnet.tflite").stat().st_size
    job = requests.get(server.url(f"/api/jobs/{proc.stdout.strip()}"), timeout=10).json()
    assert job["kind"] == "optimize" and job["result"]["optimize"]["recipe"]["block_size"] == 32

    proc = cli("submit", models / "convnet.tflite", "--server", server.base, "--kind", "deploy",
               "--targets", "python", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kind"] == "deploy"

    proc = cli("submit", models / "convnet.tflite", "--server", server.base, "--kind", "optimize")
    assert proc.returncode == 1 and "An optimize job needs a recipe." in proc.stderr
    assert "fix: Give --recipe weight-only-int4" in proc.stderr
