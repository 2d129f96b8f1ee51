"""Verdicts backed by runs: "runs" means it ran here, a crash is a verdict in
plain words, the rules decide only where nothing can run (and say so), and a
card's counts never contradict its verdict. Models are built in code
(``tests/helpers/verdict_models.py``) or come from ``sample_models/``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import TFLiteFormatError
from core.model.compat import Verdict
from core.options import ConversionOptions, Preset
from core.pipeline.benchmark import benchmark
from core.pipeline.convert import convert_model
from core.pipeline.inspect import inspect_file
from tests.helpers.crafted import named_model
from tests.helpers.verdict_models import build_verdict_models

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_verdict_models(tmp_path_factory.mktemp("verdict_models"))


def _report(path: Path, out: Path) -> dict:
    done = inspect_file(path, out_dir=out)
    return json.loads(done.json_path.read_text())


def _assert_counts_agree(report: dict) -> None:
    """What a card shows: its op counts say what its verdict says."""
    total = report["model"]["num_operators"]
    for key, c in report["compatibility"].items():
        counts = c["counts"]
        assert sum(counts.values()) == total, key
        if c["verdict"] == "supported":
            assert counts["partial"] == counts["unsupported"] == 0, key
        elif c["verdict"] == "unsupported":
            assert counts["unsupported"] > 0, key
        else:
            assert counts["partial"] + counts["unsupported"] > 0, key


def test_int8_model_runs_everywhere_it_can_and_tflm_says_supported(built, tmp_path):
    r = _report(built / "int8.tflite", tmp_path)
    cpu, micro = r["compatibility"]["litert_cpu"], r["compatibility"]["micro"]
    assert cpu["verdict"] == "supported" and cpu["details"]["decided_by"] == "run"
    assert {x["runtime"]: x["outcome"] for x in r["runs"]["litert"]} == {
        "interpreter": "ran",
        "xnnpack": "ran",
        "compiled_model": "ran",
        "compiled_model_builtin": "ran",
    }
    assert micro["verdict"] == "supported" and micro["details"]["decided_by"] == "run"
    assert micro["details"]["arena_bytes"] > 0
    fits = micro["details"]["fits"]
    assert fits and all(f["fits"] for f in fits)  # 4 KB of model: every board holds it
    xnn = r["compatibility"]["xnnpack"]
    assert xnn["details"]["total_nodes"] == r["model"]["num_operators"]
    assert 0 < xnn["details"]["delegated_nodes"] <= xnn["details"]["total_nodes"]
    # GPU and Edge TPU cannot run here: the card says the rules decided, and why
    for key in ("gpu", "edgetpu"):
        d = r["compatibility"][key]["details"]
        assert d["decided_by"] == "rules" and "no" in d["not_run"] and d["sources"]
    _assert_counts_agree(r)


def test_bad_quantized_dimension_does_not_load_and_validation_names_the_tensor(built, tmp_path):
    r = _report(built / "bad_qdim.tflite", tmp_path)
    cpu = r["compatibility"]["litert_cpu"]
    assert cpu["verdict"] == "unsupported" and cpu["details"]["decided_by"] == "run"
    why = " ".join(x["message"] for x in cpu["model_reasons"])
    assert "damaged or not a valid model" in why and "quantized_dimension" in why
    assert r["runs"]["litert"][0]["outcome"] == "did not load"
    found = [f for f in r["validation"] if f["code"] == "quantized_dimension"]
    assert found and all("dimension 3" in f["message"] and "tensor" in f["where"] for f in found)
    assert "Validation" in (tmp_path / "report.md").read_text()
    _assert_counts_agree(r)
    # every task that runs the file says so before LiteRT sees it
    with pytest.raises(TFLiteFormatError) as e:
        benchmark(built / "bad_qdim.tflite", runs=2, warmup=1, workdir=tmp_path / "b")
    assert "damaged or not a valid model" in e.value.message
    assert "quantized along dimension 3" in e.value.message


def test_hybrid_model_micro_verdict_explains_and_names_the_preset(built, tmp_path):
    r = _report(built / "hybrid.tflite", tmp_path)
    assert r["compatibility"]["litert_cpu"]["verdict"] == "supported"
    micro = r["compatibility"]["micro"]
    assert micro["verdict"] == "unsupported" and micro["details"]["decided_by"] == "run"
    reason = next(x for x in micro["model_reasons"] if "hybrid" in x["message"])
    assert "int8 preset" in reason["hint"]
    assert micro["counts"]["unsupported"] >= 1  # the FULLY_CONNECTED with int8 weights
    assert micro["by_op"]["FULLY_CONNECTED"]["verdict"] == "unsupported"
    _assert_counts_agree(r)


def test_custom_op_that_litert_ships_is_not_unsupported(built, tmp_path):
    r = _report(built / "spectrogram.tflite", tmp_path)
    assert [(op["op"], op["kind"]) for op in r["operators"]] == [("AudioSpectrogram", "custom")]
    cpu = r["compatibility"]["litert_cpu"]
    assert cpu["verdict"] == "supported" and cpu["details"]["decided_by"] == "run"
    _assert_counts_agree(r)


def test_model_only_the_interpreter_api_accepts_says_so(tmp_path):
    out = tmp_path / "seq.tflite"
    convert_model(
        ROOT / "sample_models" / "sequence_lstm.zip",
        out,
        ConversionOptions(preset=Preset.FLOAT32),
        workdir=tmp_path / "c",
    )
    r = _report(out, tmp_path / "r")
    cpu = r["compatibility"]["litert_cpu"]
    assert cpu["verdict"] == "supported"
    outcomes = {x["runtime"]: x["outcome"] for x in r["runs"]["litert"]}
    assert outcomes["interpreter"] == "ran" and outcomes["compiled_model"] == "did not load"
    note = " ".join(x["message"] for x in cpu["model_reasons"])
    assert "Only the Interpreter API runs this model" in note and "variable tensors" in note
    assert "CompiledModel" in " ".join(cpu["details"]["apis"])
    _assert_counts_agree(r)


def test_a_runtime_that_crashes_is_a_verdict_and_the_report_is_still_written(tmp_path):
    """TFLite_Detection_PostProcess with no options makes LiteRT read past its
    buffer (SIGSEGV) while loading: each run that dies is recorded, the others
    go on, and the report says the file is damaged, not that TensorFlow has a bug."""
    path = tmp_path / "dpp.tflite"
    path.write_bytes(named_model("TFLite_Detection_PostProcess", "w", "x"))
    r = _report(path, tmp_path / "r")
    crashed = [x for x in r["runs"]["litert"] if x["crashed"]]
    assert crashed and all(x["crashed"] == "SIGSEGV" for x in crashed)
    cpu = r["compatibility"]["litert_cpu"]
    assert cpu["verdict"] == "unsupported"
    text = " ".join(x["message"] for x in cpu["model_reasons"])
    assert "damaged or not a valid model" in text and "TensorFlow bug" not in text
    _assert_counts_agree(r)


def test_dynamic_shape_hint_points_at_the_input_shapes_option(built, tmp_path):
    r = _report(built / "hybrid.tflite", tmp_path)  # exported with a dynamic batch
    edgetpu = r["compatibility"]["edgetpu"]
    hints = [x.get("hint") or "" for x in edgetpu["model_reasons"]]
    assert any("Input shapes" in h for h in hints)
    assert not any("concrete function" in h for h in hints)
    assert edgetpu["verdict"] == Verdict.UNSUPPORTED.value
