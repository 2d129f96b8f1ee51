"""The whole sweep on the trained digits sample, through the command line:
one row per preset, int8 agreeing with the original, a recommendation with its
rule, per-layer error, keeping the worst layers in float, the diff of float32
vs int8 and the benchmark JSON.

One sweep (module fixture) feeds every test; about a minute on 2 cores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SAMPLES = ROOT / "sample_models"
MODEL = SAMPLES / "digits_classifier.zip"
CAL = SAMPLES / "digits_calibration.npz"
EVAL = SAMPLES / "digits_eval.npz"
ALL = ["float32", "float16", "dynamic", "int8-float-io", "int8", "int16x8"]


def require_samples(*paths: Path) -> None:
    """The committed samples (rebuilt by ``sample_models/build.py``)."""
    missing = [p.name for p in paths if not p.is_file()]
    assert not missing, f"sample files missing: {missing}"


def cli(*args: str) -> int:
    from core.cli import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    require_samples(MODEL, CAL, EVAL)
    out = tmp_path_factory.mktemp("digits-sweep")
    report = out / "report.json"
    rc = cli(
        "sweep",
        MODEL,
        "--calibration-data",
        CAL,
        "--eval-data",
        EVAL,
        "--report",
        report,
        "--out-dir",
        out / "models",
        "--runs",
        "30",
        "--keep-worst",
        "2",
        "--layers",
        "always",  # int16x8 is good here: "auto" would not measure its layers
    )
    assert rc == 0
    return json.loads(report.read_text()), out / "models"


def _row(report: dict, label: str) -> dict:
    return next(r for r in report["rows"] if r["label"] == label)


def test_one_row_per_preset_with_size_latency_and_metrics(swept):
    report, _ = swept
    assert [r["preset"] for r in report["rows"]][:6] == ALL
    for r in report["rows"]:
        assert r["error"] is None, r
        assert r["size_bytes"] > 0 and r["latency_ms"] > 0
        assert r["metrics"]["top1_agreement"] is not None
        assert r["metrics"]["samples"] == 450
    assert report["data"]["source"] == "user" and report["data"]["has_labels"]
    f32, i8 = _row(report, "float32"), _row(report, "int8")
    assert i8["size_bytes"] < 0.5 * f32["size_bytes"]
    assert f32["metrics"]["top1_agreement"] == 1.0 and f32["metrics"]["cosine"] > 0.99999


def test_int8_agrees_with_the_original_and_reports_the_accuracy_drop(swept):
    report, _ = swept
    m = _row(report, "int8")["metrics"]
    assert m["top1_agreement"] >= 0.97
    assert m["accuracy_original"] == pytest.approx(0.9867, abs=0.01)
    assert m["accuracy_drop"] is not None and abs(m["accuracy_drop"]) < 0.03
    assert m["accuracy"] == pytest.approx(m["accuracy_original"] - m["accuracy_drop"])
    acc = _row(report, "int8")["accuracy"]
    assert acc["outputs"][0]["kind"] == "classifier" and acc["outputs"][0]["snr_db"] > 10


def test_the_report_names_its_recommendation_and_explains_the_rule(swept):
    report, _ = swept
    rec = report["recommendation"]
    assert rec["preset"] in ALL and rec["label"] in rec["passing"]
    assert "99%" in rec["text"] and "smallest" in rec["text"]
    assert rec["rule"].startswith("top1_agreement")
    rec_row = _row(report, rec["label"])
    assert all(rec_row["size_bytes"] <= _row(report, p)["size_bytes"] for p in rec["passing"])
    assert any(r["pareto"] for r in report["rows"])


def test_per_layer_error_for_int8_and_int16x8(swept):
    report, _ = swept
    by = {le["preset"]: le for le in report["layer_errors"]}
    int8 = by.get("int8-float-io") or by["int8"]
    assert int8["method"] == "quantization_debugger" and int8["samples"] > 0
    ops = {x["op"] for x in int8["layers"]}
    assert {"CONV_2D", "FULLY_CONNECTED"} <= ops
    assert int8["worst"] and all(
        x["rmse_over_scale"] is not None for x in int8["layers"] if x["scale"] > 0
    )
    assert int8["keep_float_preset"] == "int8-float-io"
    i16 = by["int16x8"]
    assert i16["method"] == "tensor_compare" and i16["layers"]
    assert i16["metric"] == "relative_rmse"


def test_the_sweep_tries_the_worst_layers_in_float(swept):
    report, _ = swept
    row = report["rows"][-1]
    assert row["label"] == "int8-float-io, 2 layers in float"
    debugged = next(x for x in report["layer_errors"] if x["method"] == "quantization_debugger")
    assert sorted(row["options"]["keep_float_ops"]) == sorted(debugged["worst"][:2])
    assert row["metrics"]["top1_agreement"] >= 0.97 and row["latency_ms"] > 0
    assert row["size_bytes"] > _row(report, "int8-float-io")["size_bytes"]  # float weights


def test_keeping_the_worst_layers_in_float(swept, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from core.options import ConversionOptions
    from core.pipeline.convert import convert_model
    from core.pipeline.evaluate import evaluate
    from core.tasks.layers import LayerErrorReport

    report, _ = swept
    le = LayerErrorReport.from_dict(
        next(x for x in report["layer_errors"] if x["method"] == "quantization_debugger")
    )
    keep = le.worst_n(2)
    out = tmp_path / "kept.tflite"
    res = convert_model(
        MODEL,
        out,
        ConversionOptions(preset="int8-float-io", calibration_path=str(CAL), keep_float_ops=keep),
    )
    assert not [w for w in res.warnings if "keep in float" in w], res.warnings
    interp = Interpreter(model_path=str(out))
    names = {d["index"]: d for d in interp.get_tensor_details()}
    float_outputs = {
        names[i]["name"]
        for op in interp._get_ops_details()
        for i in op["outputs"]
        if i in names and names[i]["dtype"].__name__ == "float32"
    }
    assert set(keep) <= float_outputs
    # the same trained weights as a .keras file: the original runs through Keras' export
    keras_file = SAMPLES / "digits_classifier.keras"
    require_samples(keras_file)
    acc = evaluate(
        keras_file, out, eval_data=EVAL, options=ConversionOptions(calibration_path=str(CAL))
    )
    assert acc.primary.top1_agreement >= 0.97 and acc.verdict in ("good", "check")
    assert acc.primary.accuracy_original == pytest.approx(0.9867, abs=0.01)


def test_diff_of_float32_and_int8_lists_the_quantized_tensors(swept, capsys):
    _, models = swept
    f32 = next(models.glob("*-float32.tflite"))
    i8 = next(models.glob("*-int8.tflite"))
    capsys.readouterr()
    assert cli("diff", f32, i8, "--format", "json") == 0
    d = json.loads(capsys.readouterr().out)
    q = set(d["quantized_tensors"])
    assert "digits_classifier_1/conv_1/convolution" in q
    assert "serving_default_image:0" in q  # int8 input
    assert {o["op"] for o in d["ops_changed"]} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert all(
        "int8" in t["dtype_b"].lower() or "int32" in t["dtype_b"].lower()
        for t in d["tensors_changed"]
        if t["name"] in q
    )
    fc = next(s for s in d["by_op_type"] if s["op"] == "FULLY_CONNECTED")
    assert fc["weight_bytes_b"] < fc["weight_bytes_a"] / 3
    assert cli("diff", f32, i8) == 0
    assert "Tensors that changed" in capsys.readouterr().out


@pytest.mark.parametrize("runtime", [None, "compiled_model", "interpreter"])
def test_benchmark_json_has_p50(swept, capsys, runtime):
    _, models = swept
    i8 = next(models.glob("*-int8.tflite"))
    capsys.readouterr()
    extra = ["--runtime", runtime] if runtime else []
    assert cli("benchmark", i8, "--threads", "1,2", "--runs", "20", "--format", "json", *extra) == 0
    d = json.loads(capsys.readouterr().out)
    want = runtime or "compiled_model"  # the default
    assert d["runtime_api"] == want  # no fallback
    assert d["runtime"].endswith("CompiledModel" if want == "compiled_model" else "Interpreter")
    assert d["p50_ms"] > 0 and d["delegate"] == "XNNPACK"
    assert [s["threads"] for s in d["settings"]] == [1, 2]
    assert all(s["p50_ms"] > 0 and s["runs"] == 20 for s in d["settings"])
    assert d["rss_delta_bytes"] >= 0
