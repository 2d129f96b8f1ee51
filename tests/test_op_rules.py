"""The op rule tables (``core/model/data/op_rules.json``) follow their JSON
Schema, spell each concept one way, give each source once, and name the
predicates written in Python."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from core.model.compat import Target, Verdict, check_compatibility, rules
from core.model.compat.checks import MODEL_CHECKS
from core.model.compat.engine import CHECKS
from core.model.compat.predicates import PREDICATES
from core.model.compat.tables import RULES_PATH, SCHEMA_PATH
from core.model.info import (
    BufferInfo,
    ModelInfo,
    OperatorInfo,
    OpKind,
    SubgraphInfo,
    TensorInfo,
)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]


def test_the_shipped_rules_follow_the_schema(validator):
    with open(RULES_PATH, encoding="utf-8") as f:
        data = json.load(f)
    assert _errors(validator, data) == []


def _misspell(data: dict[str, Any], where: str) -> str:
    """Misspell one key (or name) in ``data``; returns the misspelt word."""
    gpu = data["targets"]["gpu"]
    if where == "top":
        data["schema_versoin"] = 1
        return "schema_versoin"
    if where == "target":
        gpu["fallbak"] = True
        return "fallbak"
    if where == "kind":
        gpu["kinds"]["custom"]["hnit"] = "x"
        return "hnit"
    if where == "op":
        gpu["ops"]["ADD"]["sourse"] = "https://example.com"
        return "sourse"
    if where == "check":
        gpu["ops"]["ADD"]["rules"][0]["reasn"] = "x"
        return "reasn"
    if where == "alias":  # ge was an alias of min
        rule = {"check": "option", "name": "stride_w", "ge": 1}
        data["targets"]["xnnpack"]["ops"]["AVERAGE_POOL_2D"]["rules"].append(rule)
        return "'ge'"
    if where == "predicate":
        gpu["ops"]["SUB"]["rules"].append({"check": "predicate", "name": "binary_operand"})
        return "binary_operand"
    if where == "check kind":
        gpu["ops"]["ADD"]["rules"].append({"check": "num_input", "eq": 2})
        return "num_input"
    if where == "allow_types":
        data["targets"]["edgetpu"]["ops"]["ADD"]["allow_types"] = {"input": ["INT32"]}
        return "'input'"
    assert where == "model check"
    data["targets"]["edgetpu"]["model_rules"][0]["sevrity"] = "partial"
    return "sevrity"


@pytest.mark.parametrize(
    "where",
    [
        "top",
        "target",
        "kind",
        "op",
        "check",
        "alias",
        "predicate",
        "check kind",
        "allow_types",
        "model check",
    ],
)
def test_a_misspelt_key_is_an_error(validator, where):
    data = copy.deepcopy(rules())
    word = _misspell(data, where)
    errors = _errors(validator, data)
    assert any(word in e for e in errors), (where, errors)


def _object_schemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if "properties" in node:
            yield path, node
        for k, v in node.items():
            yield from _object_schemas(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _object_schemas(v, f"{path}/{i}")


def test_the_schema_rejects_unknown_keys_everywhere(schema):
    open_ = []
    for path, node in _object_schemas(schema):
        if path.endswith(("/if", "/$defs/check")):
            continue  # the dispatch on "check"; each check_<kind> closes its keys
        if node.get("additionalProperties") is not False:
            open_.append(path)
    assert not open_, open_


def test_the_schema_lists_the_checks_the_engine_knows(schema):
    defs = schema["$defs"]
    assert set(defs["check"]["properties"]["check"]["enum"]) == set(CHECKS)
    assert {k.removeprefix("check_") for k in defs if k.startswith("check_")} == set(CHECKS)
    assert set(defs["check_predicate"]["properties"]["name"]["enum"]) == set(PREDICATES)
    assert set(defs["model_check"]["properties"]["check"]["enum"]) == set(MODEL_CHECKS)


def _checks() -> Iterator[tuple[str, dict[str, Any], str]]:
    """(where, check, the source it inherits) for every check in the tables."""
    for key, target in rules()["targets"].items():
        for rule in [*target["all_ops"], *target.get("model_rules", [])]:
            yield key, rule, target["source"]
        for section in ("ops", "custom_ops"):
            for name, entry in target[section].items():
                for rule in entry["rules"]:
                    yield f"{key} {name}", rule, entry.get("source", target["source"])


def test_sources_are_given_once_and_inherited():
    repeated = [
        (where, rule) for where, rule, inherited in _checks() if rule.get("source") == inherited
    ]
    assert not repeated, repeated[:5]


def test_each_concept_has_one_spelling():
    aliases = {"ge", "le", "values", "any", "allow"}
    gone = {
        "option_not_in",
        "num_inputs_in",
        "input_values_all",
        "input_values_exclude",
        "input_values_subset",
        "const_inputs_zero",
        "input_dim",
        "same_rank",
    }
    found = [
        (where, rule)
        for where, rule, _ in _checks()
        if aliases & set(rule) or rule["check"] in gone
    ]
    assert not found, found[:5]


# ------------------------------------------------------------------ predicates


def _tensor(
    i: int,
    shape: tuple[int, ...],
    dtype: str = "FLOAT32",
    *,
    const: bool = False,
    values: tuple[int, ...] | None = None,
) -> TensorInfo:
    return TensorInfo(
        0,
        i,
        f"t{i}",
        shape,
        None,
        dtype,
        i + 1 if const else 0,
        16 if const else 0,
        False,
        None,
        None,
        values=values,
    )


def _model(
    op: str,
    tensors: list[TensorInfo],
    ins: tuple[int, ...],
    outs: tuple[int, ...],
    options: dict[str, Any] | None = None,
) -> ModelInfo:
    buffers = [BufferInfo(0, 0, None, False, None)]
    buffers += [BufferInfo(t.buffer, t.bytes, 8, False, False) for t in tensors if t.bytes]
    o = OperatorInfo(0, 0, 0, op, OpKind.BUILTIN, 1, 0, ins, outs, None, options or {})
    sg = SubgraphInfo(0, "", (), (), tuple(tensors), (o,))
    return ModelInfo(1000, 3, "", (sg,), tuple(buffers), (), (), None, None)


def test_an_alternative_predicate_names_every_failed_alternative():
    t = [_tensor(0, (1, 4), const=True), _tensor(1, (1, 4), const=True), _tensor(2, (1, 4))]
    gpu = check_compatibility(_model("SUB", t, (0, 1), (2,)), targets=[Target.GPU])[Target.GPU]
    (op,) = gpu.ops
    assert [r.message for r in op.reasons] == [
        "needs 1 or 2 operands (number of runtime (non-constant) inputs is 0, needs 2; "
        "number of runtime (non-constant) inputs is 0, needs 1)"
    ]
    t = [_tensor(i, (1, 4)) for i in range(22)]
    lstm = _model("LSTM", t, tuple(range(21)), (21,), {"kernel_type": "FULL"})
    (op,) = check_compatibility(lstm, targets=[Target.GPU])[Target.GPU].ops
    assert op.reasons[0].message == (
        "LSTM layout/activation not supported "
        "(has 21 inputs, needs 20 or 24; kernel_type is 'FULL', needs 'BASIC')"
    )


@pytest.mark.parametrize(
    ("axes", "verdict", "detail"),
    [
        (None, Verdict.PARTIAL, "input 1 is not a constant, so it cannot be checked"),
        ((0, 1), Verdict.UNSUPPORTED, "input 1 contains [0]"),
        ((1, 2), Verdict.SUPPORTED, None),
    ],
)
def test_a_constant_value_predicate(axes, verdict, detail):
    """Axes it cannot read are not proven either way: partial, not unsupported."""
    t = [
        _tensor(0, (1, 4, 4, 3), "INT8"),
        _tensor(1, (2,), "INT32", const=axes is not None, values=axes),
        _tensor(2, (1, 3), "INT8"),
    ]
    tpu = check_compatibility(_model("REDUCE_MAX", t, (0, 1), (2,)), targets=[Target.EDGETPU])
    reasons = [
        r
        for o in tpu[Target.EDGETPU].ops
        for r in o.reasons
        if r.message.startswith("cannot operate on the batch dimension")
    ]
    if detail is None:
        assert not reasons
        return
    (reason,) = reasons
    assert reason.message == f"cannot operate on the batch dimension ({detail})"
    assert reason.severity is verdict
    # The op's source, inherited by the check.
    assert reason.source == "https://coral.ai/docs/edgetpu/models-intro/#supported-operations"
