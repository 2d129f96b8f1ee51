"""End to end in a real headless Chromium, as each user would walk it: the
README's `make run`; the ML engineer uploading a model (its real inputs as the
Input shapes placeholder, two presets, the second double-clicked from the
bottom of the page with its progress in view and one job run, the sidebar's
Inspect showing the model, the report, the Netron graph as tall as the window,
"Fix the input shapes", a model needing Select TF ops); the demo (the Guide's
pictures, Compare in one click with a one-sentence recommendation); the
colleague with a link (a sweep's id on Inspect or Convert opens Compare);
small screens (800 px); no command-line flag on any page, and not one request
leaving 127.0.0.1.

Uses Debian's /usr/bin/chromium (no browser download). Screenshots of every
page at 1440 and 800 px go to test-artifacts/ (gitignored).
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


_TOP_JS = """() => document.querySelectorAll('[data-testid="stMain"], section').forEach(
    (e) => e.scrollTo(0, 0))"""
WIDTHS = (1440, 800)
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")  # a command-line flag, e.g. --input-shape
SEEN: dict[str, str] = {}  # job ids the walk-throughs hand to each other


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The whole page: Streamlit scrolls inside its main block, so the window is
    made as tall as the content for the picture, then restored."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    height = min(int(page.evaluate(_CONTENT_HEIGHT_JS)) + 60, 9000)
    if height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(600)
    page.evaluate(_TOP_JS)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size(size)


def _shots(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The page at 1440 and at 800 px wide (``name-1440.png``, ``name-800.png``)."""
    size = page.viewport_size
    for w in WIDTHS:
        page.set_viewport_size({"width": w, "height": size["height"]})
        page.wait_for_timeout(500)
        _shot(page, f"{name}-{w}")
    page.set_viewport_size(size)


def _main_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator('[data-testid="stMain"]').inner_text()


def _no_flags(page, where: str) -> None:  # type: ignore[no-untyped-def]
    """The page speaks the web's words: no command-line flag anywhere on it."""
    found = FLAG.findall(_main_text(page))
    assert not found, f"{where} shows command-line flags: {found}"


def _api_jobs(server: str) -> list[dict]:
    import json

    with urllib.request.urlopen(server + "/api/jobs?limit=200", timeout=10) as r:
        return json.loads(r.read())["jobs"]


def _in_view(page, locator) -> bool:  # type: ignore[no-untyped-def]
    box = locator.bounding_box()
    return box is not None and 0 <= box["y"] < page.viewport_size["height"] - 20


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


def _progress(page):  # type: ignore[no-untyped-def]
    return page.get_by_text("Working on").or_(page.get_by_text("Waiting in the queue")).first


def _convert_and_wait(page, preset_title: str, done: str | None = None) -> None:  # type: ignore[no-untyped-def]
    _pick_preset(page, preset_title)
    page.get_by_role("button", name="Convert", exact=True).click()
    page.wait_for_url("**job=*")
    try:  # the live progress, when the job is not already done
        _progress(page).wait_for(timeout=5_000)
        _shots(page, f"0x-convert-running-{preset_title.split()[0].lower()}")
    except playwright_sync.TimeoutError:
        pass
    _app_text(page, done or f"with {preset_title}", timeout=WAIT_JOB_MS)


def _outside(requests: list[str]) -> list[str]:
    return sorted(
        {
            u
            for u in requests
            if urlsplit(u).scheme not in ("data", "blob")
            and urlsplit(u).hostname not in ("127.0.0.1",)
        }
    )


def _use_sample(page, file: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("tab", name=re.compile("Try a sample")).click()
    # Streamlit's key class turns every character but [a-zA-Z0-9_-] into "-"
    key = re.sub(r"[^a-zA-Z0-9_-]", "-", f"convert.sample.{file}")
    page.locator(f".st-key-{key} button").click()


def test_a_fresh_server_names_its_pages(browser_page, server):
    """The first visit to a freshly started server, on a page other than the first:
    the sidebar lists the pages by their titles ("studio, compare, …" was a
    Streamlit fallback that ran the page file on its own)."""
    page, _requests = browser_page
    page.goto(server + "/compare")
    _app_text(page, "Which preset should I ship?")
    nav = page.get_by_test_id("stSidebarNav").inner_text()
    names = [n.strip() for n in nav.splitlines() if n.strip()]
    for title in ("Convert", "Inspect", "Compare", "History", "Guide"):
        assert title in names, names
    assert not {"studio", "compare", "convert", "inspect"} & set(names), names
    _shots(page, "00-fresh-server-compare")


def test_convert_two_presets_inspect_and_download(browser_page, server, tmp_path):
    """The ML engineer with their own model: upload, the real input names as the
    Input shapes placeholder, two conversions (the second from the bottom of the
    page, double-clicked: its progress is in view and one job runs), the
    sidebar's Inspect showing the model, the report, the Netron graph, "Fix the
    input shapes", the downloads — and no command-line flag on any page."""
    page, requests = browser_page
    expect = playwright_sync.expect
    page.goto(server + "/")
    page.wait_for_url("**/convert")  # "/" opens Convert, which lives at /convert
    _app_text(page, "Convert a model to TensorFlow Lite")
    _shots(page, "01-convert-start")

    # Upload a model through the real file uploader; its inputs are read by a worker.
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        str(SAMPLE)
    )
    _app_text(page, "digits_classifier.zip · SavedModel (zip)")
    page.get_by_text("Advanced options").click()
    shapes = page.locator('textarea[aria-label="Input shapes"]')
    expect(shapes).to_have_attribute("placeholder", "image=1,8,8,1", timeout=WAIT_JOB_MS)
    _shots(page, "02-convert-model-chosen")
    _no_flags(page, "Convert with a model")

    # First preset: float16.
    _convert_and_wait(page, "Float16 weights")
    expect(page.get_by_test_id("stMetric").first).to_be_visible()
    _shots(page, "03-convert-done-float16")

    # Second preset, from the bottom of the page, double-clicked.
    before = {j["id"] for j in _api_jobs(server) if j["kind"] == "convert"}
    _pick_preset(page, "Integer only (int8 in/out)")
    button = page.get_by_role("button", name="Convert", exact=True)
    button.scroll_into_view_if_needed()
    button.dblclick()
    page.wait_for_url("**job=*")
    status = _progress(page)
    try:
        status.wait_for(timeout=5_000)
        assert _in_view(page, status), "the progress is out of view after the second Convert"
        _shots(page, "04-convert-running-second")
    except playwright_sync.TimeoutError:  # already done: the result is what is in view
        assert _in_view(page, page.get_by_text("with Integer only (int8 in/out)").first)
    _app_text(page, "with Integer only (int8 in/out)", timeout=WAIT_JOB_MS)
    new = [j for j in _api_jobs(server) if j["kind"] == "convert" and j["id"] not in before]
    assert [j["preset"] for j in new] == ["int8"], new  # one job for the double click
    job_url = page.url
    SEEN["int8"] = new[0]["id"]
    _shots(page, "05-convert-done-int8")
    _no_flags(page, "Convert with a result")

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

    # The sidebar's Inspect shows the model just converted.
    page.get_by_test_id("stSidebarNav").get_by_text("Inspect", exact=True).click()
    page.wait_for_url("**/inspect?job=*")
    assert SEEN["int8"] in page.url
    _app_text(page, "digits_classifier.zip → Integer only (int8 in/out)")
    _app_text(page, "Where it runs")
    expect(page.locator(".js-plotly-plot").nth(3)).to_be_visible(timeout=30_000)
    _no_flags(page, "Inspect")

    # The graph: as tall as the window, a full-screen control, the toolbar beside the nodes.
    frame_el = page.locator('iframe[title^="Graph of"]')
    frame_el.scroll_into_view_if_needed()
    frame = page.frame_locator('iframe[title^="Graph of"]')
    expect(frame.locator("g.node").first).to_be_attached(timeout=60_000)
    assert frame.locator("g.node").count() >= 5
    src = frame_el.get_attribute("src") or ""
    assert src.startswith("/netron/") and "digits_classifier-int8.tflite" in src
    box = frame_el.bounding_box()
    assert box and box["height"] >= page.viewport_size["height"] - 200
    full = page.get_by_role("link", name=re.compile("Full screen"))
    expect(full).to_be_visible()
    assert full.get_attribute("href") == src
    # boxes, not a script: the embedded Netron refuses eval(), which evaluate() needs
    target = frame.locator("#target").bounding_box()
    toolbar = frame.locator("#toolbar").bounding_box()
    assert target and toolbar
    overlap = target["y"] + target["height"] - toolbar["y"]
    assert overlap <= 1, f"Netron's toolbar covers {overlap}px of the graph"
    page.wait_for_timeout(800)
    _shots(page, "06-inspect-report")

    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Report (HTML)").first.click()
    assert dl.value.suggested_filename == "digits_classifier-int8-report.html"
    html = Path(dl.value.path()).read_text(encoding="utf-8")
    assert "<html" in html.lower() and "digits_classifier-int8.tflite" in html

    # Edge TPU needs fixed input shapes: the button fills the Convert page's field.
    page.get_by_role("button", name="Fix the input shapes").first.click()
    page.wait_for_url("**/convert?job=*")
    expect(page.locator('textarea[aria-label="Input shapes"]')).to_have_value(
        "image=1,8,8,1", timeout=30_000
    )
    _shots(page, "07-convert-shapes-fixed")
    _convert_and_wait(
        page, "Integer only (int8 in/out)", done="with Integer only (int8 in/out) (fixed shapes)"
    )
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Download .tflite").first.click()
    assert dl.value.suggested_filename == "digits_classifier-int8-fixedshapes.tflite"

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

    # Every other page renders without an error, in the web's own words.
    for path, marker, shot in (
        ("/guide", "What quantization does", "08-guide"),
        ("/inspect", "Inspect a TFLite model", "09-inspect-current"),
        ("/history", "History", "10-history"),
        ("/compare", "Which preset should I ship?", "11-compare"),
    ):
        page.goto(server + path)
        _app_text(page, marker)
        page.wait_for_timeout(1500)
        assert page.get_by_test_id("stException").count() == 0, path
        _no_flags(page, path)
        _shots(page, shot)
    assert _outside(requests) == [], f"requests left 127.0.0.1: {_outside(requests)}"
    assert any("/netron/" in u for u in requests)


def test_the_guide_has_pictures(browser_page, server):
    """The workflow as a diagram, and a chart of what each preset did."""
    page, requests = browser_page
    page.goto(server + "/guide")
    _app_text(page, "The way through")
    diagram = page.get_by_test_id("stGraphVizChart").locator("svg")
    playwright_sync.expect(diagram).to_be_visible(timeout=30_000)
    svg = diagram.inner_html()
    for step in ("Pick a model", "Convert", "Check", "Deploy", "Optimize"):
        assert step in svg, step
    chart = page.get_by_test_id("stPlotlyChart").first
    playwright_sync.expect(chart).to_be_visible()
    assert "What each preset did to" in chart.inner_text()
    _shots(page, "12-guide-pictures")
    assert _outside(requests) == []


@pytest.mark.timeout(600)
def test_compare_sample_presets_in_one_click(browser_page, server):
    """The demo to non-programmers: on the digits sample, one click shows every
    preset's size, latency and accuracy, a one-sentence recommendation, every
    metric explained, the Pareto chart, the int8 per-layer error chart."""
    page, requests = browser_page
    page.goto(server + "/compare")
    _app_text(page, "Which preset should I ship?")
    page.get_by_text("A sample model", exact=True).click()
    page.get_by_role("button", name="Compare presets").click()
    page.wait_for_url("**job=*")
    SEEN["sweep"] = urlsplit(page.url).query.split("job=")[1].split("&")[0]
    table = page.get_by_test_id("stDataFrame").first
    playwright_sync.expect(table).to_be_visible(timeout=540_000)  # the sweep is done
    charts = page.get_by_test_id("stPlotlyChart")
    playwright_sync.expect(charts.nth(1)).to_be_attached(timeout=30_000)  # Pareto + layers
    body = _main_text(page)
    for preset in ("float32", "float16", "dynamic", "int8-float-io", "int8", "int16x8"):
        assert preset in body, preset
    assert "Re-convert keeping the worst" in body
    # the recommendation leads with one plain sentence, its reasons below
    # (the alert's text starts with its icon's name: the sentence is its first line after it)
    headline = page.get_by_test_id("stAlertContentSuccess").first.inner_text().split("\n")[-1]
    assert re.match(r"Ship (float32|float16|dynamic|int8-float-io|int8|int16x8)\b", headline)
    assert re.search(r"(smaller|accurate|same answers)", headline), headline
    assert "99%" in body
    # every metric explained, in words
    for words in ("same answer as original", "output similarity", "signal-to-noise"):
        assert words in body, words
    assert "best trade-off" in body and "Pareto" not in body.split("Size, speed")[0]
    assert page.get_by_test_id("stException").count() == 0
    _no_flags(page, "Compare")
    _shots(page, "13-compare-sweep")
    assert _outside(requests) == [], f"requests left 127.0.0.1: {_outside(requests)}"


def test_a_shared_link_to_a_sweep_opens_on_compare(browser_page, server):
    """The colleague with a link: Inspect and Convert given a comparison's id open
    Compare, with numbers everywhere (no NaN, dash or 0-byte placeholders)."""
    if "sweep" not in SEEN:
        pytest.skip("needs the comparison of test_compare_sample_presets_in_one_click")
    page, _requests = browser_page
    other = page.context.new_page()
    try:
        for link in (f"/inspect?job={SEEN['sweep']}", f"/?job={SEEN['sweep']}"):
            other.goto(server + link)
            other.wait_for_url(f"**/compare?job={SEEN['sweep']}")
            _app_text(other, "Ship ")
            text = _main_text(other)
            for bad in ("NaN", "–", "0 bytes", "None"):
                assert bad not in text, (link, bad)
        _shots(other, "14-compare-from-a-link")
    finally:
        other.close()


def test_a_model_needing_select_tf_ops(browser_page, server):
    """The fix is a button in the web's words; the result's name says Select TF ops."""
    page, _requests = browser_page
    page.goto(server + "/convert")
    _app_text(page, "Convert a model to TensorFlow Lite")
    if page.get_by_role("button", name="Change model").count():
        page.get_by_role("button", name="Change model").click()
    _use_sample(page, "select_tf_ops.zip")
    _app_text(page, "select_tf_ops.zip · SavedModel (zip)")
    _pick_preset(page, "Float32 (no optimization)")
    page.get_by_role("button", name="Convert", exact=True).click()
    page.wait_for_url("**job=*")
    _app_text(page, "failed while converting", timeout=WAIT_JOB_MS)
    error = page.get_by_test_id("stAlertContentError").first.inner_text()
    assert "Cumprod" in error and "Retry with Select TF ops" in error
    _no_flags(page, "a failed conversion")
    _shots(page, "15-convert-needs-select-tf-ops")
    page.get_by_role("button", name="Retry with Select TF ops").click()
    _app_text(page, "with Float32 (no optimization) (Select TF ops)", timeout=WAIT_JOB_MS)
    with page.expect_download(timeout=60_000) as dl:
        page.get_by_role("button", name="Download .tflite").first.click()
    assert dl.value.suggested_filename == "select_tf_ops-float32-selecttf.tflite"
    page.goto(server + "/history")
    playwright_sync.expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    page.wait_for_timeout(1000)
    _shots(page, "16-history-options")


def test_small_screens(browser_page, server):
    """800 px wide: the sidebar starts collapsed, metric values and verdict words
    whole, the Compare table keeps its preset and verdict in view."""
    page, _requests = browser_page
    context = page.context.browser.new_context(viewport={"width": 800, "height": 1000})
    small = context.new_page()
    try:
        paths = ["/convert", "/guide", "/history"]
        if "int8" in SEEN:
            paths.append(f"/inspect?job={SEEN['int8']}")
        if "sweep" in SEEN:
            paths.append(f"/compare?job={SEEN['sweep']}")
        for i, path in enumerate(paths):
            small.goto(server + path)
            small.wait_for_timeout(3000)
            bar = small.get_by_test_id("stSidebar")
            assert bar.get_attribute("data-collapsed") == "true", path
            cut = small.evaluate(
                """() => Array.from(document.querySelectorAll('[data-testid="stMetricValue"] div'))
                  .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.innerText)"""
            )
            assert cut == [], (path, cut)
            name = path.strip("/").split("?")[0] or "convert"
            _shot(small, f"2{i}-small-{name}-800")
        if "sweep" in SEEN:
            small.goto(server + f"/compare?job={SEEN['sweep']}")
            grid = small.get_by_test_id("stDataFrame").first
            playwright_sync.expect(grid).to_be_visible(timeout=30_000)
            # the preset and verdict columns come first: both are in view
            first = small.evaluate(
                """() => { const g = document.querySelector('[data-testid="stDataFrame"]');
                   return g ? g.getBoundingClientRect().width : 0; }"""
            )
            assert first > 300
    finally:
        context.close()


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
