"""Optimization recipes for an existing ``.tflite`` (LiteRT's quantizer,
``litert-quantizer``): the recipe ids as data, each written out in the
quantizer's own JSON format, and the checks of a custom recipe JSON.

A recipe in the quantizer's format is a list of entries, later entries
winning where they overlap::

    [{"regex": ".*attention.*", "operation": "*",
      "algorithm_key": "min_max_uniform_quantize",
      "op_config": {"weight_tensor_config": {"num_bits": 8, "symmetric": true,
                                             "granularity": "CHANNELWISE", "dtype": "INT"},
                    "compute_precision": "FLOAT", "explicit_dequantize": true}}]

``regex`` is searched in an op's *scope*: the names of its output tensors
joined by ``;`` with a trailing ``;`` (the quantizer's rule). Pure Python: the
web process validates recipes without importing the quantizer.
"""

from __future__ import annotations

import difflib
import enum
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import RecipeError
from core.model.info import ModelInfo, OperatorInfo

__all__ = [
    "Recipe",
    "RecipeInfo",
    "RECIPES",
    "RECIPE_IDS",
    "BLOCK_SIZES",
    "PRECISIONS",
    "QUANTIZER_OPS",
    "ALGORITHMS",
    "recipe_entries",
    "parse_recipe_json",
    "entry_for",
    "op_scope",
    "entry_matches",
    "unmatched_entries",
]


class Recipe(str, enum.Enum):
    WEIGHT_ONLY_INT4 = "weight-only-int4"
    WEIGHT_ONLY_INT8 = "weight-only-int8"
    DYNAMIC_INT8 = "dynamic-int8"
    FLOAT16 = "float16"
    STATIC_INT8 = "static-int8"
    STATIC_INT16X8 = "static-int16x8"

    @property
    def info(self) -> RecipeInfo:
        return RECIPES[self]


@dataclass(frozen=True)
class RecipeInfo:
    title: str
    summary: str  # what it does, in one plain sentence
    size_effect: str  # expected size change
    size_ratio: float  # rough output size / float32 size
    suits: str  # where it fits
    needs_calibration: bool
    block_sizes: tuple[int, ...] = ()  # 0 = channel-wise; others: block-wise


BLOCK_SIZES = (0, 32, 64, 128)

RECIPES: dict[Recipe, RecipeInfo] = {
    Recipe.WEIGHT_ONLY_INT4: RecipeInfo(
        "Weight-only int4",
        "Stores weights as 4-bit integers and turns them back into float before each "
        "op: the smallest file, computation stays float. Channel-wise scales by default; "
        "block-wise scales (32, 64 or 128 weights per scale) are closer to the original "
        "for fully connected and embedding layers.",
        "about 1/8 of float32 (plus scales)",
        0.14,
        "shipping large models over the network or in a small app; LLM-style weights",
        False,
        BLOCK_SIZES,
    ),
    Recipe.WEIGHT_ONLY_INT8: RecipeInfo(
        "Weight-only int8",
        "Stores weights as 8-bit integers and turns them back into float before each "
        "op: a quarter of the size, almost the float model's accuracy.",
        "about 1/4 of float32",
        0.26,
        "any CPU or GPU where size matters more than speed",
        False,
    ),
    Recipe.DYNAMIC_INT8: RecipeInfo(
        "Dynamic-range int8",
        "Stores weights as 8-bit integers and quantizes activations on the fly, so "
        "the heavy ops compute in int8. No calibration data needed.",
        "about 1/4 of float32",
        0.26,
        "CPU (XNNPACK): smaller and usually faster; a good first try",
        False,
    ),
    Recipe.FLOAT16: RecipeInfo(
        "Float16 weights",
        "Stores weights as 16-bit floats: half the size, practically no accuracy loss.",
        "about 1/2 of float32",
        0.5,
        "GPU delegates (float16 natively); CPUs turn the weights back into float32",
        False,
    ),
    Recipe.STATIC_INT8: RecipeInfo(
        "Static int8 (full integer)",
        "Weights and activations in int8, with ranges measured on calibration data; "
        "inputs and outputs become int8 too. Needs calibration data.",
        "about 1/4 of float32",
        0.26,
        "integer-only hardware: microcontrollers, NPUs, DSPs, Edge TPU",
        True,
    ),
    Recipe.STATIC_INT16X8: RecipeInfo(
        "Static 16x8 (int16 activations)",
        "Int8 weights with 16-bit activations measured on calibration data: closer "
        "to float than int8 for sensitive models (audio, super-resolution).",
        "about 1/4 of float32",
        0.26,
        "accuracy-sensitive integer deployments (reference kernels, often slower)",
        True,
    ),
}

RECIPE_IDS: tuple[str, ...] = tuple(r.value for r in Recipe)

# The quantizer's names (litert_quantizer.qtyping.TFLOperationName and
# algorithm_manager.AlgorithmName); a test keeps these in step with it.
QUANTIZER_OPS: tuple[str, ...] = (
    "*",
    "INPUT",
    "OUTPUT",
    "FULLY_CONNECTED",
    "BATCH_MATMUL",
    "DEPTHWISE_CONV_2D",
    "CONV_2D",
    "CONV_2D_TRANSPOSE",
    "AVERAGE_POOL_2D",
    "RESHAPE",
    "CUSTOM_OP",
    "EMBEDDING_LOOKUP",
    "SOFTMAX",
    "TANH",
    "TRANSPOSE",
    "GELU",
    "ADD",
    "SUB",
    "MUL",
    "MEAN",
    "RSQRT",
    "CONCATENATION",
    "STRIDED_SLICE",
    "SPLIT",
    "LOGISTIC",
    "SLICE",
    "SUM",
    "SELECT",
    "SELECT_V2",
    "DYNAMIC_UPDATE_SLICE",
    "STABLEHLO_COMPOSITE",
    "PAD",
    "SQUARED_DIFFERENCE",
    "MAX_POOL_2D",
    "RESIZE_BILINEAR",
    "RESIZE_NEAREST_NEIGHBOR",
    "GATHER_ND",
    "PACK",
    "UNPACK",
    "DIV",
    "BROADCAST_TO",
    "SQRT",
    "GATHER",
    "HARD_SWISH",
    "MAXIMUM",
    "PADV2",
    "REDUCE_MIN",
    "EQUAL",
    "NOT_EQUAL",
    "MIRROR_PAD",
    "SPACE_TO_DEPTH",
    "RELU",
)
# The op a quantizer name stands for, where it differs from the schema's name.
_SCHEMA_OP = {"CONV_2D_TRANSPOSE": "TRANSPOSE_CONV", "CUSTOM_OP": "CUSTOM"}
ALGORITHMS: tuple[str, ...] = (
    "no_quantize",
    "min_max_uniform_quantize",
    "float_casting",
    "dequantized_weight_recovery",
    "OCTAV",
    "HADAMARD_ROTATION",
    "DECOMPOSED_HADAMARD_ROTATION",
    "MSE",
    "GPTQ",
    "OSCAR",
)
_GRANULARITIES = (
    "TENSORWISE",
    "CHANNELWISE",
    "BLOCKWISE_32",
    "BLOCKWISE_64",
    "BLOCKWISE_128",
    "BLOCKWISE_256",
)
_MINMAX = "min_max_uniform_quantize"

# ---------------------------------------------------------------- the recipes by id


def _tensor(
    bits: int, *, symmetric: bool = True, granularity: str = "CHANNELWISE", dtype: str = "INT"
) -> dict[str, Any]:
    return {"num_bits": bits, "symmetric": symmetric, "granularity": granularity, "dtype": dtype}


def _entry(
    op_config: dict[str, Any], *, regex: str = ".*", operation: str = "*", algorithm: str = _MINMAX
) -> dict[str, Any]:
    cfg = {"skip_checks": False, "min_weight_elements": 0, **op_config}
    return {"regex": regex, "operation": operation, "algorithm_key": algorithm, "op_config": cfg}


def _weight_only(bits: int, granularity: str = "CHANNELWISE", **kw: Any) -> dict[str, Any]:
    dtype, algorithm = ("FLOAT", "float_casting") if bits == 16 else ("INT", _MINMAX)
    cfg = {
        "weight_tensor_config": _tensor(bits, granularity=granularity, dtype=dtype),
        "compute_precision": "FLOAT",
        "explicit_dequantize": True,
    }
    return _entry(cfg, algorithm=algorithm, **kw)


def _dynamic(bits: int, granularity: str = "CHANNELWISE", **kw: Any) -> dict[str, Any]:
    cfg = {
        "weight_tensor_config": _tensor(bits, granularity=granularity),
        "compute_precision": "INTEGER",
        "explicit_dequantize": False,
    }
    return _entry(cfg, **kw)


def _static(activation_bits: int) -> dict[str, Any]:
    cfg = {
        # int16 activations are symmetric, int8 asymmetric (LiteRT's kernels)
        "activation_tensor_config": _tensor(
            activation_bits, symmetric=activation_bits == 16, granularity="TENSORWISE"
        ),
        "weight_tensor_config": _tensor(8),
        "compute_precision": "INTEGER",
        "explicit_dequantize": False,
    }
    return _entry(cfg)


def recipe_entries(recipe: Recipe | str, block_size: int = 0) -> list[dict[str, Any]]:
    """The recipe written out in the quantizer's JSON format.

    ``block_size`` (weight-only-int4 only): 0 keeps channel-wise scales; 32, 64
    or 128 give fully connected and embedding layers one scale per block (the
    quantizer's block-wise int4, which LiteRT runs with dynamically quantized
    activations); convolutions keep channel-wise scales."""
    r = _recipe(recipe)
    if block_size and block_size not in r.info.block_sizes:
        allowed = ", ".join(str(b) for b in BLOCK_SIZES if b)
        raise RecipeError(
            f"Block size {block_size} does not apply to {r.value}.",
            f"Use a block size ({allowed}) only with weight-only-int4, or leave it out "
            "for channel-wise scales.",
        )
    if r is Recipe.WEIGHT_ONLY_INT4:
        entries = [_weight_only(4)]
        if block_size:
            g = f"BLOCKWISE_{block_size}"
            entries += [
                _dynamic(4, g, operation=op) for op in ("FULLY_CONNECTED", "EMBEDDING_LOOKUP")
            ]
        return entries
    return {
        Recipe.WEIGHT_ONLY_INT8: lambda: [_weight_only(8)],
        Recipe.DYNAMIC_INT8: lambda: [_dynamic(8)],
        Recipe.FLOAT16: lambda: [_weight_only(16)],
        Recipe.STATIC_INT8: lambda: [_static(8)],
        Recipe.STATIC_INT16X8: lambda: [_static(16)],
    }[r]()


def _recipe(recipe: Recipe | str) -> Recipe:
    try:
        return Recipe(recipe)
    except ValueError:
        close = difflib.get_close_matches(str(recipe), RECIPE_IDS, n=1)
        raise RecipeError(
            f"Unknown recipe {recipe!r}" + (f" (did you mean {close[0]}?)." if close else "."),
            "Choose one of: " + ", ".join(RECIPE_IDS) + ", or give a recipe JSON file.",
        ) from None


# ---------------------------------------------------------------- rows of the app's table

PRECISIONS: dict[str, str] = {
    "int4": "int4 weights (weight-only)",
    "int8": "int8 weights (weight-only)",
    "dynamic-int8": "int8 weights, int8 compute (dynamic range)",
    "float16": "float16 weights",
    "float": "float (leave as is)",
}


def entry_for(regex: str, operation: str, precision: str) -> dict[str, Any]:
    """One row of the app's custom-recipe table as a quantizer entry."""
    op = (operation or "*").strip() or "*"
    if precision == "float":
        return {"regex": regex, "operation": op, "algorithm_key": "no_quantize"}
    make = {
        "int4": lambda: _weight_only(4, regex=regex, operation=op),
        "int8": lambda: _weight_only(8, regex=regex, operation=op),
        "dynamic-int8": lambda: _dynamic(8, regex=regex, operation=op),
        "float16": lambda: _weight_only(16, regex=regex, operation=op),
    }.get(precision)
    if make is None:
        raise RecipeError(
            f"Unknown precision {precision!r}.", "Choose one of: " + ", ".join(PRECISIONS) + "."
        )
    return make()


# ---------------------------------------------------------------- custom recipe JSON

_ENTRY_KEYS = {"regex", "operation", "algorithm_key", "op_config"}
_OP_CONFIG_KEYS = {
    "activation_tensor_config": "object",
    "weight_tensor_config": "object",
    "compute_precision": "INTEGER or FLOAT",
    "explicit_dequantize": "true or false",
    "skip_checks": "true or false",
    "min_weight_elements": "a whole number >= 0",
}
_TENSOR_KEYS = {
    "num_bits": "2, 4, 8 or 16",
    "symmetric": "true or false",
    "granularity": ", ".join(_GRANULARITIES),
    "dtype": "INT, UINT or FLOAT",
    "block_size": "0, 32, 64, 128 or 256",
    "algorithm_params": "object",
}
MAX_ENTRIES = 256
MAX_JSON_BYTES = 256 << 10


def _fail(where: str, message: str, hint: str) -> RecipeError:
    return RecipeError(f"Recipe {where}: {message}", hint)


def _unknown_keys(have: Iterable[str], known: Iterable[str], where: str) -> None:
    extra = sorted(set(have) - set(known))
    if extra:
        key = extra[0]
        close = difflib.get_close_matches(key, list(known), n=1)
        raise _fail(
            where,
            f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)." if close else "."),
            "Known keys here: " + ", ".join(sorted(known)) + ".",
        )


def _check_tensor(cfg: Any, where: str) -> None:
    if not isinstance(cfg, dict):
        raise _fail(where, "must be an object.", 'For example {"num_bits": 8}.')
    _unknown_keys(cfg, _TENSOR_KEYS, where)
    if "num_bits" not in cfg:
        raise _fail(where, "num_bits is missing.", "Give num_bits: 2, 4, 8 or 16.")
    checks = {
        "num_bits": lambda v: type(v) is int and v in (2, 4, 8, 16),
        "symmetric": lambda v: isinstance(v, bool),
        "granularity": lambda v: v in _GRANULARITIES,
        "dtype": lambda v: v in ("INT", "UINT", "FLOAT"),
        "block_size": lambda v: type(v) is int and v in (0, 32, 64, 128, 256),
        "algorithm_params": lambda v: isinstance(v, dict),
    }
    for key, ok in checks.items():
        if key in cfg and not ok(cfg[key]):
            raise _fail(
                f"{where}.{key}", f"{cfg[key]!r} is not allowed.", f"Use {_TENSOR_KEYS[key]}."
            )


def _check_op_config(cfg: Any, where: str) -> None:
    if not isinstance(cfg, dict):
        raise _fail(where, "op_config must be an object.", "See the README's recipe example.")
    _unknown_keys(cfg, _OP_CONFIG_KEYS, where)
    if "weight_tensor_config" not in cfg:
        raise _fail(
            where,
            "weight_tensor_config is missing.",
            'Add "weight_tensor_config": {"num_bits": 8}.',
        )
    for key in ("weight_tensor_config", "activation_tensor_config"):
        if key in cfg:
            _check_tensor(cfg[key], f"{where}.{key}")
    if "compute_precision" in cfg and cfg["compute_precision"] not in ("INTEGER", "FLOAT"):
        raise _fail(
            where, f"compute_precision {cfg['compute_precision']!r}.", "Use INTEGER or FLOAT."
        )
    for key in ("explicit_dequantize", "skip_checks"):
        if key in cfg and not isinstance(cfg[key], bool):
            raise _fail(
                f"{where}.{key}", f"{cfg[key]!r} is not true or false.", "Use true or false."
            )
    n = cfg.get("min_weight_elements", 0)
    if type(n) is not int or n < 0:
        raise _fail(f"{where}.min_weight_elements", f"{n!r}.", "Use a whole number >= 0.")


def _check_entry(entry: Any, k: int) -> dict[str, Any]:
    where = f"entry {k + 1}"
    if not isinstance(entry, dict):
        raise _fail(
            where,
            "must be an object.",
            "Each entry has regex, operation, algorithm_key, op_config.",
        )
    _unknown_keys(entry, _ENTRY_KEYS, where)
    for key in ("regex", "operation", "algorithm_key"):
        if not isinstance(entry.get(key), str):
            raise _fail(
                where, f"{key} is missing or not text.", f'Add "{key}": "…" (see the README).'
            )
    try:
        re.compile(entry["regex"])
    except re.error as e:
        raise _fail(
            where,
            f"the regex {entry['regex']!r} is not a valid regular expression ({e}).",
            "Fix the pattern (Python re syntax), e.g. '.*attention.*'.",
        ) from None
    op = entry["operation"]
    if op not in QUANTIZER_OPS:
        close = difflib.get_close_matches(op, QUANTIZER_OPS, n=1)
        raise _fail(
            where,
            f"operation {op!r} is not an op the quantizer knows"
            + (f" (did you mean {close[0]}?)." if close else "."),
            "Use '*' for every op it supports, or one of: " + ", ".join(QUANTIZER_OPS[1:]) + ".",
        )
    if entry["algorithm_key"] not in ALGORITHMS:
        raise _fail(
            where,
            f"algorithm_key {entry['algorithm_key']!r} is unknown.",
            "Use one of: " + ", ".join(ALGORITHMS) + ".",
        )
    if entry["algorithm_key"] != "no_quantize":
        _check_op_config(entry.get("op_config"), f"{where}.op_config")
    return dict(entry)


def parse_recipe_json(source: str | bytes | Sequence[Any]) -> list[dict[str, Any]]:
    """A custom recipe (text, bytes or parsed JSON) checked entry by entry;
    every mistake is a ``RecipeError`` naming the entry and the key."""
    data: Any = source
    if isinstance(source, (str, bytes)):
        if len(source) > MAX_JSON_BYTES:
            raise RecipeError(
                f"The recipe is {len(source) >> 10} KB; at most {MAX_JSON_BYTES >> 10} KB is read.",
                "A recipe is a short list of scopes; merge entries with a broader regex.",
            )
        try:
            data = json.loads(source)
        except (ValueError, UnicodeDecodeError) as e:
            raise RecipeError(
                f"The recipe is not valid JSON: {e}.", "Check the brackets, commas and quotes."
            ) from None
    if isinstance(data, dict) and set(data) >= {"regex", "operation"}:
        data = [data]
    if not isinstance(data, list) or not data:
        raise RecipeError(
            "A recipe is a JSON list of entries (regex, operation, algorithm_key, op_config).",
            "Wrap the entries in [ … ]; see `tflite-studio recipes --json weight-only-int8`.",
        )
    if len(data) > MAX_ENTRIES:
        raise RecipeError(
            f"The recipe has {len(data)} entries; at most {MAX_ENTRIES} are allowed.",
            "Merge entries with a broader regex.",
        )
    return [_check_entry(e, k) for k, e in enumerate(data)]


# ---------------------------------------------------------------- scopes against a model


def op_scope(model: ModelInfo, op: OperatorInfo) -> str:
    """The quantizer's scope of an op: output names (else input names) joined
    by ``;``, with a trailing ``;``."""
    tensors = model.subgraphs[op.subgraph].tensors

    def names(indices: Sequence[int]) -> list[str]:
        return [tensors[i].name for i in indices if 0 <= i < len(tensors) and tensors[i].name]

    found = names(op.outputs) or names(op.inputs)
    return ";".join(found) + ";" if found else ""


def entry_matches(entry: dict[str, Any], model: ModelInfo) -> list[OperatorInfo]:
    """The ops of ``model`` an entry's scope and operation select."""
    pattern = re.compile(str(entry.get("regex", "")))
    op_name = str(entry.get("operation", "*"))
    want = None if op_name == "*" else _SCHEMA_OP.get(op_name, op_name)
    return [
        op
        for op in model.operators
        if (want is None or op.name == want) and pattern.search(op_scope(model, op))
    ]


def unmatched_entries(entries: Sequence[dict[str, Any]], model: ModelInfo) -> list[dict[str, Any]]:
    """The entries that select no op of the model (INPUT/OUTPUT entries always apply)."""
    return [
        e
        for e in entries
        if e.get("operation") not in ("INPUT", "OUTPUT") and not entry_matches(e, model)
    ]
