"""The numbers behind the Compare page, without TensorFlow or a worker:
metrics, quantization arithmetic, verdicts, the recommendation rule, the
Pareto front, thread parsing and the result types' round trips."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from core.errors import OptionsError
from core.pipeline.benchmark import parse_threads
from core.pipeline.recommend import pareto_front, recommend
from core.pipeline.render import render_sweep
from core.tasks.layers import LayerErrorReport
from core.tasks.layers import layer_error as _layer
from core.tasks.layers import layer_report as _finish
from core.tasks.metrics import (
    compare_outputs,
    dequantize_output,
    quantize_input,
)
from core.tasks.metrics import output_kind as _output_kind
from core.tasks.metrics import verdict_of as _verdict
from core.tasks.results import (
    AccuracyResult,
    DataSource,
    Flag,
    LatencyResult,
    ThreadLatency,
    Thresholds,
)
from core.tasks.sweep import Recommendation, SweepModel, SweepReport, SweepRow


def test_identical_outputs_have_no_error_and_no_snr():
    ref = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    m = compare_outputs("y", ref, ref.copy())
    assert m.max_abs_error == 0 and m.rmse == 0 and m.snr_db is None
    assert m.cosine == pytest.approx(1.0)


def test_error_metrics_match_their_definitions():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = ref + np.array([[0.1, -0.1], [0.2, 0.0]])
    m = compare_outputs("y", ref, got)
    err = got - ref
    assert m.max_abs_error == pytest.approx(0.2)
    assert m.mean_abs_error == pytest.approx(np.abs(err).mean())
    assert m.rmse == pytest.approx(math.sqrt((err**2).mean()), rel=1e-5)
    assert m.snr_db == pytest.approx(10 * math.log10((ref**2).sum() / (err**2).sum()), abs=1e-3)
    cos = [np.dot(r, g) / np.linalg.norm(r) / np.linalg.norm(g) for r, g in zip(ref, got)]
    assert m.cosine == pytest.approx(np.mean(cos), abs=1e-6)


def test_classifier_agreement_and_accuracy_with_labels():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    got = np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])  # one flip
    labels = np.array([0, 1, 1, 1])
    m = compare_outputs("p", ref, got, kind="classifier", labels=labels)
    assert m.top1_agreement == pytest.approx(0.75)
    assert m.accuracy_original == pytest.approx(0.75)
    assert m.accuracy_tflite == pytest.approx(0.5)
    assert m.accuracy_drop == pytest.approx(0.25)


def test_binary_outputs_are_thresholded_at_one_half():
    ref = np.array([[0.9], [0.1], [0.6]])
    got = np.array([[0.7], [0.4], [0.4]])
    m = compare_outputs("p", ref, got, kind="binary", labels=np.array([1, 0, 1]))
    assert m.top1_agreement == pytest.approx(2 / 3)
    assert m.accuracy_original == 1.0 and m.accuracy_tflite == pytest.approx(2 / 3)


def test_output_kind_detection():
    probs = np.array([[0.2, 0.8], [0.5, 0.5]], dtype=np.float32)
    logits = np.array([[2.0, -1.0], [0.3, 4.0]], dtype=np.float32)
    assert _output_kind(probs, None, "auto") == "classifier"
    assert _output_kind(logits, None, "auto") == "values"
    assert _output_kind(logits, np.array([0, 1]), "auto") == "classifier"
    assert _output_kind(logits, None, "classification") == "classifier"
    assert _output_kind(probs, None, "regression") == "values"
    assert _output_kind(np.array([[0.3], [0.9]], np.float32), np.array([0, 1]), "auto") == "binary"
    assert _output_kind(np.array([[3.0], [9.0]], np.float32), np.array([0, 1]), "auto") == "values"


def test_quantize_input_applies_scale_and_zero_point_and_counts_clipping():
    details = {
        "dtype": np.int8,
        "quantization": (1 / 255, -128),
        "quantization_parameters": {"scales": np.array([1 / 255]), "zero_points": np.array([-128])},
    }
    q, clipped = quantize_input(np.array([[0.0, 0.5, 1.0]], np.float32), details)
    assert q.dtype == np.int8 and q.tolist() == [[-128, 0, 127]] and clipped == 0
    # 0..255 fed to an input calibrated on 0..1: nearly everything clips
    q, clipped = quantize_input(np.array([[0.0, 128.0, 255.0]], np.float32), details)
    assert q.tolist() == [[-128, 127, 127]] and clipped == pytest.approx(2 / 3)
    # not quantized: a plain cast
    q, clipped = quantize_input(np.array([[1.7]]), {"dtype": np.float32, "quantization": (0, 0)})
    assert q.dtype == np.float32 and clipped == 0


def test_dequantize_output_per_tensor_and_per_channel():
    d = {
        "quantization_parameters": {
            "scales": np.array([0.5]),
            "zero_points": np.array([2]),
            "quantized_dimension": 0,
        }
    }
    assert dequantize_output(np.array([2, 4], np.int8), d).tolist() == [0.0, 1.0]
    d = {
        "quantization_parameters": {
            "scales": np.array([1.0, 0.1]),
            "zero_points": np.array([0, 0]),
            "quantized_dimension": 1,
        }
    }
    out = dequantize_output(np.array([[10, 10]], np.int8), d)
    assert out[0].tolist() == pytest.approx([10.0, 1.0])
    f = np.array([0.25], np.float32)
    assert np.array_equal(dequantize_output(f, d), f)


def test_verdicts_follow_the_thresholds():
    ref = np.eye(10) * 0.9 + 0.01
    good = compare_outputs("y", ref, ref, kind="classifier")
    assert _verdict([good], Thresholds())[0] == "good"
    flipped = ref.copy()
    flipped[:5] = np.roll(flipped[:5], 1, axis=1)  # 50% disagreement
    bad = compare_outputs("y", ref, flipped, kind="classifier")
    verdict, text = _verdict([bad], Thresholds())
    assert verdict == "bad" and "50.0%" in text
    noisy = compare_outputs("v", ref, ref + 0.05, kind="values")
    assert _verdict([noisy], Thresholds())[0] in ("check", "bad")


def _row(label, size, lat, agree=None, cosine=None, snr=None, **kw):
    metrics = {}
    if agree is not None or cosine is not None:
        metrics = {
            "top1_agreement": agree,
            "cosine": cosine if cosine is not None else 1.0,
            "snr_db": snr,
            "verdict": "good",
        }
    return SweepRow(
        preset=label.split(",")[0],
        label=label,
        size_bytes=size,
        latency_ms=lat,
        metrics=metrics,
        **kw,
    )


def test_recommendation_is_the_smallest_row_meeting_the_rule():
    rows = [
        _row("float32", 1000, 2.0, 1.0),
        _row("dynamic", 300, 1.5, 0.995),
        _row("int8", 250, 1.0, 0.97),
        _row("int16x8", 320, 5.0, 0.999),
    ]
    rec = recommend(rows)
    assert rec.preset == "dynamic"
    assert "99%" in rec.text and "smallest" in rec.text
    assert "int8" in rec.text  # named among those outside the rule
    assert set(rec.passing) == {"float32", "dynamic", "int16x8"}


def test_recommendation_for_non_classifiers_uses_cosine_and_snr():
    rows = [
        _row("float32", 1000, 2.0, cosine=1.0, snr=None),
        _row("int8", 250, 1.0, cosine=0.999, snr=15.0),
        _row("dynamic", 300, 1.5, cosine=0.9995, snr=30.0),
    ]
    rec = recommend(rows)
    assert rec.preset == "dynamic"
    assert "cosine" in rec.rule and "snr_db" in rec.rule and "dB" in rec.text


def test_no_recommendation_when_nothing_meets_the_rule_or_nothing_ran():
    rec = recommend([_row("int8", 250, 1.0, 0.5)])
    assert rec.preset is None and "No preset meets the rule" in rec.text
    err = {
        "type": "EvaluateError",
        "phase": "evaluate",
        "message": "cannot run here",
        "hint": "",
        "details": {"cannot_run_here": True},
    }
    rec = recommend([_row("float32", 900, None, error=err, note="Cannot run here: Flex.")])
    assert rec.preset is None and "Cannot run here" in rec.text


def test_pareto_front():
    rows = [
        _row("a", 100, 1.0, 0.99),
        _row("b", 200, 2.0, 0.98),  # b dominated by a
        _row("c", 50, 3.0, 0.90),
        _row("d", 300, 0.5, 1.0),
    ]
    assert pareto_front(rows) == {"a", "c", "d"}


def test_parse_threads():
    assert parse_threads("2") == (2,)
    assert parse_threads("4,1,2") == (1, 2, 4)
    assert parse_threads("1-3") == (1, 2, 3)
    assert parse_threads("max", cpu_count=6) == (6,)
    for bad in ("0", "x", "3-1", "1,,-2"):
        with pytest.raises(OptionsError):
            parse_threads(bad)


def test_result_types_round_trip_through_json():
    om = compare_outputs(
        "y", np.eye(3), np.eye(3) * 0.99, kind="classifier", labels=np.array([0, 1, 2])
    )
    acc = AccuracyResult(
        "m.tflite",
        "int8",
        "serving_default",
        DataSource.USER,
        "e.npz",
        3,
        (om,),
        "good",
        "ok",
        (Flag("x", "info", "note"),),
        0.1,
    )
    back = AccuracyResult.from_dict(json.loads(json.dumps(acc.to_dict())))
    assert back == acc and back.summary["top1_agreement"] == 1.0
    lat = LatencyResult(
        "m.tflite",
        10,
        "rt",
        "XNNPACK",
        5,
        (ThreadLatency(1, 50, 1.0, 0.9, 1.2, 0.8, 2.0, 0.1, 3.0, 1.5),),
        1024,
        2048,
        2,
        "random",
    )
    d = lat.to_dict()
    assert d["p50_ms"] == 0.9 and LatencyResult.from_dict(json.loads(json.dumps(d))) == lat
    assert d["runtime_api"] == "interpreter"  # older results (no field) were the Interpreter
    cm = replace(lat, runtime_api="compiled_model", note="fell back")
    assert LatencyResult.from_dict(json.loads(json.dumps(cm.to_dict()))) == cm
    assert "runtime compiled_model" in cm.to_text() and "note: fell back" in cm.to_text()
    rows = (
        _row("float32", 1000, 2.0, 1.0, pareto=True),
        _row(
            "int8",
            250,
            None,
            error={
                "type": "ConvertError",
                "phase": "convert",
                "message": "no",
                "hint": "",
                "details": {},
            },
            failed_step="convert",
        ),
    )
    rep = SweepReport(
        SweepModel("m.zip", 5000, "serving_default"),
        {"source": "user", "samples": 3},
        "cal.npz",
        rows,
        Recommendation("float32", "float32", "r", "t"),
        Thresholds(),
    )
    back = SweepReport.from_dict(json.loads(render_sweep(rep, "json")))
    assert back.rows == rep.rows and back.recommendation == rep.recommendation
    text = render_sweep(rep, "text")
    assert "float32" in text and "failed" in text and "Recommendation" in text


def test_layer_report_ranks_and_flags_suspects():
    layers = [
        _layer(0, "CONV_2D", "a", 1, 10, 0, 0, 0.1, 0.0001, 0.1, 0),  # 0.1 steps
        _layer(1, "FULLY_CONNECTED", "b", 2, 10, 0, 0, 1, 0.64, 1.0, 0),  # 0.8 steps
        _layer(2, "SOFTMAX", "c", 3, 10, 0, 0, 0, 0.0, 0.0, 0),
    ]  # scale 0
    rep = _finish("int8", "quantization_debugger", 4, layers, 0.0)
    assert rep.worst_n(2) == ("b", "a") and [x.tensor for x in rep.suspects] == ["b"]
    assert rep.keep_float_preset == "int8-float-io" and "1 of 3" in rep.note
    assert LayerErrorReport.from_dict(json.loads(json.dumps(rep.to_dict()))) == rep
    rel = [_layer(0, "ADD", "x", 1, 4, 0, 0, 0, 0.01, 0.001, 0, float_ms=1.0)]  # 10% of RMS
    rep = _finish("int16x8", "tensor_compare", 4, rel, 0.0)
    assert rep.metric == "relative_rmse" and rep.layers[0].suspect
    assert rep.keep_float_preset is None


def test_recommendation_names_a_much_faster_alternative():
    rows = [_row("dynamic", 300, 0.01, 1.0), _row("int8", 250, 0.07, 1.0)]
    rec = recommend(rows)
    assert rec.preset == "int8"
    assert "If speed matters more than size, dynamic" in rec.text and "10 µs" in rec.text


def test_cosine_of_one_value_per_sample_is_taken_over_the_samples():
    ref = np.array([[0.9], [0.1], [0.8], [0.2]])
    flipped = 1.0 - ref  # same signs, opposite answers
    m = compare_outputs("p", ref, flipped, kind="binary")
    assert m.cosine < 0.8 and m.top1_agreement == 0.0
