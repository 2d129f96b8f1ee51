"""Real conversions in isolated workers: presets, options, errors a person can act on."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from core.errors import (
    CalibrationError,
    ConvertError,
    LoadError,
    OptionsError,
    Phase,
    QuantizeError,
    UnsupportedOpsError,
)
from core.options import ConversionOptions, Preset
from core.pipeline.convert import convert_model
from core.worker.convert_errors import parse_converter_error
from core.worker.data import SYNTHETIC_WARNING
from tests.helpers.models import build_tiny_models

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_tiny_models(tmp_path_factory.getbasetemp() / "tiny-models")


def run_tflite(path: Path) -> dict[str, np.ndarray]:
    """Load in LiteRT, feed zeros of the right dtype, return the outputs."""
    interp = Interpreter(model_path=str(path))
    runner = interp.get_signature_runner()
    feeds = {}
    for name, d in runner.get_input_details().items():
        shape = [max(int(s), 1) for s in d["shape_signature"]] if len(d["shape_signature"]) else []
        feeds[name] = np.zeros(shape, dtype=d["dtype"])
    return runner(**feeds)


def convert(src, tmp_path, **opts):
    out = tmp_path / f"out-{opts.get('preset', 'float32')}.tflite"
    res = convert_model(src, out, ConversionOptions(**opts))
    assert out.exists() and out.stat().st_size == res.output_size
    return res, out


@pytest.mark.parametrize("preset", [p.value for p in Preset])
def test_every_preset_converts_a_zipped_saved_model(models, tmp_path, preset):
    archive = shutil.make_archive(str(tmp_path / "tiny"), "zip", models, "tiny_sm")
    res, out = convert(
        archive, tmp_path, preset=preset, calibration_path=str(models / "tiny_cal.npz")
    )
    assert res.preset == preset and res.input_kind == "saved_model"
    assert res.signature_key == "serving_default"
    assert [i.name for i in res.inputs] == ["image"]
    outputs = run_tflite(out)
    (y,) = outputs.values()
    assert y.shape == (1, 3)
    want = np.int8 if preset == "int8" else np.float32
    assert y.dtype == want
    assert SYNTHETIC_WARNING not in res.warnings  # real calibration data was given


def test_synthetic_calibration_is_flagged(models, tmp_path):
    res, _ = convert(models / "tiny_sm", tmp_path, preset="int8-float-io")
    assert SYNTHETIC_WARNING in res.warnings


def test_tar_gz_keras_and_h5_inputs(models, tmp_path):
    tgz = shutil.make_archive(str(tmp_path / "tiny"), "gztar", models, "tiny_sm")
    for src, kind in (
        (tgz, "saved_model"),
        (models / "tiny.keras", "keras"),
        (models / "tiny.h5", "h5"),
    ):
        res, out = convert(src, tmp_path, preset="dynamic")
        assert res.input_kind == kind
        assert next(iter(run_tflite(out).values())).shape == (1, 3)


def test_keras_lstm_needs_a_fixed_batch_and_input_shape_gives_it(models, tmp_path):
    with pytest.raises(ConvertError) as e:
        convert(models / "lstm.keras", tmp_path)
    assert "--input-shape tokens=1" in e.value.hint and e.value.details["fix"] == "input_shape"
    res, out = convert(models / "lstm.keras", tmp_path, input_shapes=(("tokens", (1, 6)),))
    (y,) = run_tflite(out).values()
    assert y.shape == (1, 1)


def test_keras_lambda_layer_is_refused_in_safe_mode(models, tmp_path):
    with pytest.raises(LoadError) as e:
        convert(models / "lambda.keras", tmp_path)
    assert "Lambda" in e.value.message and "safe" in e.value.message
    assert e.value.phase is Phase.LOAD
    assert not list(tmp_path.glob("*.tflite"))


def test_select_tf_ops_are_named_and_the_option_fixes_them(models, tmp_path):
    with pytest.raises(UnsupportedOpsError) as e:
        convert(models / "cumprod_sm", tmp_path)
    err = e.value
    assert err.select_tf_ops == ["Cumprod"]
    assert err.details["fix"] == "select_tf_ops"
    assert "--select-tf-ops" in err.hint and "Flex delegate" in err.hint
    assert err.phase is Phase.CONVERT
    assert not list(tmp_path.glob("*.tflite"))
    res, out = convert(models / "cumprod_sm", tmp_path, select_tf_ops=True)
    assert b"FlexCumprod" in out.read_bytes()
    assert any("Flex delegate" in w for w in res.warnings)


def test_several_signatures_must_be_chosen(models, tmp_path):
    with pytest.raises(OptionsError) as e:
        convert(models / "two_sigs_sm", tmp_path)
    assert "double" in e.value.message and "negate" in e.value.message
    assert "--signature" in e.value.hint
    res, out = convert(models / "two_sigs_sm", tmp_path, signature_key="negate")
    assert res.signature_key == "negate" and res.signature_keys == ("double", "negate")
    interp = Interpreter(model_path=str(out))
    assert list(interp.get_signature_list()) == ["negate"]
    y = interp.get_signature_runner("negate")(a=np.ones((1, 3), np.float32))["out"]
    assert np.allclose(y, -1.0)
    with pytest.raises(OptionsError, match="no signature 'nope'"):
        convert(models / "two_sigs_sm", tmp_path, signature_key="nope")


def test_dynamic_dimensions_are_fixed_by_input_shape(models, tmp_path):
    res, out = convert(models / "dynamic_sm", tmp_path)
    assert any("dynamic dimensions" in w for w in res.warnings)
    res, out = convert(models / "dynamic_sm", tmp_path, input_shapes=(("pic", (1, 16, 16, 3)),))
    (detail,) = Interpreter(model_path=str(out)).get_input_details()
    assert list(detail["shape_signature"]) == [1, 16, 16, 3]
    assert res.inputs[0].shape == (1, 16, 16, 3)
    with pytest.raises(OptionsError, match="not an input"):
        convert(models / "dynamic_sm", tmp_path, input_shapes=(("image", (1, 2, 2, 3)),))


def test_image_folder_calibration(models, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (20, 30), dtype=np.uint8)).save(folder / f"{i}.png")
    res, out = convert(models / "tiny_sm", tmp_path, preset="int8", calibration_path=str(folder))
    assert SYNTHETIC_WARNING not in res.warnings
    assert any("Only 12 calibration samples" in w for w in res.warnings)
    assert run_tflite(out)


def test_calibration_keys_must_match_inputs(models, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, pixels=np.zeros((4, 8, 8, 1), np.float32), other=np.zeros((4, 2)))
    with pytest.raises(CalibrationError) as e:
        convert(models / "tiny_sm", tmp_path, preset="int8", calibration_path=str(bad))
    assert "image" in e.value.message and "numpy.savez" in e.value.hint
    assert e.value.phase is Phase.CALIBRATE
    shape = tmp_path / "shape.npz"
    np.savez(shape, image=np.zeros((4, 5, 5, 1), np.float32))
    with pytest.raises(CalibrationError, match=r"shape \[5, 5, 1\]"):
        convert(models / "tiny_sm", tmp_path, preset="int8", calibration_path=str(shape))


def test_a_tflite_upload_is_not_converted(models, tmp_path):
    _, out = convert(models / "tiny_sm", tmp_path)
    with pytest.raises(Exception) as e:
        convert(out, tmp_path / "again")
    assert "already a .tflite" in str(e.value)


def test_converter_messages_are_parsed():
    msg = (
        "error: 'tf.Foo' op is neither a custom op nor a flex op\n"
        "Some ops are not supported by the native TFLite runtime, you can enable TF "
        "kernels fallback using TF Select.\nTF Select ops: Cumprod, Bar\nDetails: ..."
    )
    err = parse_converter_error(msg, ConversionOptions())
    assert isinstance(err, UnsupportedOpsError) and err.select_tf_ops == ["Bar", "Cumprod"]
    err = parse_converter_error("Custom ops: MyOp\nDetails:", ConversionOptions(select_tf_ops=True))
    assert err.custom_ops == ["MyOp"] and "--allow-custom-ops" in err.hint


def _manifest_cases():
    mf = SAMPLES / "manifest.json"
    if not mf.exists():
        return []
    cases = []
    for e in json.loads(mf.read_text()):
        if e.get("kind") not in ("saved_model_zip", "keras"):
            continue
        for p in Preset:
            cases.append(pytest.param(e, p.value, id=f"{e['file']}-{p.value}"))
    return cases


def _expectation(entry, preset):
    """What a person should see; from the manifest, with Select TF ops enabled
    for the model that needs them."""
    if entry["file"] == "select_tf_ops.zip":
        return "converts" if not Preset(preset).needs_calibration else CalibrationError
    if entry["file"] == "sequence_lstm_keras3.zip":
        return "needs input shape"
    exp = str((entry.get("expected") or {}).get(preset, "converts"))
    if exp.startswith("converts"):
        return "converts"
    return QuantizeError if "Quantization" in exp else Exception


@pytest.mark.parametrize("entry, preset", _manifest_cases())
def test_every_preset_on_every_sample_model(entry, preset, tmp_path):
    expected = _expectation(entry, preset)
    opts = {"preset": preset, "select_tf_ops": entry["file"] == "select_tf_ops.zip"}
    keys = entry.get("signature_keys") or []
    if keys and "serving_default" not in keys:
        opts["signature_key"] = keys[0]
    if entry.get("calibration"):
        opts["calibration_path"] = str(SAMPLES / entry["calibration"])
    src = SAMPLES / entry["file"]
    if expected == "needs input shape":
        with pytest.raises(ConvertError) as e:
            convert(src, tmp_path, **opts)
        assert "fixed batch size" in e.value.message and "Select TF ops" in e.value.hint
        opts["select_tf_ops"] = True  # the converter's own fix: TensorList ops via Flex
        expected = "converts" if not Preset(preset).needs_calibration else CalibrationError
    if expected != "converts":
        with pytest.raises(expected) as e:
            convert(src, tmp_path, **opts)
        assert e.value.hint and "Traceback" not in e.value.message
        assert not list(tmp_path.glob("*.tflite"))
        return
    res, out = convert(src, tmp_path, **opts)
    if b"Flex" in out.read_bytes():
        assert Interpreter(model_path=str(out)).get_signature_list()
    else:
        assert run_tflite(out)
