"""Convert page in AppTest: pick a model, pick a preset, convert through a real
job consumer, and the plain errors with one-click fixes."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.options import PRESETS, Preset
from core.server import jobs
from tests.conftest import ROOT, shown

STUDIO = str(ROOT / "studio.py")
SAMPLES = ROOT / "sample_models"


def _app() -> AppTest:
    return AppTest.from_file(STUDIO, default_timeout=60)


def _job_id(at: AppTest) -> str:
    v = at.query_params["job"]
    return v[0] if isinstance(v, list) else v


def _finish(at: AppTest, timeout: float = 240) -> jobs.Job:
    job = jobs.wait(_job_id(at), timeout)
    assert job.status.finished, f"job still {job.status.value}: {job.progress}"
    at.run()
    assert not at.exception
    return job


def _texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "success", "warning", "error", "info")
        for e in getattr(at, kind)
    ]
    return "\n".join(shown(p) for p in parts)


def _block_labels(node) -> list[str]:  # type: ignore[no-untyped-def]
    """Labels of status / expander blocks anywhere on the page."""
    out = []
    proto = getattr(node, "proto", None)
    if proto is not None and getattr(node, "type", "") in ("status", "expander", "expandable"):
        out.append(str(getattr(proto, "label", "")))
    for child in (getattr(node, "children", None) or {}).values():
        out += _block_labels(child)
    return out


def _use_sample(at: AppTest, file: str) -> None:
    at.button(key=f"convert.sample.{file}").click().run()
    assert not at.exception


# ---------------------------------------------------------------- without a worker


def test_empty_page_offers_upload_and_every_sample(studio_env):
    at = _app().run()
    assert not at.exception
    assert shown(at.title[0].value) == "Convert a model to TensorFlow Lite"
    assert at.file_uploader[0].allowed_type  # a model uploader
    keys = {b.key for b in at.button}
    import json

    manifest = json.loads((SAMPLES / "manifest.json").read_text())
    models = [e["file"] for e in manifest if e["kind"] in ("saved_model_zip", "keras", "h5")]
    assert models
    for f in models:
        assert f"convert.sample.{f}" in keys


def test_sample_shows_model_presets_and_size_effects(studio_env):
    at = _app().run()
    _use_sample(at, "digits_classifier.zip")
    text = _texts(at)
    assert "digits_classifier.zip" in text and "SavedModel (zip)" in text
    radio = at.radio(key="convert.preset")
    assert list(radio.options) == [PRESETS[p].title for p in Preset]
    assert radio.value is Preset.DYNAMIC
    radio.set_value(Preset.INT8).run()
    text = _texts(at)
    assert PRESETS[Preset.INT8].summary in text
    assert "Edge TPU" in text  # which device it suits
    assert "digits_calibration.npz" in text  # the sample's calibration data is used


def test_upload_without_calibration_warns_for_int8(studio_env):
    at = _app().run()
    at.file_uploader[0].set_value(
        (
            "digits_classifier.zip",
            (SAMPLES / "digits_classifier.zip").read_bytes(),
            "application/zip",
        )
    ).run()
    assert not at.exception
    assert "digits_classifier.zip" in _texts(at)
    # the uploader was reset: the page keeps ids, Streamlit drops its copy
    assert not at.file_uploader or all(not u.value for u in at.file_uploader[:1])
    at.radio(key="convert.preset").set_value(Preset.INT8).run()
    assert any("needs calibration data" in shown(w.value) for w in at.warning)
    # calibration data uploaded under Advanced options is used, and sent with the job
    cal = (SAMPLES / "digits_calibration.npz").read_bytes()
    at.file_uploader(key="convert.calibration_upload").set_value(
        ("digits_calibration.npz", cal, "application/octet-stream")
    ).run()
    assert not any("needs calibration data" in shown(w.value) for w in at.warning)
    assert "Calibration data: **digits_calibration.npz**" in _texts(at)
    at.button(key="convert.go").click().run()
    assert not at.exception
    job = jobs.get(_job_id(at))  # queued: no consumer in this test
    assert job.params["options"]["preset"] == "int8"
    assert job.params["options"]["calibration_path"] == "digits_calibration.npz"
    assert job.params["files"]["calibration"]["name"] == "digits_calibration.npz"
    assert job.params["files"]["calibration"]["size"] == len(cal)
    jobs.cancel(job.id)


def test_bad_upload_is_a_plain_error(studio_env):
    at = _app().run()
    at.file_uploader[0].set_value(("model.zip", b"this is not a zip", "application/zip")).run()
    assert not at.exception
    msg = " ".join(shown(e.value) for e in at.error)
    assert "model.zip cannot be used" in msg and "not a valid zip archive" in msg
    assert "zip -r" in msg  # the fix


def test_bad_option_is_a_plain_error(studio_env):
    at = _app().run()
    _use_sample(at, "digits_classifier.zip")
    at.text_area(key="convert.input_shapes").set_value("image=1,x,8").run()
    at.button(key="convert.go").click().run()
    assert not at.exception
    assert any("Cannot read the input shape" in shown(e.value) for e in at.error)
    assert "job" not in at.query_params


def test_unknown_job_link(studio_env):
    at = _app()
    at.query_params["job"] = "doesnotexist0000"
    at.run()
    assert not at.exception
    assert any("There is no job" in shown(w.value) for w in at.warning)


def test_progress_and_cancel_while_queued(studio_env):
    """No consumer here: the job waits in the queue; the page says so and cancels it."""
    from core.options import ConversionOptions
    from ui.uploads import store_model, submit_conversion

    model = store_model(SAMPLES / "digits_classifier.zip")
    job = submit_conversion(model, ConversionOptions(), user="local")
    at = _app()
    at.query_params["job"] = job.id
    at.run()
    assert not at.exception
    assert any("Waiting in the queue" in label for label in _block_labels(at.main))
    at.button(key=f"convert.progress.cancel.{job.id}").click().run()
    assert not at.exception
    assert jobs.get(job.id).status is jobs.JobStatus.CANCELLED
    assert any("was cancelled" in shown(i.value) for i in at.info)
    assert at.button(key="convert.cancelled.again")


# ---------------------------------------------------------------- real conversions


@pytest.mark.slow
def test_convert_a_sample_and_see_the_headline(job_consumer):
    at = _app().run()
    _use_sample(at, "digits_classifier.zip")
    at.radio(key="convert.preset").set_value(Preset.FLOAT16).run()
    at.button(key="convert.go").click().run()
    assert not at.exception
    job = _finish(at)
    assert job.status is jobs.JobStatus.DONE, job.error
    assert any(
        "Converted **digits_classifier.zip** with **Float16 weights**" in shown(s.value)
        for s in at.success
    )
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) >= {"Uploaded model", "TFLite file", "Smaller by", "Conversion time"}
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download .tflite", "Report (HTML)", "Report (Markdown)", "Report (JSON)"]
    assert all(b.proto.deferred_file_id for b in at.get("download_button"))  # on click only
    assert "Where it runs" in _texts(at)
    # A shared link, opened in another session, shows the same result and offers
    # to convert the same model again.
    other = _app()
    other.query_params["job"] = job.id
    other.run()
    assert not other.exception
    assert any("Float16 weights" in shown(s.value) for s in other.success)
    assert "digits_classifier.zip" in _texts(other)
    assert other.radio(key="convert.preset")


@pytest.mark.slow
def test_rejected_ops_offer_retry_with_select_tf_ops(job_consumer):
    at = _app().run()
    _use_sample(at, "select_tf_ops.zip")
    at.radio(key="convert.preset").set_value(Preset.FLOAT32).run()
    at.button(key="convert.go").click().run()
    job = _finish(at)
    assert job.status is jobs.JobStatus.FAILED
    assert job.error["details"]["fix"] == "select_tf_ops"
    msg = " ".join(shown(e.value) for e in at.error)
    assert "failed while converting" in msg and "Select TF ops" in msg
    assert "Traceback" not in msg
    retry = at.button(key="convert.failure.fix.select")
    assert retry.label == "Retry with Select TF ops"
    retry.click().run()
    assert not at.exception
    assert _job_id(at) != job.id
    job2 = _finish(at)
    assert job2.status is jobs.JobStatus.DONE, job2.error
    assert job2.params["options"]["select_tf_ops"] is True
    assert any("Flex delegate" in shown(w.value) for w in at.warning)


@pytest.mark.slow
def test_several_signatures_offer_a_choice(job_consumer):
    at = _app().run()
    _use_sample(at, "multi_signature.zip")
    at.radio(key="convert.preset").set_value(Preset.FLOAT32).run()
    at.button(key="convert.go").click().run()
    job = _finish(at)
    assert job.status is jobs.JobStatus.FAILED
    assert job.error["details"]["signature_keys"] == ["decode", "encode"]
    choice = at.selectbox(key="convert.failure.fix.sig_choice")
    assert list(choice.options) == ["decode", "encode"]
    choice.set_value("encode").run()
    at.button(key="convert.failure.fix.sig").click().run()
    job2 = _finish(at)
    assert job2.status is jobs.JobStatus.DONE, job2.error
    assert (job2.result or {})["conversion"]["signature_key"] == "encode"
