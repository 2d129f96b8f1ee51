"""Optimizing a ``.tflite`` with LiteRT's quantizer, for real: every recipe id
on float models built in code, the int4 size goal on a convnet, a transformer
and a convnet written with the old op-code field, a custom recipe's scope,
and each bad input with its message. Each call runs in the sandboxed worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import QuantizeError, RecipeError
from core.model.reader import read_model
from core.pipeline.optimize import custom_recipe, optimize_file, recipe_choice
from core.tasks.optimize import RecipeChoice
from core.tasks.recipes import RECIPE_IDS, RECIPES, Recipe, entry_for
from tests.helpers.optimize_models import build_optimize_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_optimize_models(tmp_path_factory.mktemp("optimize-models"))


def _run_litert(path: Path, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    runner = interp.get_signature_runner()
    details = runner.get_input_details()
    feed = {}
    for k, v in x.items():
        d = details[k]
        if np.dtype(d["dtype"]).kind in "iu" and d["quantization"][0]:
            scale, zp = d["quantization"]
            v = np.clip(np.round(v / scale + zp), -128, 127).astype(d["dtype"])
        feed[k] = v[:1].astype(d["dtype"])
    return runner(**feed)


@pytest.mark.parametrize("recipe", RECIPE_IDS)
def test_each_recipe_loads_and_runs(models: Path, tmp_path: Path, recipe: str) -> None:
    cal = models / "convnet_x.npz" if RECIPES[Recipe(recipe)].needs_calibration else None
    out = tmp_path / f"{recipe}.tflite"
    res = optimize_file(models / "convnet.tflite", out, recipe_choice(recipe), calibration_data=cal)
    assert out.is_file() and out.stat().st_size == res.output_size
    assert res.output_size < res.input_size and res.quantized_tensors > 0
    assert res.accuracy is not None and res.accuracy.samples > 0
    assert res.validation, "the quantizer's tensor comparison is there"
    assert any(r.role == "output" for r in res.validation)
    if cal is not None:
        assert res.calibration == "convnet_x.npz"
    outputs = _run_litert(out, dict(np.load(models / "convnet_x.npz")))
    (y,) = outputs.values()
    assert y.shape == (1, 10) and np.isfinite(y.astype(np.float64)).all()


@pytest.mark.parametrize("name", ["convnet", "transformer", "convnet_old"])
def test_weight_only_int4_is_under_a_quarter_of_float32(
    models: Path, tmp_path: Path, name: str
) -> None:
    src = models / f"{name}.tflite"
    res = optimize_file(src, tmp_path / "w4.tflite", recipe_choice("weight-only-int4"))
    assert res.output_size < 0.25 * src.stat().st_size, res.size_ratio
    assert res.weight_dtypes.get("INT4", 0) > 0
    if name == "convnet_old":
        assert res.normalized_op_codes > 0
        assert any("deprecated field" in w for w in res.warnings)


def test_the_old_op_code_file_fools_the_bare_quantizer(models: Path) -> None:
    """What normalizing fixes: the quantizer alone returns the old file unchanged."""
    from litert_quantizer import quantizer, recipe

    old = (models / "convnet_old.tflite").read_bytes()
    qt = quantizer.Quantizer(bytearray(old))
    qt.load_quantization_recipe(recipe.weight_only_wi4_afp32())
    same = qt.quantize(enable_progress_report=False).quantized_model
    assert len(same) > 0.95 * len(old)
    assert [o.name for o in read_model(old).operators][:2] == ["CONV_2D", "CONV_2D"]


def test_block_wise_int4_quantizes_the_dense_layers_per_block(models: Path, tmp_path: Path) -> None:
    res = optimize_file(
        models / "transformer.tflite",
        tmp_path / "b32.tflite",
        recipe_choice("weight-only-int4", 32),
    )
    assert res.recipe.label == "weight-only-int4 (block 32)"
    assert any(
        e["op_config"]["weight_tensor_config"]["granularity"] == "BLOCKWISE_32"
        for e in res.recipe_entries
    )
    assert res.output_size < 0.3 * res.input_size


def test_a_custom_recipe_applies_only_where_its_scope_matches(models: Path, tmp_path: Path) -> None:
    recipe = custom_recipe(__import__("json").dumps([entry_for(".*ffn_in.*", "*", "int4")]))
    out = tmp_path / "ffn.tflite"
    res = optimize_file(models / "transformer.tflite", out, recipe)
    info = read_model(out)
    quantized = {t.name for t in info.tensors if t.is_constant and t.dtype == "INT4"}
    float_weights = {
        t.name for t in info.tensors if t.is_constant and t.dtype == "FLOAT32" and t.bytes > 4096
    }
    assert quantized and all("ffn_in" in n for n in quantized), quantized
    assert any("attention" in n for n in float_weights), float_weights
    assert any("ffn_out" in n for n in float_weights), float_weights
    assert res.kept_float, "the layers outside the scope are reported as kept float"


def test_a_scope_that_matches_no_layer_is_an_error_naming_it(models: Path, tmp_path: Path) -> None:
    recipe = custom_recipe(__import__("json").dumps([entry_for(".*decoder_block.*", "*", "int8")]))
    with pytest.raises(RecipeError) as e:
        optimize_file(models / "transformer.tflite", tmp_path / "x.tflite", recipe)
    assert ".*decoder_block.*" in e.value.message and "matches no layer" in e.value.message
    assert "ffn" in e.value.hint or "attention" in e.value.hint  # real layer names as examples
    assert not (tmp_path / "x.tflite").exists()


def test_an_already_quantized_input_says_what_can_still_be_done(
    models: Path, tmp_path: Path
) -> None:
    once = tmp_path / "once.tflite"
    optimize_file(
        models / "convnet.tflite", once, recipe_choice("weight-only-int8"), validate=False
    )
    with pytest.raises(QuantizeError) as e:
        optimize_file(once, tmp_path / "twice.tflite", recipe_choice("weight-only-int4"))
    assert "already quantized" in e.value.message
    assert "deploy" in e.value.hint.lower() and "float32" in e.value.hint
    assert not (tmp_path / "twice.tflite").exists()


def test_ops_the_quantizer_does_not_cover_stay_float_and_it_says_so(
    models: Path, tmp_path: Path
) -> None:
    res = optimize_file(
        models / "embedding.tflite", tmp_path / "e.tflite", recipe_choice("weight-only-int8")
    )
    assert [k.op for k in res.kept_float] == ["GATHER"]
    assert any("Kept in float: GATHER" in w for w in res.warnings)
    assert res.quantized_tensors > 0  # the dense head is quantized


def test_a_model_with_nothing_to_quantize_is_never_a_success(models: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError) as e:
        optimize_file(
            models / "no_weights.tflite", tmp_path / "n.tflite", recipe_choice("weight-only-int8")
        )
    assert "quantized no tensor" in e.value.message
    assert not (tmp_path / "n.tflite").exists()


def test_static_recipes_without_calibration_data_say_it_loudly(
    models: Path, tmp_path: Path
) -> None:
    res = optimize_file(
        models / "convnet.tflite",
        tmp_path / "s.tflite",
        RecipeChoice("static-int8"),
        validate=False,
    )
    assert res.calibration == "synthetic"
    assert any("random synthetic data" in w for w in res.warnings)


def test_a_result_barely_smaller_says_so(tmp_path: Path) -> None:
    """The LSTM sample's weights are tiny against its graph: dynamic-int8 saves
    under 1%, which is a result, but one said to be hardly worth it."""
    from core.options import ConversionOptions
    from core.pipeline.convert import convert_model

    src = tmp_path / "lstm.tflite"
    convert_model(
        Path(__file__).parent.parent / "sample_models" / "sequence_lstm.zip",
        src,
        ConversionOptions(),
    )
    res = optimize_file(src, tmp_path / "d8.tflite", recipe_choice("dynamic-int8"))
    assert res.output_size > 0.95 * res.input_size
    assert any(w.startswith("Only ") and "smaller" in w for w in res.warnings), res.warnings
