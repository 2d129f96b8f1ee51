import pytest

from core.errors import OptionsError, Phase
from core.options import PRESETS, CalibrationSource, ConversionOptions, Preset, parse_input_shape


def test_every_preset_has_plain_words_and_size_effect():
    assert {p.value for p in Preset} == {
        "float32",
        "float16",
        "dynamic",
        "int8-float-io",
        "int8",
        "int16x8",
    }
    for p in Preset:
        info = PRESETS[p]
        assert info.summary and info.size_effect and info.devices
    assert [p.value for p in Preset if p.needs_calibration] == ["int8-float-io", "int8", "int16x8"]


def test_options_are_frozen_hashable_and_round_trip():
    a = ConversionOptions(preset="int8", input_shapes=(("b", (1, 2)), ("a", (1, 3))))
    b = ConversionOptions.from_dict(a.to_dict())
    assert a == b and hash(a) == hash(b) and a.key() == b.key()
    assert a.input_shapes == (("a", (1, 3)), ("b", (1, 2)))  # order does not matter
    with pytest.raises(AttributeError):
        a.preset = Preset.FLOAT32  # type: ignore[misc]
    assert ConversionOptions(preset="dynamic").key() != a.key()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"preset": "int4"}, "Choose one of: float32"),
        ({"input_shapes": (("x", (1, 0)),)}, "at least 1"),
        ({"input_shapes": (("x", (1,)), ("x", (2,)))}, "once"),
        ({"image_range": (1.0, 0.0)}, "low end first"),
        ({"calibration_samples": 0}, "between 1 and 10000"),
        ({"calibration_path": "data.csv"}, ".npz"),
        ({"preset": "int8", "keep_float_ops": ("conv",)}, "int8-float-io"),
    ],
)
def test_bad_options_say_how_to_fix(kwargs, words):
    with pytest.raises(OptionsError) as e:
        ConversionOptions(**kwargs)
    assert words in str(e.value)
    assert e.value.phase is Phase.OPTIONS


def test_parse_input_shape():
    assert parse_input_shape("image=1,224, 224,3") == ("image", (1, 224, 224, 3))
    assert parse_input_shape("serving_default_x:0=2,3") == ("serving_default_x:0", (2, 3))
    for bad in ("image", "image=", "=1,2", "image=1,a", "image=1,-1"):
        with pytest.raises(OptionsError):
            parse_input_shape(bad)


def test_calibration_source_is_guessed():
    assert (
        ConversionOptions(calibration_path="c.npz").calibration_source is CalibrationSource.ARRAYS
    )
    assert (
        ConversionOptions(calibration_path="imgs.zip").calibration_source
        is CalibrationSource.IMAGES
    )
    assert (
        ConversionOptions(calibration_path="/data/images").calibration_source
        is CalibrationSource.IMAGES
    )
    assert ConversionOptions(preset="int8").uses_synthetic_calibration
    assert not ConversionOptions(preset="int8", calibration_path="c.npz").uses_synthetic_calibration
