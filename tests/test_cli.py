"""The command line: exit codes, one-line errors, no traceback, no partial output."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.helpers.models import build_tiny_models

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "core.cli"]


def run(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_tiny_models(tmp_path_factory.getbasetemp() / "tiny-models")


def assert_clean_failure(proc, out: Path, *words):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_convert_writes_model_and_json_report(models, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "tiny"), "zip", models, "tiny_sm")
    out, rep = tmp_path / "o.tflite", tmp_path / "r.json"
    p = run(
        "convert",
        archive,
        "-o",
        out,
        "--preset",
        "int8",
        "--calibration-data",
        models / "tiny_cal.npz",
        "--report",
        rep,
    )
    assert p.returncode == 0, p.stderr
    assert out.read_bytes()[4:8] == b"TFL3"
    r = json.loads(rep.read_text())
    assert r["preset"] == "int8"
    assert r["options"]["calibration_source"] == "arrays"
    assert r["input"] == {
        "name": "tiny.zip",
        "kind": "saved_model",
        "size_bytes": Path(archive).stat().st_size,
    }
    assert r["output"]["size_bytes"] == out.stat().st_size
    assert r["conversion_seconds"] > 0
    assert isinstance(r["warnings"], list)
    # the inspector's report of the output
    assert r["model"]["file"]["size_bytes"] == out.stat().st_size
    assert r["model"]["file"]["sha256"] == r["output"]["sha256"]


@pytest.mark.slow
def test_rejected_ops_exit_nonzero_with_the_fix(models, tmp_path):
    out = tmp_path / "o.tflite"
    p = run("convert", models / "cumprod_sm", "-o", out)
    assert_clean_failure(p, out, "error: [convert]", "Cumprod", "--select-tf-ops")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--preset", "int4"], ["error:", "int4"]),
        (["--input-shape", "image"], ["error: [options]", "NAME=D1,D2"]),
        (["--calibration-data", "missing.npz"], ["error: [options]", "missing.npz"]),
        (["--image-range", "x"], ["error: [options]", "LOW,HIGH"]),
    ],
)
def test_bad_arguments_fail_fast_without_tensorflow(models, tmp_path, args, words):
    out = tmp_path / "o.tflite"
    p = run("convert", models / "tiny_sm", "-o", out, *args)
    assert_clean_failure(p, out, *words)


def test_bad_inputs(tmp_path):
    out = tmp_path / "o.tflite"
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 truncated")
    assert_clean_failure(run("convert", junk, "-o", out), out, "error: [unpack]", "cut short")
    assert_clean_failure(
        run("convert", tmp_path / "nope.zip", "-o", out), out, "error:", "does not exist"
    )


def test_presets_lists_every_id():
    p = run("presets")
    assert p.returncode == 0
    for pid in ("float32", "float16", "dynamic", "int8-float-io", "int8", "int16x8"):
        assert pid in p.stdout


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "tflite-studio"
    assert exe.exists()
    p = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "convert" in p.stdout


def test_every_command_is_listed_and_loads_on_demand():
    """The CLI imports a command's module only when it runs: the table names
    every command of every module, and each name finds its command."""
    import importlib

    from core.cli.app import LAZY_COMMANDS, cli

    for module in set(LAZY_COMMANDS.values()):
        names = {c.name for c in importlib.import_module(module).COMMANDS}
        assert names == {n for n, m in LAZY_COMMANDS.items() if m == module}, module
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        assert cli.get_command(ctx, name) is not None, name
