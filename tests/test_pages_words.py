"""The web's own words: the engine's real messages (converter errors, loader
warnings, compatibility hints) shown on a page name the app's controls, never
a command-line flag; one warning per cause; options that change the result
in History and in every download name; the Guide's chart from the samples'
measured results."""

from __future__ import annotations

import json
import re

import pytest

from core.errors import OptionsError, StudioError
from core.model.naming import download_name, option_suffix
from core.options import ConversionOptions, Preset
from tests.conftest import ROOT

FLAG = re.compile(r"--[a-z]")


def _engine_errors() -> list[StudioError]:
    """Errors the engine really raises, with the hints it really writes."""
    from core.model.archive import ModelKind
    from core.worker.convert_errors import parse_converter_error

    opts = ConversionOptions()
    out = [
        parse_converter_error("error: TF Select ops: Cumprod\n", opts),
        parse_converter_error("error: Custom ops: MyOp\n", ConversionOptions(select_tf_ops=True)),
        parse_converter_error(
            "error: TensorList element_shape to be static", opts, ["tokens"], ModelKind.KERAS
        ),
        parse_converter_error(
            "error: TensorList element_shape to be static", opts, ["tokens"], ModelKind.SAVED_MODEL
        ),
        parse_converter_error("error: something odd happened", opts, ["image"]),
    ]
    for bad in (
        lambda: ConversionOptions(input_shapes=(("a", (1,)), ("a", (2,)))),
        lambda: ConversionOptions(calibration_source="arrays"),
    ):
        try:
            bad()
        except OptionsError as e:
            out.append(e)
    return out


@pytest.mark.parametrize("err", _engine_errors(), ids=lambda e: e.message[:40])
def test_engine_errors_name_the_apps_controls_not_flags(err):
    from ui.words import web_error, web_md

    web = web_error(err)
    text = f"{web_md(web.message)} {web_md(web.hint, hint=True)}"
    assert not FLAG.search(text), text
    assert "tflite-studio " not in text
    if "--" in err.hint:  # the engine named a flag: the page names a control instead
        assert "Advanced options" in text or "Retry" in text or "Fix the input shapes" in text, text


def test_a_known_fix_is_said_with_its_button():
    from ui.words import web_error

    err = _engine_errors()[0]
    assert err.details["fix"] == "select_tf_ops"
    hint = web_error(err).hint
    assert "Retry with Select TF ops" in hint and "Flex delegate" in hint


def test_loader_and_rule_words_become_the_apps():
    from ui.words import web_text

    said = web_text(
        "The model has 2 signatures; converted 'serve'. Choose another with --signature."
    )
    assert "Signature field (Convert → Advanced options)" in said and "--" not in said
    edge = web_text(
        "Convert with a fixed batch size (e.g. a concrete function with input_signature "
        "shape [1, ...]).",
        hint=True,
    )
    assert "concrete function" not in edge and "Fix the input shapes" in edge
    # a message is never replaced by a hint, even when it mentions the same thing
    msg = "A recurrent layer (LSTM/GRU/RNN loop) needs a fixed batch size to become TFLite ops"
    assert web_text(msg) == msg


def test_names_from_a_model_stay_words_in_the_apps_sentences():
    from ui.words import web_md

    out = web_md("op ![x](http://evil/x.png) failed; use --select-tf-ops")
    assert "![x](" not in out and "\\!\\[x\\]" in out
    assert "**Select TF ops**" in out  # the app's own control, in bold


def test_one_warning_per_cause():
    from ui.words import DYNAMIC, SYNTHETIC, cause_of

    dyn = [
        "2 inputs have dynamic dimensions ('token_ids', 'padding_mask'): Edge TPU, "
        "microcontrollers and the GPU delegate need static shapes.",
        "tensor sizes must be constant at compile time (7 tensors have dynamic dimensions)",
    ]
    assert {cause_of(t) for t in dyn} == {DYNAMIC}
    assert cause_of("Calibration used random synthetic data, not your data") == SYNTHETIC
    assert cause_of("The converter wrote the file.") == "other"


def test_options_that_change_the_result_are_in_the_download_name():
    opts = ConversionOptions(
        preset=Preset.DYNAMIC, select_tf_ops=True, input_shapes=(("x", (1, 4)),)
    ).to_dict()
    assert download_name("model.zip", "dynamic", "tflite", opts) == (
        "model-dynamic-selecttf-fixedshapes.tflite"
    )
    assert download_name("model.zip", "dynamic", "html", opts) == (
        "model-dynamic-selecttf-fixedshapes-report.html"
    )
    keep = ConversionOptions(preset=Preset.INT8_FLOAT_IO, keep_float_ops=("a", "b")).to_dict()
    assert option_suffix(keep) == "keepfloat2"
    assert download_name("m.zip", "int8", "tflite") == "m-int8.tflite"  # as before
    from ui.words import option_words

    assert option_words(opts) == ["Select TF ops", "fixed shapes"]


def test_the_guide_chart_is_drawn_from_the_samples_measured_results():
    from ui.guide_charts import preset_effects, preset_effects_chart

    manifest = ROOT / "sample_models" / "manifest.json"
    effects = preset_effects(manifest)
    checks = next(
        e for e in json.loads(manifest.read_text()) if e["file"] == "digits_classifier.zip"
    )["checks"]
    assert [e.preset for e in effects] == [p for p in checks if checks[p].get("converts")]
    assert all(e.size_bytes == checks[e.preset]["size_bytes"] for e in effects)
    fig = preset_effects_chart(effects, "the digit reader")
    bars = fig.data[0]
    assert list(bars.y) == [e.size_bytes / 1024 for e in effects]
    assert effects[0].size_bytes > effects[2].size_bytes  # dynamic is smaller than float32
