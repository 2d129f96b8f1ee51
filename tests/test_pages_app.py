"""The app as a whole: navigation, the one error handler, config, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, shown

STUDIO = str(ROOT / "studio.py")
PAGES = [
    "pages/convert.py",
    "pages/inspect.py",
    "pages/compare.py",
    "pages/history.py",
    "pages/guide.py",
]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(studio_env, page):
    at = AppTest.from_file(STUDIO, default_timeout=60)
    at.switch_page(page)
    at.run()
    assert not at.exception
    assert at.title, f"{page} has no title"


def test_convert_is_the_default_page(studio_env):
    at = AppTest.from_file(STUDIO, default_timeout=30).run()
    assert not at.exception
    assert shown(at.title[0].value) == "Convert a model to TensorFlow Lite"


_ERROR_SCRIPT = """
import streamlit as st
from ui.errors import run_page
from core.errors import CalibrationError

class Page:
    def __init__(self, exc):
        self.exc = exc
    def run(self):
        st.write("before")
        raise self.exc

kind = st.session_state.get("kind", "bug")
run_page(Page(RuntimeError("secret /etc/passwd detail") if kind == "bug" else
              CalibrationError("The calibration file has no array named image.",
                               "Name the array like the input.")))
"""


def test_uncaught_page_errors_become_a_plain_message():
    at = AppTest.from_string(_ERROR_SCRIPT, default_timeout=30).run()
    assert not at.exception
    text = " ".join(shown(e.value) for e in at.error)
    assert "Something went wrong on this page" in text
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text


def test_studio_errors_show_message_hint_and_phase():
    at = AppTest.from_string(_ERROR_SCRIPT, default_timeout=30)
    at.session_state["kind"] = "studio"
    at.run()
    assert not at.exception
    text = shown(at.error[0].value)
    assert "reading the calibration data" in text
    assert "no array named image" in text and "Name the array like the input" in text


def test_on_script_error_suppresses_the_default_display():
    """The handler for ``st.App(on_script_error=...)`` returns True (handled)."""
    at = AppTest.from_string(
        "import streamlit as st\nfrom ui.errors import on_script_error\n"
        "st.session_state['handled'] = on_script_error(ValueError('x'))\n",
        default_timeout=30,
    ).run()
    assert at.session_state["handled"] is True
    assert "Something went wrong" in shown(at.error[0].value)


def test_streamlit_config_is_valid_for_this_streamlit():
    from streamlit import config

    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    options = config.get_config_options()
    for section, values in cfg.items():
        for name, _value in values.items():
            assert f"{section}.{name}" in options, f"unknown option {section}.{name}"
    valid = {o.value for o in config.ShowErrorDetailsConfigOptions}
    assert cfg["client"]["showErrorDetails"] in valid
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["browser"]["gatherUsageStats"] is False
    assert cfg["server"]["fileWatcherType"] in ("none", "auto", "poll", "watchdog")


_NO_TF_SCRIPT = r"""
import json, sys
from streamlit.testing.v1 import AppTest
sys.path.insert(0, {root!r})
shown = []
for page in {pages!r}:
    at = AppTest.from_file({studio!r}, default_timeout=60)
    at.switch_page(page)
    at.run()
    shown.append([page, len(at.exception)])
import app  # the entry point: routes, middleware, settings
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print(json.dumps({{"pages": shown, "heavy": heavy}}))
"""


def test_the_app_process_never_imports_tensorflow(studio_env):
    """Every page plus the entry point, in a fresh interpreter: no TensorFlow."""
    code = _NO_TF_SCRIPT.format(root=str(ROOT), pages=PAGES, studio=STUDIO)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], result["heavy"]
    assert all(n == 0 for _p, n in result["pages"]), result["pages"]
