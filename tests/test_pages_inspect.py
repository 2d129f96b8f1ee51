"""Inspect page in AppTest (reports of real jobs), its charts, downloads, and the
same-origin Netron routes (patched viewer, safe model serving)."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.options import ConversionOptions, Preset
from core.server import jobs
from tests.conftest import ROOT, shown

STUDIO = str(ROOT / "studio.py")
SAMPLES = ROOT / "sample_models"


def _app() -> AppTest:
    at = AppTest.from_file(STUDIO, default_timeout=60)
    at.switch_page("pages/inspect.py")
    return at


def _job_id(at: AppTest) -> str:
    v = at.query_params["job"]
    return v[0] if isinstance(v, list) else v


@pytest.fixture(scope="module")
def converted(job_consumer) -> dict[str, jobs.Job]:
    """Two finished conversions of the digits sample: float32 and int8."""
    from ui.uploads import store_file, store_model, submit_conversion

    cal = store_file(SAMPLES / "digits_calibration.npz")
    model = store_model(SAMPLES / "digits_classifier.zip", calibration=cal)
    out = {}
    for preset in (Preset.FLOAT32, Preset.INT8):
        job = submit_conversion(
            model, ConversionOptions(preset=preset), user="local", calibration=cal
        )
        out[preset.value] = jobs.wait(job.id, 240)
        assert out[preset.value].status is jobs.JobStatus.DONE, out[preset.value].error
    return out


def _report(job: jobs.Job) -> dict[str, Any]:
    from ui.report_view import read_report

    return read_report.__wrapped__(job.report_sha)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the page


def test_empty_page_asks_for_a_tflite(studio_env):
    at = _app().run()
    assert not at.exception
    assert shown(at.title[0].value) == "Inspect a TFLite model"
    assert at.file_uploader[0].allowed_type == [".tflite"]


@pytest.mark.slow
def test_report_of_a_conversion(converted):
    job = converted["int8"]
    at = _app()
    at.query_params["job"] = job.id
    at.run()
    assert not at.exception
    assert "digits_classifier.zip" in shown(at.title[0].value)
    metrics = {m.label: m for m in at.metric}
    assert list(metrics)[:3] == ["Uploaded model", "TFLite file", "Smaller by"]
    assert metrics["Operators"].value == str(_report(job)["model"]["num_operators"])
    # charts before tables; four charts
    assert len(at.get("plotly_chart")) == 4
    tab_labels = [t.label for t in at.tabs]
    for target in (
        "LiteRT CPU",
        "XNNPACK (CPU)",
        "GPU delegate",
        "Edge TPU (Coral)",
        "Microcontrollers (TFLite Micro)",
    ):
        assert any(target in lbl for lbl in tab_labels)
    assert {"Inputs & outputs", "Signatures", "Tensors", "Operators", "Metadata"} <= set(tab_labels)
    words = " ".join(shown(m.value) for m in at.markdown)
    assert "Runs" in words  # LiteRT CPU runs it
    assert "Does not run" in words  # Edge TPU: dynamic batch
    iframe = at.get("iframe")[0].proto
    src = iframe.src or iframe.url
    assert src.startswith("/netron/index.html?url=/netron/models/" + job.id)
    assert src.endswith("/digits_classifier-int8.tflite")
    assert len(at.get("download_button")) == 4
    assert len(at.dataframe) >= 5
    # each card says where its verdict comes from; the runs behind them are on the page
    captions = " ".join(shown(c.value) for c in at.caption)
    assert "Decided by a run on this server" in captions
    assert "Decided by rules: this server has no GPU" in captions
    assert {"Runs behind these verdicts", "Does it fit a microcontroller?"} <= {
        e.label for e in at.expander
    }
    runs = next(d.value for d in at.dataframe if "Runtime" in d.value.columns)
    outcome = dict(zip(runs["Runtime"], runs["Outcome"]))
    assert outcome["Interpreter API (built-in kernels)"] == "ran"
    assert outcome["TFLite Micro interpreter"] == "ran"


@pytest.mark.slow
def test_upload_a_tflite_to_inspect(converted):
    tfl = jobs.artifact_path(converted["float32"].output_sha).read_bytes()
    at = _app().run()
    at.file_uploader[0].set_value(("my model.tflite", tfl, "application/octet-stream")).run()
    assert not at.exception
    job = jobs.wait(_job_id(at), 120)
    assert job.kind is jobs.JobKind.INSPECT and job.status is jobs.JobStatus.DONE, job.error
    at.run()
    assert not at.exception
    assert shown(at.title[0].value) == "my model.tflite"
    labels = [m.label for m in at.metric]
    assert "Uploaded model" not in labels and "TFLite file" in labels
    assert len(at.get("plotly_chart")) == 4


@pytest.mark.slow
def test_tflite_on_the_convert_page_goes_to_inspect(converted):
    tfl = jobs.artifact_path(converted["float32"].output_sha).read_bytes()
    at = AppTest.from_file(STUDIO, default_timeout=60).run()
    at.file_uploader[0].set_value(("m.tflite", tfl, "application/octet-stream")).run()
    assert not at.exception
    job = jobs.get(_job_id(at))
    assert job.kind is jobs.JobKind.INSPECT  # no extra click
    jobs.wait(job.id, 120)
    at.run()
    assert not at.exception
    assert shown(at.title[0].value) == "m.tflite" and len(at.get("plotly_chart")) == 4


def test_not_a_tflite_is_a_plain_error(studio_env):
    at = _app().run()
    at.file_uploader[0].set_value(("broken.tflite", b"\x00" * 64, "application/octet-stream"))
    at.run()
    assert not at.exception
    msg = " ".join(shown(e.value) for e in at.error)
    assert "broken.tflite cannot be inspected" in msg and "not a TensorFlow Lite model" in msg
    assert "job" not in at.query_params


def test_a_model_archive_on_inspect_points_to_convert(studio_env):
    """The uploader takes only .tflite names; content decides (a renamed zip)."""
    at = _app().run()
    data = (SAMPLES / "digits_classifier.zip").read_bytes()
    at.file_uploader[0].set_value(("digits.tflite", data, "application/zip")).run()
    assert not at.exception
    assert any("convert it first" in shown(w.value) for w in at.warning)


# ---------------------------------------------------------------- downloads


@pytest.mark.slow
def test_download_names_and_rendered_reports(converted):
    from ui.format import download_name
    from ui.report_view import render_report

    job = converted["int8"]
    assert download_name(job.model_name, "int8", "tflite") == "digits_classifier-int8.tflite"
    assert download_name(job.model_name, "int8", "html") == "digits_classifier-int8-report.html"
    assert download_name("m.tar.gz", None, "md") == "m-report.md"
    html = render_report(job, "html")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "digits_classifier-int8.tflite" in html
    assert not re.search(r"<script[^>]+src=[\"']https?:", html)  # self-contained
    md = shown(render_report(job, "md"))
    assert "digits_classifier-int8.tflite" in md
    # the worker's TFLite Micro result is stored and reused by the rendered reports
    stored = _report(job)
    assert stored["micro_probe"] and stored["micro_probe"]["ok"] in (True, False)
    assert stored["file"]["sha256"] == job.output_sha


# ---------------------------------------------------------------- charts


@pytest.mark.slow
def test_charts_match_the_report(converted):
    from ui import charts

    for preset, job in converted.items():
        rep = _report(job)
        ops = charts.op_histogram(rep)
        assert sum(sum(b.x) for b in ops.data) == rep["model"]["num_operators"]
        tm = charts.size_treemap(rep).data[0]
        root = list(tm.ids).index("file")
        assert tm.values[root] == rep["size"]["file_bytes"]
        children = sum(v for v, p in zip(tm.values, tm.parents) if p == "file")
        assert children == rep["size"]["file_bytes"]
        pie = charts.weights_by_dtype(rep).data[0]
        by_dtype = {k: v for k, v in rep["size"]["by_dtype"].items() if v}
        assert dict(zip(pie.labels, pie.values)) == by_dtype
        numerics = charts.op_numerics(rep)
        assert sum(numerics.values()) == rep["model"]["num_operators"]
        if preset == "int8":
            assert numerics["integer (quantized)"] > numerics["float"]
        else:
            assert numerics["integer (quantized)"] == 0
        charts.quantization_coverage(rep)


# ---------------------------------------------------------------- Netron routes


async def _call(app: Any, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    raw, _, query = path.partition("?")
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    from urllib.parse import unquote

    scope = {
        "type": "http",
        "method": method,
        "path": unquote(raw),
        "raw_path": raw.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1")],
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
        "http_version": "1.1",
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


@pytest.fixture
def netron_app(studio_env):
    from starlette.applications import Starlette

    from core.server.netron import netron_routes

    return Starlette(routes=netron_routes(studio_env))


def _get(app: Any, path: str) -> tuple[int, dict[str, str], bytes]:
    return asyncio.run(_call(app, path))


def test_netron_patches_apply_to_the_installed_viewer():
    from core.server.netron import unpatched_targets

    assert unpatched_targets() == []


def test_netron_viewer_is_served_patched_with_a_csp(netron_app):
    status, headers, body = _get(netron_app, "/netron/index.html")
    assert status == 200 and b"<title>Netron</title>" in body
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert not re.search(rb"(src|href)=\"https?://", body)  # no outside script/link/font
    status, headers, body = _get(netron_app, "/netron/browser.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    for call in (b"await age();", b"await consent();", b"await telemetry();"):
        assert call not in body
    _, _, base = _get(netron_app, "/netron/base.js")
    assert b"sendBeacon(url, body)" not in base
    status, _, _ = _get(netron_app, "/netron/view.js")
    assert status == 200
    status, headers, _ = _get(netron_app, "/netron/")
    assert status in (302, 307) and headers["location"] == "/netron/index.html"


@pytest.mark.parametrize(
    "path",
    [
        "/netron/server.py",
        "/netron/__init__.py",
        "/netron/..%2F..%2Fetc%2Fpasswd",
        "/netron/.hidden",
        "/netron/nothere.js",
        "/netron/models/" + "0" * 16 + "/m.tflite",  # well-formed, no such job
        "/netron/models/" + "Z" * 16 + "/m.tflite",  # not a job id
        "/netron/models/../../jobs.db/m.tflite",
        "/netron/models/" + "0" * 64 + "/m.tflite",  # a file's hash is not a way in
    ],
)
def test_netron_refuses_what_is_not_a_viewer_file_or_a_stored_model(netron_app, path):
    status, _, _ = _get(netron_app, path)
    assert status in (400, 404)


def test_netron_serves_a_jobs_tflite_by_the_job_and_nothing_else(netron_app):
    data = b"\x1c\x00\x00\x00TFL3" + b"\x00" * 56
    job = jobs.submit(jobs.JobKind.INSPECT, data, model_name="m.tflite")
    st = jobs.store()
    sha = job.input_sha
    st.finish(job.id, jobs.JobStatus.DONE, result={"output_sha": sha, "output_size": len(data)})
    status, headers, body = _get(netron_app, f"/netron/models/{job.id}/m.tflite")
    assert status == 200 and body == data
    assert headers["content-type"] == "application/octet-stream"
    status, _, _ = _get(netron_app, f"/netron/models/{job.id}/m.exe")
    assert status == 404
    status, _, _ = _get(netron_app, f"/netron/models/{sha}/m.tflite")  # by hash: no
    assert status == 404
    path = st.artifact_path(sha)
    os.chmod(path, 0o600)
    path.write_bytes(data[:-1] + b"\x01")  # a flipped byte on disk
    status, _, body = _get(netron_app, f"/netron/models/{job.id}/m.tflite")
    assert status == 404 and body != data[:-1] + b"\x01"


def test_viewer_url_is_same_origin_and_safe():
    from core.server.netron import safe_model_name, viewer_url

    job_id = "a" * 16
    url = viewer_url(job_id, "../../my model.zip")
    assert url.startswith("/netron/index.html?url=/netron/models/" + job_id + "/")
    assert safe_model_name("../../my model.zip") == "my_model.zip.tflite"
    assert safe_model_name("digits-int8.tflite") == "digits-int8.tflite"


def test_the_treemap_stays_readable_on_a_large_model():
    """300 weight tensors over 25 op types: 9 op boxes and one box for the other 16
    types, 8 layers each plus one "smaller tensors" box, and the boxes
    still add up to the file."""
    from ui import charts

    tensors = [
        {"name": f"block{i}/w", "weights_of": f"OP_{i % 25}", "dtype": "FLOAT32", "bytes": 1000 + i}
        for i in range(300)
    ]
    total = sum(t["bytes"] for t in tensors) + 5000
    tm = charts.size_treemap({"tensors": tensors, "size": {"file_bytes": total}}).data[0]
    ops = [i for i, p in zip(tm.ids, tm.parents) if p == "file" and i.startswith("op/")]
    assert len(ops) == 10 and any("16 other op types" in lbl for lbl in tm.labels)
    for op in ops:
        assert sum(1 for p in tm.parents if p == op) <= 9
    assert sum(v for v, p in zip(tm.values, tm.parents) if p == "file") == total
