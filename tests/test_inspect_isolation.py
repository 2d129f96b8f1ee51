"""The inspector never imports TensorFlow, and the TFLite Micro probe is isolated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import WorkerCrashed, WorkerTimeout
from core.model import compat
from core.model.compat import (
    MicroProbeResult,
    Target,
    Verdict,
    check_compatibility,
    failed_op_from_log,
)
from core.model.compat.checks import MODEL_CHECKS
from core.model.compat.engine import CHECKS
from core.model.compat.predicates import PREDICATES
from core.pipeline.inspect import micro_result_from_failure, probe_micro

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("module", ["core.model.reader", "core.model.compat", "core.model.report"])
def test_import_does_not_pull_tensorflow(module):
    code = f"import {module}, sys; assert 'tensorflow' not in sys.modules, sorted(m for m in sys.modules if 'tensorflow' in m)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_failed_op_from_log():
    assert (
        failed_op_from_log(
            "Didn't find op for builtin opcode 'DENSIFY'\r\nFailed to get registration"
        )
        == "DENSIFY"
    )
    assert failed_op_from_log("Failed to get registration from op code CUSTOM\n") == "CUSTOM"
    assert failed_op_from_log("all good") is None


def _hand_model() -> bytes:
    from tests.test_inspect_badfiles import MODEL

    return MODEL


def test_probe_crash_names_the_op():
    """A probe whose worker aborted: the verdict is the crash, naming the op its log names."""
    log = "Didn't find op for builtin opcode 'CONV_2D'\r\n"
    crash = WorkerCrashed(
        "TensorFlow crashed during inspect (SIGABRT).",
        "",
        details={"log_tail": log, "exit_code": -6},
    )
    result = micro_result_from_failure(crash)
    assert result.crashed and not result.ok and result.failed_op == "CONV_2D"
    assert "SIGABRT" in result.error


def test_probe_timeout(tmp_path):
    """A real probe that cannot finish in time is reported as timed out."""
    path = tmp_path / "m.tflite"
    path.write_bytes(_hand_model())
    result = probe_micro(path, timeout=0.05)
    assert result.timed_out and not result.ok and "longer than" in result.error
    assert micro_result_from_failure(WorkerTimeout("slow", "")).timed_out


def test_probe_runs_in_a_subprocess_under_its_memory_cap(tmp_path):
    """A real probe process: with an 8 MiB address-space cap it cannot even load
    its libraries, which proves the cap is applied to it (not to us)."""
    from tests.test_inspect_badfiles import MODEL

    path = tmp_path / "m.tflite"
    path.write_bytes(MODEL)
    capped = probe_micro(path, memory_mb=8)
    normal = probe_micro(path)  # the same file under the default cap reaches TFLite Micro
    assert not capped.ok and not capped.invoked and capped.error
    assert "TFLM" in (normal.error or "TFLM") and capped.error != normal.error


def test_crash_verdict_in_compatibility():
    from core.model.reader import read_model

    info = read_model(_hand_model())
    crash = MicroProbeResult(ok=False, crashed=True, failed_op="CUSTOM", error="exit -6")
    micro = check_compatibility(info, targets=[Target.MICRO], micro_probe=crash)[Target.MICRO]
    assert micro.verdict is Verdict.UNSUPPORTED
    assert (
        "crashed" in micro.model_reasons[-1].message and "MyOp" in micro.model_reasons[-1].message
    )
    assert micro.details["failed_op"] == "MyOp"


def test_real_probe_on_hand_built_model(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(_hand_model())
    result = probe_micro(path, timeout=60)
    assert not result.ok and result.failed_op in {"CUSTOM", "MyOp"}


def test_rule_tables_are_well_formed():
    """Op knowledge is data: every rule uses a known check and every entry names a source."""
    tables = compat.rules()["targets"]
    assert set(tables) == {t.value for t in Target}
    for key, target in tables.items():
        assert target["source"].startswith("https://"), key
        for kind in ("select_tf", "custom"):
            assert Verdict(target["kinds"][kind]["verdict"]) and target["kinds"][kind][
                "source"
            ].startswith("https://")
        entries = {**target["ops"], **target["custom_ops"]}
        for name, entry in entries.items():
            assert entry.get("source", target["source"]).startswith("https://"), (key, name)
            for rule in [*entry["rules"], *target["all_ops"]]:
                assert rule["check"] in CHECKS, (key, name, rule)
                if rule["check"] == "predicate":
                    assert rule["name"] in PREDICATES, (key, name, rule)
                assert Verdict(rule.get("severity", "unsupported"))
        for rule in target.get("model_rules", []):
            assert rule["check"] in MODEL_CHECKS
            # A source given on the target is inherited by its checks.
            assert rule.get("source", target["source"]).startswith("https://") and rule["reason"]
