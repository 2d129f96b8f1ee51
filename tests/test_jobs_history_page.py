"""The History page (AppTest): who, when, model, preset, sizes, status, a link
to each job; filters; Cancel for your own unfinished jobs."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.server import jobs
from core.server.jobs import JobKind, JobStatus
from tests.conftest import shown

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "history.py")


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=30)


def test_lists_filters_links_and_cancels(studio_env):
    st = jobs.store(studio_env)
    mine = st.submit(
        JobKind.CONVERT,
        b"a",
        model_name="digits.zip",
        params={"options": {"preset": "int8"}},
        user="local",
    )
    theirs = st.submit(JobKind.INSPECT, b"\x1c\0\0\0TFL3", model_name="net.tflite", user="bob")
    st.finish(theirs.id, JobStatus.DONE, result={"output_sha": theirs.input_sha, "output_size": 8})

    at = _app().run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["Model"]) == ["digits.zip"]  # "My jobs" first
    assert list(table["Open"]) == [f"/inspect?job={mine.id}"]
    assert list(table["Settings"]) == ["int8"] and "queued" in table["Status"][0]
    assert [b.label for b in at.button] == ["Cancel"]

    at.segmented_control(key="history.who").set_value("all").run()
    table = at.dataframe[0].value
    assert list(table["Who"]) == ["bob", "local"]
    assert "done" in table["Status"][0] and table["Result"][0] == "8 bytes"

    at.pills(key="history.status").set_value([JobStatus.DONE]).run()
    assert list(at.dataframe[0].value["Model"]) == ["net.tflite"]

    at.pills(key="history.status").set_value([]).run()
    at.button(key=f"history.cancel.{mine.id}").click().run()
    assert not at.exception
    assert st.get(mine.id).status is JobStatus.CANCELLED
    assert at.button == [] or all(b.key != f"history.cancel.{mine.id}" for b in at.button)


def test_a_reconversion_links_to_its_sweep(studio_env):
    st = jobs.store(studio_env)
    sweep = st.submit(JobKind.SWEEP, b"m", model_name="digits.zip", params={})
    again = st.submit(JobKind.EVALUATE, b"m", model_name="digits.zip", params={"parent": sweep.id})
    at = _app().run()
    links = set(at.dataframe[0].value["Open"])
    assert links == {f"/compare?job={sweep.id}", f"/compare?job={sweep.id}&reconvert={again.id}"}


def test_empty_history_says_so(studio_env):
    at = _app().run()
    assert not at.exception
    assert "No jobs here yet" in shown(at.info[0].value)
