"""The Optimize page in a real headless Chromium: upload a float ``.tflite``,
optimize it with weight-only-int4, see the validation chart and the size
drop, download the optimized file and the deploy kit.

Uses Debian's /usr/bin/chromium (no browser download); screenshots go to
test-artifacts/ (gitignored)."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import Server, studio_server

from tests.conftest import ROOT, chromium_path
from tests.helpers.optimize_models import build_optimize_models

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = chromium_path()
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must run the browser tests: .ci/run installs Debian's chromium")
if CHROMIUM is None:
    pytest.skip("no system Chromium (/usr/bin/chromium)", allow_module_level=True)

ARTIFACTS = ROOT / "test-artifacts"
WAIT_JOB_MS = 240_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with studio_server(tmp_path_factory.mktemp("browser-optimize") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def page(server: Server) -> Iterator[object]:
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1400, "height": 1100}, accept_downloads=True
        )
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _see(page, text: str, timeout: int = 30_000):  # type: ignore[no-untyped-def]
    loc = page.get_by_text(text, exact=False).first
    playwright_sync.expect(loc).to_be_visible(timeout=timeout)
    return loc


def test_upload_optimize_int4_chart_size_drop_and_downloads(
    page, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    expect = playwright_sync.expect
    models = build_optimize_models(tmp_path_factory.mktemp("browser-models"))
    float_file = models / "convnet.tflite"
    page.goto(server.url("/optimize"))
    _see(page, "Optimize and deploy a TFLite model")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        str(float_file)
    )
    page.wait_for_url("**job=*", timeout=60_000)
    _see(page, "1. Recipe", timeout=WAIT_JOB_MS)
    _see(page, "Weight-only int4")
    expect(page.get_by_text("chosen").first).to_be_visible()  # weight-only-int4 is the default
    _shot(page, "optimize-01-cards")

    page.get_by_role("button", name="Optimize", exact=True).click()
    _see(page, "Optimized", timeout=WAIT_JOB_MS)
    _see(page, "Smaller by")
    expect(page.get_by_test_id("stMetric").nth(2)).to_contain_text("×")
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    _see(page, "Tensor by tensor")
    _see(page, "Worst tensors")
    _shot(page, "optimize-02-result")

    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Download optimized .tflite").click()
    d = dl.value
    assert d.suggested_filename == "convnet-weight-only-int4.tflite"
    data = Path(d.path()).read_bytes()
    assert data[4:8] == b"TFL3" and len(data) < 0.25 * float_file.stat().st_size

    page.get_by_role("button", name="Build the deploy kit").first.click()
    _see(page, "Download the kit (.zip)", timeout=WAIT_JOB_MS)
    page.get_by_role("tab", name="Python (ai-edge-litert)").click()
    _see(page, "python/run.py")
    _shot(page, "optimize-03-deploy")
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Download the kit (.zip)").click()
    kit = zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert {"python/run.py", "android/ModelRunner.kt", "micro/model_data.cc"} <= set(kit.namelist())
    assert kit.read("model.tflite") == data
    assert page.get_by_test_id("stException").count() == 0
