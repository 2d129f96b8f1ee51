"""Guide page: plain words about presets, quantization, Select TF ops, zipping."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.options import PRESETS
from tests.conftest import ROOT, shown


def test_guide_explains_the_choices(studio_env):
    at = AppTest.from_file(str(ROOT / "studio.py"), default_timeout=30)
    at.switch_page("pages/guide.py")
    at.run()
    assert not at.exception
    headers = [h.value for h in at.header]
    for h in (
        "What quantization does",
        "Which preset for which device",
        "What Select TF ops cost",
        "How to upload a SavedModel",
    ):
        assert h in headers
    table = at.table[0].value
    assert list(table["Preset"]) == [p.value for p in PRESETS]
    assert "zip -r my_model.zip my_model/" in at.code[0].value
    text = " ".join(shown(m.value) for m in at.markdown)
    assert "several megabytes" in text and "calibration data" in text
