"""Recipes as data: each id written out in the quantizer's own JSON format
(equal to what its RecipeManager builds), the custom-recipe checks with one
clear message per mistake, and the old-op-code normalizer on a crafted file."""

from __future__ import annotations

import json

import pytest

from core.errors import RecipeError, TFLiteFormatError
from core.model.reader import read_model
from core.model.writer import normalize_op_codes, op_code_fixes
from core.tasks.recipes import (
    ALGORITHMS,
    QUANTIZER_OPS,
    RECIPE_IDS,
    Recipe,
    entry_for,
    parse_recipe_json,
    recipe_entries,
)
from tests.helpers.crafted import many_ops_model


def _manager(f):
    from litert_quantizer import recipe_manager

    rm = recipe_manager.RecipeManager()
    f(rm)
    return json.loads(json.dumps(rm.get_quantization_recipe()))


def test_recipe_ids_are_the_quantizers_own_recipes() -> None:
    from litert_quantizer import qtyping
    from litert_quantizer.algorithm_manager import AlgorithmName as A

    op = qtyping.TFLOperationName.ALL_SUPPORTED
    g = qtyping.QuantGranularity
    want = {
        "weight-only-int4": _manager(lambda rm: rm.add_weight_only_config(".*", op, 4)),
        "weight-only-int8": _manager(lambda rm: rm.add_weight_only_config(".*", op, 8)),
        "dynamic-int8": _manager(lambda rm: rm.add_dynamic_config(".*", op, 8)),
        "float16": _manager(
            lambda rm: rm.add_weight_only_config(".*", op, 16, algorithm_key=A.FLOAT_CASTING)
        ),
        "static-int8": _manager(lambda rm: rm.add_static_config(".*", op, 8, 8)),
        "static-int16x8": _manager(lambda rm: rm.add_static_config(".*", op, 16, 8)),
    }
    assert set(want) == set(RECIPE_IDS)
    for rid, entries in want.items():
        assert recipe_entries(rid) == entries, rid

    def blockwise(rm):
        rm.add_weight_only_config(".*", op, 4)
        for o in (
            qtyping.TFLOperationName.FULLY_CONNECTED,
            qtyping.TFLOperationName.EMBEDDING_LOOKUP,
        ):
            rm.add_dynamic_config(".*", o, 4, g.BLOCKWISE_64)

    assert recipe_entries("weight-only-int4", 64) == _manager(blockwise)


def test_the_op_and_algorithm_names_follow_the_quantizer() -> None:
    from litert_quantizer import qtyping
    from litert_quantizer.algorithm_manager import AlgorithmName

    assert tuple(o.value for o in qtyping.TFLOperationName) == QUANTIZER_OPS
    assert tuple(a.value for a in AlgorithmName) == ALGORITHMS


def test_every_recipe_has_plain_words() -> None:
    for r in Recipe:
        info = r.info
        assert info.title and info.summary.endswith(".") and info.size_effect and info.suits
    assert Recipe.STATIC_INT8.info.needs_calibration and not Recipe.FLOAT16.info.needs_calibration


@pytest.mark.parametrize(
    ("recipe", "words"),
    [
        ([{"regex": ".*", "operation": "*", "algorithm_key": "min_max_uniform_quantize",
           "op_config": {"weight_tensor_config": {"num_bits": 8}}, "scope": "x"}],
         "unknown key 'scope'"),
        ([{"regex": ".*(", "operation": "*", "algorithm_key": "no_quantize"}],
         "not a valid regular expression"),
        ([{"regex": ".*", "operation": "CONV2D", "algorithm_key": "no_quantize"}],
         "did you mean CONV_2D"),
        ([{"regex": ".*", "operation": "*", "algorithm_key": "minmax"}], "algorithm_key 'minmax'"),
        ([{"regex": ".*", "operation": "*", "algorithm_key": "min_max_uniform_quantize",
           "op_config": {"weight_tensor_config": {"num_bits": 3}}}], "num_bits: 3 is not allowed"),
        ([{"regex": ".*", "operation": "*", "algorithm_key": "min_max_uniform_quantize",
           "op_config": {"weight_tensor_config": {"num_bits": 8, "granularity": "ROWWISE"}}}],
         "granularity: 'ROWWISE'"),
        ([{"regex": ".*", "operation": "*", "algorithm_key": "min_max_uniform_quantize",
           "op_config": {"compute_precision": "FLOAT"}}], "weight_tensor_config is missing"),
        ([{"operation": "*", "algorithm_key": "no_quantize"}], "regex is missing"),
        ({"recipe": []}, "JSON list of entries"),
        ("[{", "not valid JSON"),
    ],
)  # fmt: skip
def test_each_mistake_in_a_custom_recipe_gets_its_message(recipe: object, words: str) -> None:
    text = recipe if isinstance(recipe, str) else json.dumps(recipe)
    with pytest.raises(RecipeError) as e:
        parse_recipe_json(text)
    assert words in e.value.message, e.value.message
    assert e.value.hint


def test_the_app_table_rows_become_valid_entries() -> None:
    rows = [entry_for(".*attention.*", "*", p) for p in ("int4", "int8", "dynamic-int8", "float16")]
    rows.append(entry_for(".*", "FULLY_CONNECTED", "float"))
    assert parse_recipe_json(json.dumps(rows)) == rows
    with pytest.raises(RecipeError, match="Unknown precision"):
        entry_for(".*", "*", "int3")


def test_an_unknown_recipe_id_names_the_closest() -> None:
    with pytest.raises(RecipeError, match="did you mean weight-only-int4"):
        recipe_entries("weight-only-int-4")
    with pytest.raises(RecipeError, match="Block size 32 does not apply"):
        recipe_entries("dynamic-int8", 32)


def test_old_op_codes_are_normalized_in_place_of_the_vector() -> None:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    m = s.ModelT.InitFromPackedBuf(bytearray(many_ops_model(5)), 0)
    m.operatorCodes[0].deprecatedBuiltinCode = s.BuiltinOperator.MUL
    m.operatorCodes[0].builtinCode = 0  # the old way: only the deprecated int8 is set
    b = flatbuffers.Builder(1 << 16)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    old = bytes(b.Output())
    (code,) = op_code_fixes(old)
    assert code.stale and code.code == s.BuiltinOperator.MUL
    fixed, n = normalize_op_codes(old)
    assert n == 1 and len(fixed) > len(old)
    changed = [i for i in range(len(old)) if fixed[i] != old[i]]
    assert changed and changed[-1] - changed[0] < 4, "only the operator_codes offset moved"
    (c,) = op_code_fixes(fixed)
    assert (c.deprecated, c.builtin) == (s.BuiltinOperator.MUL, s.BuiltinOperator.MUL)
    assert {o.name for o in read_model(fixed).operators} == {"MUL"}
    assert normalize_op_codes(fixed) == (fixed, 0)  # nothing left to fix


def test_a_broken_file_is_a_format_error_not_a_crash() -> None:
    with pytest.raises(TFLiteFormatError):
        normalize_op_codes(b"\x00" * 64)
