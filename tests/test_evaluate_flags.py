"""What the sweep flags: a calibration set of constant zeros (run as a job,
then shown on the Compare page, with the re-convert button), and a model with
Select TF ops that cannot run on this server (said plainly, without failing
the sweep)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, shown
from tests.test_evaluate_digits import CAL, EVAL, MODEL, require_samples

pytestmark = pytest.mark.slow

SAMPLES = ROOT / "sample_models"
SELECT = SAMPLES / "select_tf_ops.zip"
SELECT_CAL = SAMPLES / "select_tf_ops_calibration.npz"


@pytest.fixture(scope="module")
def bad_calibration_job(studio_env_module, job_consumer, tmp_path_factory):
    from core.server import jobs

    require_samples(MODEL, CAL, EVAL)
    zeros = tmp_path_factory.mktemp("cal") / "zeros.npz"
    np.savez(zeros, image=np.zeros((100, 8, 8, 1), np.float32))
    job = jobs.submit(
        jobs.JobKind.SWEEP,
        MODEL,
        model_name=MODEL.name,
        params={"presets": ["float32", "int8"], "runs": 20},
        extra_files={"calibration": zeros, "eval": EVAL},
    )
    return jobs.wait(job.id, timeout=300)


def test_constant_calibration_shows_a_large_error_and_is_flagged(bad_calibration_job):
    job = bad_calibration_job
    assert job.status.value == "done", job.error
    report = job.result["sweep"]
    f32, row = report["rows"]
    assert row["preset"] == "int8" and row["metrics"]["verdict"] == "bad"
    assert row["metrics"]["top1_agreement"] < 0.5
    assert row["metrics"]["accuracy_drop"] > 0.4
    codes = {f["code"] for f in row["accuracy"]["flags"]}
    # the int8 outputs collapse to one value: said as such (an error), with the cause
    assert "calibration_constant" in codes
    assert codes & {"large_error", "collapsed_output", "low_fidelity"}
    assert any(
        f["code"] == "calibration_constant" and "constant" in f["message"] for f in report["flags"]
    )
    rec = report["recommendation"]
    assert rec["preset"] == "float32" and "Outside the rule: int8" in rec["text"]
    layers = next(le for le in report["layer_errors"] if le["preset"] == "int8")
    assert layers["worst"] and any(x["suspect"] for x in layers["layers"])
    assert row["artifact_sha"] and f32["artifact_sha"] and job.result["report_sha"]
    assert job.result["output_sha"] == f32["artifact_sha"]  # the recommended file


def test_compare_page_shows_the_sweep_and_reconverts(bad_calibration_job):
    from core.server import jobs

    at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=60)
    at.query_params["job"] = bad_calibration_job.id
    at.run()
    assert not at.exception
    text = " ".join(shown(x.value) for x in [*at.success, *at.warning, *at.error])
    assert "Ship float32: no smaller preset kept the accuracy" in text and "constant" in text
    assert any("Re-convert keeping the worst" in b.label for b in at.button)
    # the diff is a job of its own (a worker reads both files): wait for it
    (diff_id,) = at.session_state["compare.diff_jobs"].values()
    assert jobs.wait(diff_id, timeout=120).status.value == "done"
    at.run()
    assert len(at.dataframe) >= 2  # the presets, the size per op type of the diff
    assert "quantized" in " ".join(shown(m.value) for m in at.markdown)  # the diff's summary
    at.button(key="compare.layers.int8.reconvert").click().run()
    assert not at.exception
    rid = (
        at.query_params["reconvert"][0]
        if isinstance(at.query_params["reconvert"], list)
        else at.query_params["reconvert"]
    )
    ej = jobs.wait(str(rid), timeout=300)
    assert ej.status.value == "done", ej.error
    row = ej.result["row"]
    assert row["label"].startswith("int8-float-io, ") and "in float" in row["label"]
    assert row["options"]["keep_float_ops"] and row["metrics"]
    at.run()
    assert not at.exception
    assert any("Re-converted" in shown(h.value) for h in at.subheader)


def test_select_tf_ops_model_says_plainly_it_cannot_run_here():
    from core.options import ConversionOptions
    from core.pipeline.render import render_sweep
    from core.pipeline.sweep import sweep
    from core.tasks.sweep import SweepRequest

    require_samples(SELECT, SELECT_CAL)
    report = sweep(
        SweepRequest(
            str(SELECT),
            presets=("float32",),
            variants=(ConversionOptions(preset="float32", select_tf_ops=True),),
            options=ConversionOptions(calibration_path=str(SELECT_CAL)),
            runs=10,
            layer_errors=False,
        )
    )
    plain, flex = report.rows
    assert plain.label == "float32" and plain.failed_step == "convert"
    assert plain.error["type"] == "UnsupportedOpsError"
    assert "Cumprod" in plain.error["message"]
    assert flex.label == "float32, Select TF ops" and flex.size_bytes > 0
    assert flex.failed_step == "evaluate" and flex.error["details"]["cannot_run_here"]
    assert flex.note.startswith("Cannot run here")
    assert "cannot run here" in flex.note and "Flex delegate" in flex.note
    assert report.recommendation.preset is None
    assert "could be measured" in report.recommendation.text
    assert "can't run here" in render_sweep(report, "text")


def test_recurrent_state_does_not_leak_between_samples():
    """An LSTM's state tensors persist across invocations in LiteRT; each
    evaluation sample must start from zero, like the original's call."""
    from core.options import ConversionOptions
    from core.pipeline.sweep import sweep
    from core.tasks.sweep import SweepRequest

    model, cal, ev = (
        SAMPLES / f for f in ("sequence_lstm.zip", "sequence_calibration.npz", "sequence_eval.npz")
    )
    require_samples(model, cal, ev)
    report = sweep(
        SweepRequest(
            str(model),
            presets=("float32",),
            options=ConversionOptions(calibration_path=str(cal)),
            eval_data=str(ev),
            runs=10,
            layer_errors=False,
        )
    )
    m = report.rows[0].metrics
    assert m["kind"] == "binary" and m["top1_agreement"] == 1.0
    assert m["accuracy"] == pytest.approx(0.996, abs=0.01)
