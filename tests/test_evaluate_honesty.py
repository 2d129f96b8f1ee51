"""Evaluation you can trust: a degenerate comparison (collapsed, constant or
NaN outputs, a reference that predicts one class) is flagged and never
"good"; the recommendation needs agreement and fidelity; synthetic data
respects the model (ids within their embedding table, valid masks, a
sequence length that is not 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.options import CalibrationSource, ConversionOptions, Preset
from core.pipeline.convert import convert_model
from core.pipeline.evaluate import compute_reference, evaluate_tflite
from core.pipeline.recommend import recommend
from core.pipeline.sweep import sweep
from core.tasks.metrics import compare_outputs, degenerate_flags, verdict_of
from core.tasks.results import Thresholds
from core.tasks.sweep import SweepRequest, SweepRow
from tests.helpers.verdict_models import build_verdict_models

TH = Thresholds()


def _codes(outputs):
    return {f.code for f in degenerate_flags(outputs, TH)}


def test_collapsed_output_is_bad_even_when_top1_agrees():
    """The case seen in the field: the original predicts class 0 for every
    input, the int8 model outputs a constant: top-1 "agrees" on 100%."""
    rng = np.random.default_rng(0)
    ref = np.tile([0.9, 0.05, 0.05], (64, 1)) + rng.normal(0, 0.01, (64, 3))
    got = np.tile([1.0, 0.0, 0.0], (64, 1))
    m = compare_outputs("p", ref, got, kind="classifier")
    assert m.top1_agreement == 1.0 and m.collapsed and m.original_classes == 1
    verdict, text = verdict_of([m], TH)
    assert verdict == "bad" and "collapsed" in text
    assert {"collapsed_output", "one_class_original"} <= _codes([m])


def test_low_fidelity_is_bad_for_a_classifier_that_agrees():
    rng = np.random.default_rng(1)
    ref = rng.random((200, 10))
    ref[np.arange(200), rng.integers(0, 10, 200)] += 5.0  # clear, varied winners
    got = ref + rng.normal(0, 3.0, ref.shape)  # same argmax mostly, outputs far off
    got[np.arange(200), ref.argmax(1)] = ref.max(1) + 10
    m = compare_outputs("p", ref, got, kind="classifier")
    assert m.top1_agreement == 1.0 and m.snr_db is not None and m.snr_db < 10
    verdict, _ = verdict_of([m], TH)
    assert verdict == "bad" and "low_fidelity" in _codes([m])


def test_nan_outputs_and_constant_reference_are_flagged():
    ref = np.linspace(0, 1, 40).reshape(20, 2)
    got = ref.copy()
    got[3, 1] = np.nan
    m = compare_outputs("v", ref, got)
    assert m.nonfinite == 1 and verdict_of([m], TH)[0] == "bad"
    flat = np.ones((20, 2))
    c = compare_outputs("v", flat, flat)
    assert c.constant_original and not c.collapsed
    verdict, text = verdict_of([c], TH)
    assert verdict == "check" and text.startswith("Cannot be judged")


def test_recommendation_needs_agreement_and_fidelity_and_states_it():
    good = {"top1_agreement": 1.0, "top1_meaningful": True, "cosine": 0.999, "snr_db": 30.0}
    collapsed = {**good, "cosine": 0.2, "snr_db": 0.5, "degenerate": ["collapsed_output"]}
    rows = [
        SweepRow("float32", "float32", size_bytes=4000, metrics=good),
        SweepRow("int8", "int8", size_bytes=1000, metrics=collapsed),
    ]
    rec = recommend(rows)
    assert rec.preset == "float32"
    assert "0.9" in rec.rule and "10" in rec.rule and "top1_agreement >= 0.99" in rec.rule
    assert "int8" in rec.text and "collapsed" in rec.text


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_verdict_models(tmp_path_factory.mktemp("honesty_models"))


@pytest.mark.slow
def test_token_model_int8_on_synthetic_data_is_meaningful(built, tmp_path):
    model = built / "tokens.keras"
    out = tmp_path / "tokens-int8.tflite"
    res = convert_model(model, out, ConversionOptions(preset=Preset.INT8), workdir=tmp_path / "c")
    # the shape warning suggests a real sequence length, never 1
    assert res.suggested_shapes["token_ids"] == (1, 32)
    assert any("token_ids=1,32" in w for w in res.warnings)
    ref = compute_reference(model, workdir=tmp_path / "ref", options=ConversionOptions())
    feeds, _, _ = ref.arrays()
    ids, seg, mask = feeds["token_ids"], feeds["segment_ids"], feeds["padding_mask"]
    assert ids.shape[1] == 32
    assert ids.min() >= 0 and ids.max() < 1000 and ids.max() > 100  # the whole table is used
    assert set(np.unique(seg)) <= {0, 1}
    assert set(np.unique(mask)) <= {0, 1} and (mask[:, 0] == 1).all()
    acc = evaluate_tflite(out, ref, workdir=tmp_path / "eval", preset="int8")
    o = acc.outputs[0]
    assert not o.constant_original and not o.collapsed and o.nonfinite == 0
    assert o.cosine > 0.9
    assert not {f.code for f in acc.flags} & {"collapsed_output", "low_fidelity", "non_finite"}


@pytest.mark.slow
def test_collapsed_int8_is_flagged_and_not_recommended(built, tmp_path):
    """Calibrated on values around 0.001 and judged on values in [-5, 5]:
    the int8 input saturates and the outputs collapse."""
    report = sweep(
        SweepRequest(
            model_path=str(built / "regress.zip"),
            presets=("float32", "int8"),
            options=ConversionOptions(
                calibration_path=str(built / "narrow_cal.npz"),
                calibration_source=CalibrationSource.ARRAYS,
            ),
            eval_data=str(built / "wide_eval.npz"),
            layer_errors=False,
            runs=5,
            warmup=1,
            workdir=str(tmp_path / "sweep"),
        )
    )
    int8 = report.row("int8")
    assert int8 is not None and int8.measured
    assert int8.metrics["verdict"] == "bad"
    assert set(int8.metrics["degenerate"]) & {"collapsed_output", "low_fidelity"}
    assert report.recommendation.preset != "int8"
    assert "int8" in report.recommendation.text
    assert Path(str(built / "regress.zip")).is_file()
