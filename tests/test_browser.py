"""End to end in a real headless Chromium: the README's `make run`, a sample model
uploaded through the file uploader, two presets, the report, the Netron graph,
the downloads — and not one request leaving 127.0.0.1.

Uses Debian's /usr/bin/chromium (no browser download). Screenshots of every
page go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT, chromium_path, free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = chromium_path()
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must run the browser tests: .ci/run installs Debian's chromium")
if CHROMIUM is None:
    pytest.skip(
        "no system Chromium (/usr/bin/chromium); .ci/run installs it", allow_module_level=True
    )

ARTIFACTS = ROOT / "test-artifacts"
SAMPLE = ROOT / "sample_models" / "digits_classifier.zip"
WAIT_JOB_MS = 120_000


def _serve_command(port: int) -> list[str]:
    """The README's command. ``TFLITE_STUDIO_TEST_APP`` points at another entry
    script (a patched copy of app.py) when debugging the app's wiring."""
    override = os.environ.get("TFLITE_STUDIO_TEST_APP")
    if override:
        return [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            override,
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ]
    # `make run` installs first when pyproject.toml changed; when its stamp is stale
    # (pytest run by hand, not via `make test`) run what it runs after installing.
    stale = (
        subprocess.run(["make", "-q", ".venv/.run-stamp"], cwd=ROOT, capture_output=True).returncode
        != 0
    )
    if stale:
        return [str(ROOT / ".venv" / "bin" / "tflite-studio"), "serve", "--port", str(port)]
    return ["make", "run", f"PORT={port}"]


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the app did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("browser")
    port = free_port()
    env = {
        **os.environ,
        "TFLITE_STUDIO_DATA_DIR": str(tmp / "data"),
        "TFLITE_STUDIO_WORKERS": "1",
        "TFLITE_STUDIO_EMBEDDED_WORKERS": "1",
        "TFLITE_STUDIO_PASSWORD": "",
        "PYTHONPATH": str(ROOT),
    }
    log = tmp / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            _serve_command(port),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log, 90)
        with urllib.request.urlopen(base + "/netron/index.html", timeout=10) as r:
            assert "Content-Security-Policy" in r.headers, (
                "the app's own routes are not served: `streamlit run app.py` must find "
                "`app = st.App(...)` (an assignment it can see) to serve the st.App"
            )
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "browser-server.log").write_bytes(log.read_bytes())


@pytest.fixture(scope="module")
def browser_page(server: str) -> Iterator[tuple[object, list[str]]]:
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, accept_downloads=True
        )
        context.set_default_timeout(30_000)
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))  # pages, frames, workers
        page = context.new_page()
        page.on("worker", lambda w: requests.append(w.url))
        try:
            yield page, requests
        finally:
            context.close()
            browser.close()


_CONTENT_HEIGHT_JS = """() => Math.max(document.body.scrollHeight, ...Array.from(
    document.querySelectorAll('[data-testid="stMain"], section, div')).filter(
    (e) => e.scrollHeight > e.clientHeight + 4
        && /(auto|scroll)/.test(getComputedStyle(e).overflowY)).map((e) => e.scrollHeight))"""


_CLOCK_PLUS_400_DAYS = """(() => {
  const shift = 400 * 24 * 3600 * 1000, Real = Date;
  class Later extends Real {
    constructor(...a) { if (a.length) { super(...a); } else { super(Real.now() + shift); } }
    static now() { return Real.now() + shift; }
  }
  window.Date = Later;
})();"""


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole page: Streamlit scrolls inside its main block, so the window is
    made as tall as the content for the picture, then restored."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    height = min(int(page.evaluate(_CONTENT_HEIGHT_JS)) + 60, 9000)
    if height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(600)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size(size)


def _app_text(page, text: str, timeout: int = 30_000):  # type: ignore[no-untyped-def]
    loc = page.get_by_text(text, exact=False).first
    playwright_sync.expect(loc).to_be_visible(timeout=timeout)
    return loc


def _pick_preset(page, title: str) -> None:  # type: ignore[no-untyped-def]
    page.locator('[data-testid="stRadio"]').get_by_text(title, exact=True).click()
    # the explanation card follows the choice
    playwright_sync.expect(
        page.locator('[data-testid="stMarkdownContainer"] strong', has_text=title).first
    ).to_be_visible()


def _convert_and_wait(page, preset_title: str) -> None:  # type: ignore[no-untyped-def]
    _pick_preset(page, preset_title)
    page.get_by_role("button", name="Convert", exact=True).click()
    page.wait_for_url("**job=*")
    try:  # the live progress, when the job is not already done
        page.get_by_text("Working on").or_(page.get_by_text("Waiting in the queue")).first.wait_for(
            timeout=5_000
        )
        _shot(page, f"0x-convert-running-{preset_title.split()[0].lower()}")
    except playwright_sync.TimeoutError:
        pass
    _app_text(page, f"with {preset_title}", timeout=WAIT_JOB_MS)


def test_convert_two_presets_inspect_and_download(browser_page, server, tmp_path):
    page, requests = browser_page
    expect = playwright_sync.expect
    page.goto(server + "/")
    _app_text(page, "Convert a model to TensorFlow Lite")
    _shot(page, "01-convert-start")

    # Upload a sample through the real file uploader.
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        str(SAMPLE)
    )
    _app_text(page, "digits_classifier.zip · SavedModel (zip)")
    _shot(page, "02-convert-model-chosen")

    # First preset: float16.
    _convert_and_wait(page, "Float16 weights")
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    _shot(page, "03-convert-done-float16")

    # Second preset on the same upload: integer only (the upload's calibration is
    # random here: the warning says so).
    _convert_and_wait(page, "Integer only (int8 in/out)")
    job_url = page.url
    _shot(page, "04-convert-done-int8")

    # Download the .tflite and load it in LiteRT.
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Download .tflite").first.click()
    d = dl.value
    assert d.suggested_filename == "digits_classifier-int8.tflite"
    model = tmp_path / d.suggested_filename
    d.save_as(model)
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model))
    interp.allocate_tensors()
    assert interp.get_input_details()[0]["dtype"].__name__ == "int8"

    # The report, with charts and the Netron graph.
    page.get_by_text("See inside the model").click()
    page.wait_for_url("**/inspect?job=*")
    _app_text(page, "Where it runs")
    expect(page.locator(".js-plotly-plot").nth(3)).to_be_visible(timeout=30_000)
    frame_el = page.locator('iframe[title^="Graph of"]')
    frame_el.scroll_into_view_if_needed()
    frame = page.frame_locator('iframe[title^="Graph of"]')
    expect(frame.locator("g.node").first).to_be_attached(timeout=60_000)
    assert frame.locator("g.node").count() >= 5
    src = frame_el.get_attribute("src") or ""
    assert src.startswith("/netron/") and "digits_classifier-int8.tflite" in src
    frame_el.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    _shot(page, "05-inspect-report")

    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Report (HTML)").first.click()
    assert dl.value.suggested_filename == "digits_classifier-int8-report.html"
    html = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "<html" in html.lower() and "digits_classifier-int8.tflite" in html

    # The viewer alone, a year after Netron's build date: no "please update" dialog,
    # no cookie-consent dialog, the graph still renders.
    viewer = page.context.new_page()
    viewer.add_init_script(_CLOCK_PLUS_400_DAYS)  # Playwright's clock needs eval(); Netron bans it
    viewer.goto(server + src)
    expect(viewer.locator("g.node").first).to_be_attached(timeout=60_000)
    body = viewer.locator("body").inner_text()
    assert "update" not in body.lower() and "cookies" not in body.lower()
    viewer.close()

    # The job link works in a fresh tab (anyone with the link).
    other = page.context.new_page()
    other.goto(job_url)
    _app_text(other, "with Integer only (int8 in/out)", timeout=30_000)
    other.close()

    # Every other page renders without an error.
    for path, marker, shot in (
        ("/guide", "What quantization does", "06-guide"),
        ("/inspect", "Inspect a TFLite model", "07-inspect-empty"),
        ("/history", "History", "08-history"),
        ("/compare", "Which preset should I ship?", "09-compare"),
    ):
        page.goto(server + path)
        _app_text(page, marker)
        assert page.get_by_test_id("stException").count() == 0, path
        _shot(page, shot)

    # Nothing left the machine: pages, frames (Netron), workers, downloads.
    outside = sorted(
        {
            u
            for u in requests
            if urlsplit(u).scheme not in ("data", "blob")
            and urlsplit(u).hostname not in ("127.0.0.1",)
        }
    )
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert any("/netron/" in u for u in requests)


@pytest.mark.timeout(420)
def test_compare_sample_presets_in_one_click(browser_page, server):
    """Issue 6's "done when": on the digits sample, one click shows every
    preset's size, latency and accuracy, the Pareto chart, the int8 per-layer
    error chart and the recommendation."""
    page, requests = browser_page
    page.goto(server + "/compare")
    _app_text(page, "Which preset should I ship?")
    page.get_by_role("button", name="Compare presets").click()
    page.wait_for_url("**job=*")
    table = page.get_by_test_id("stDataFrame").first
    playwright_sync.expect(table).to_be_visible(timeout=360_000)  # the sweep is done
    charts = page.get_by_test_id("stPlotlyChart")
    playwright_sync.expect(charts.nth(1)).to_be_attached(timeout=30_000)  # Pareto + layers
    body = page.locator('[data-testid="stMain"]').inner_text()
    for preset in ("float32", "float16", "dynamic", "int8-float-io", "int8", "int16x8"):
        assert preset in body, preset
    assert "Re-convert keeping the worst" in body
    # the recommendation, in words, names a preset and its rule
    assert re.search(r"Ship (float32|float16|dynamic|int8-float-io|int8|int16x8)\b", body), body
    assert "99%" in body
    assert page.get_by_test_id("stException").count() == 0
    _shot(page, "10-compare-sweep")
    outside = sorted(
        {
            u
            for u in requests
            if urlsplit(u).scheme not in ("data", "blob")
            and urlsplit(u).hostname not in ("127.0.0.1",)
        }
    )
    assert not outside, f"requests left 127.0.0.1: {outside}"


def test_names_from_a_model_are_shown_as_words(browser_page, server, tmp_path):
    """A .tflite whose op and tensor names are Markdown, HTML and links: the
    Inspect page shows them as text, loads nothing and links nowhere."""
    import http.server
    import threading

    from tests.helpers.crafted import named_model

    hits: list[str] = []

    class Pixel(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    pixel = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pixel)
    threading.Thread(target=pixel.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{pixel.server_address[1]}"
    evil_op = f"![op]({host}/op.png)"
    evil_weight = f'<img src="{host}/w.png"> [click]({host}/link)'
    evil_input = f":red[red] $x$ **bold** <script>fetch('{host}/js')</script>"
    model = tmp_path / "names.tflite"
    model.write_bytes(named_model(evil_op, evil_weight, evil_input))
    page, _requests = browser_page
    try:
        page.goto(server + "/inspect")
        _app_text(page, "Inspect a TFLite model")
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
            str(model)
        )
        _app_text(page, "Where it runs", timeout=WAIT_JOB_MS)
        page.get_by_role("tab", name=re.compile("LiteRT")).first.click()
        page.wait_for_timeout(1500)
        main = page.locator('[data-testid="stMain"]')
        text = main.inner_text()
        assert "![op]" in text  # the custom op's name, as written
        for el in ("img", "a"):  # no image or link came out of a name
            found = main.locator(
                f'[data-testid="stMarkdownContainer"] {el}[src*="{host}"], '
                f'[data-testid="stMarkdownContainer"] {el}[href*="{host}"]'
            )
            assert found.count() == 0, el
        _shot(page, "11-inspect-hostile-names")
    finally:
        pixel.shutdown()
    assert hits == [], hits
