"""The shared server as the pages show it (AppTest, no worker): the sidebar's
running/waiting counts, "your recent jobs" on Inspect and Compare, a refused
submission said as refused, and what a .tflite upload can still go through."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.options import ConversionOptions, Preset
from core.server import jobs
from tests.conftest import ROOT, shown

STUDIO = str(ROOT / "studio.py")
SAMPLE = ROOT / "sample_models" / "digits_classifier.zip"


def _page(path: str | None = None) -> AppTest:
    at = AppTest.from_file(STUDIO, default_timeout=60)
    if path:
        at.switch_page(path)
    return at


def _all_text(at: AppTest) -> str:
    return "\n".join(
        shown(e.value)
        for kind in ("markdown", "caption", "success", "warning", "error", "info")
        for e in getattr(at, kind)
    )


def _queue(n: int, user: str = "local") -> list[jobs.Job]:
    from ui.uploads import store_model, submit_conversion

    model = store_model(SAMPLE)
    presets = list(Preset)
    return [
        submit_conversion(model, ConversionOptions(preset=presets[i]), user=user) for i in range(n)
    ]


def test_the_sidebar_counts_running_and_waiting_jobs(studio_env):
    first, _second = _queue(2)
    assert jobs.store().db.claim(first.id, "test-worker") is not None  # now running
    at = _page().run()
    assert not at.exception
    captions = [shown(c.value) for c in at.sidebar.caption]
    assert "Server: 1 job running, 1 waiting." in captions, captions


def test_inspect_and_compare_list_this_persons_recent_jobs(studio_env):
    mine = _queue(2)  # conversions: Inspect lists them
    _queue(1, user="someone-else")
    jobs.submit(jobs.JobKind.SWEEP, SAMPLE, model_name="my sweep.zip")  # Compare lists it
    for path, words, n in (
        ("pages/inspect.py", "digits_classifier.zip", len(mine)),
        ("pages/compare.py", "my sweep.zip", 1),
    ):
        at = _page(path).run()
        assert not at.exception, path
        assert "Your recent jobs" in _all_text(at), path
        labels = shown(" ".join(el.proto.label for el in at.get("page_link")))
        assert labels.count(words) == n, (path, labels)


def test_a_submission_over_the_limit_is_said_to_be_refused(studio_env, monkeypatch):
    monkeypatch.setenv("TFLITE_STUDIO_MAX_JOBS_PER_USER", "1")
    from core.server.settings import load_settings

    load_settings()
    _queue(1)
    before = len(jobs.list_jobs())
    at = _page().run()
    at.button(key="convert.sample.digits_classifier.zip").click().run()
    at.button(key="convert.go").click().run()
    assert not at.exception
    errors = " ".join(shown(e.value) for e in at.error)
    assert "Not submitted: the server refused this job." in errors, errors
    assert "Failed while" not in errors
    assert len(jobs.list_jobs()) == before  # nothing was queued


def test_a_tflite_says_why_it_cannot_be_converted_again_and_offers_what_can(studio_env, tmp_path):
    from tests.helpers.crafted import named_model
    from ui.uploads import store_model

    path = tmp_path / "mine.tflite"
    path.write_bytes(named_model("MyOp", "w", "x"))
    at = _page().run()
    at.session_state["convert.model"] = store_model(path).to_state()
    at.run()
    assert not at.exception
    text = _all_text(at)
    assert "cannot be converted again with another preset" in text, text
    assert "Inspect this model" in [b.label for b in at.button]
    assert any(el.proto.label == "Optimize this .tflite" for el in at.get("page_link"))
