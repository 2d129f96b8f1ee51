"""The checks around one optimization, on files read with ``core.model.reader``:
an input that is already quantized, a result that is no smaller or holds no
quantized tensor (never a success), the ops left in float, the quantizer's
tensor comparison as rows, and the signature the run uses."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from core.errors import QuantizeError, RecipeError
from core.model.info import ModelInfo, OperatorInfo, TensorInfo
from core.tasks.optimize import KeptFloat, TensorComparison
from core.tasks.recipes import op_scope, unmatched_entries
from core.tasks.results import SignatureInput
from core.units import human_bytes

__all__ = [
    "QUANTIZED_DTYPES",
    "refuse_quantized",
    "check_scopes",
    "check_result",
    "kept_float",
    "kept_float_words",
    "comparison_rows",
    "signature_of",
    "MAX_ROWS",
]

QUANTIZED_DTYPES = ("INT4", "INT8", "UINT8", "INT16", "FLOAT16", "INT2")
MAX_ROWS = 400  # tensors kept in the comparison (worst first; every output kept)
_TENSOR_OPS = ("DEQUANTIZE", "QUANTIZE")


def _quantized(t: TensorInfo) -> bool:
    return t.is_constant and (
        t.dtype in QUANTIZED_DTYPES or bool(t.quantization and t.quantization.scales)
    )


def refuse_quantized(info: ModelInfo, name: str) -> None:
    """An input that is already quantized: the quantizer starts from float."""
    q = [t for t in info.tensors if t.quantization and t.quantization.scales]
    half = [t for t in info.tensors if t.is_constant and t.dtype == "FLOAT16"]
    found = q or half
    if not found:
        return
    kinds = Counter(t.dtype for t in found)
    words = ", ".join(f"{n} {d.lower()}" for d, n in kinds.most_common(3))
    raise QuantizeError(
        f"{name} is already quantized ({words} tensors, e.g. {found[0].name!r}). LiteRT's "
        "quantizer works on a float model; quantizing twice would only add error.",
        "What you can still do: deploy this file as it is (Deploy), inspect or benchmark it, "
        "or optimize the float32 .tflite it came from (convert the original model with the "
        "float32 preset, then optimize that file).",
        details={"reason": "already_quantized", "dtypes": dict(kinds)},
    )


def check_scopes(entries: Sequence[dict[str, Any]], info: ModelInfo) -> None:
    """A recipe entry whose scope selects no layer is an error naming it."""
    missing = unmatched_entries(entries, info)
    if not missing:
        return
    e = missing[0]
    examples = sorted({s for op in info.operators if (s := op_scope(info, op))})[:4]
    op = e.get("operation", "*")
    what = f"regex {e.get('regex')!r}" + ("" if op == "*" else f" with operation {op}")
    raise RecipeError(
        f"The recipe's {what} matches no layer of the model"
        + (f" (and {len(missing) - 1} more entries match none)." if len(missing) > 1 else "."),
        "A scope is searched in each op's output tensor names, e.g. "
        + "; ".join(repr(s) for s in examples)
        + ". Fix the pattern (it is a Python regular expression) or the operation name.",
        details={"reason": "no_match", "patterns": [m.get("regex") for m in missing]},
    )


def _weight_dtypes(info: ModelInfo) -> dict[str, int]:
    return dict(Counter(t.dtype for t in info.tensors if t.is_constant and t.bytes))


def check_result(
    before: ModelInfo, after: ModelInfo, in_size: int, out_size: int, label: str
) -> tuple[int, dict[str, int]]:
    """(quantized tensors, constant tensors by dtype) of a real result; else
    ``QuantizeError``: a file that is no smaller or quantizes nothing is not one."""
    n_quant = sum(1 for t in after.tensors if _quantized(t))
    dtypes = _weight_dtypes(after)
    ops = ", ".join(sorted({o.name for o in before.operators})[:8])
    if n_quant == 0:
        raise QuantizeError(
            f"{label} quantized no tensor: the quantizer returned the model unchanged "
            f"({human_bytes(in_size)} → {human_bytes(out_size)}).",
            f"None of the model's ops ({ops}) is covered by this recipe. Try weight-only-int8 "
            "or dynamic-int8, or a custom recipe naming these ops.",
            details={"reason": "nothing_quantized", "input_size": in_size, "output_size": out_size},
        )
    if out_size >= in_size:
        raise QuantizeError(
            f"{label} made the file no smaller ({human_bytes(in_size)} → "
            f"{human_bytes(out_size)}): the quantized tensors are too small to pay for the "
            "added scales and ops.",
            "Keep the float file, or use a recipe with fewer bits (weight-only-int4) on a "
            "model with larger weights.",
            details={"reason": "not_smaller", "input_size": in_size, "output_size": out_size},
        )
    return n_quant, dtypes


def _fed_by_dequantize(info: ModelInfo) -> set[tuple[int, int]]:
    return {(op.subgraph, i) for op in info.operators if op.name in _TENSOR_OPS for i in op.outputs}


def _op_kept_float(
    op: OperatorInfo, tensors: Sequence[TensorInfo], fed: set[tuple[int, int]]
) -> int:
    """Bytes of float32 weights an op still reads, 0 when any weight is quantized."""
    floats = 0
    for i in op.inputs:
        if not 0 <= i < len(tensors):
            continue
        t = tensors[i]
        if (op.subgraph, i) in fed or _quantized(t):
            return 0
        if t.is_constant and t.dtype == "FLOAT32":
            floats += t.bytes
    return floats


def kept_float(after: ModelInfo, min_bytes: int) -> tuple[KeptFloat, ...]:
    """Op types whose float32 weights the quantizer left as they were."""
    fed = _fed_by_dequantize(after)
    count: Counter[str] = Counter()
    size: defaultdict[str, int] = defaultdict(int)
    for op in after.operators:
        if op.name in _TENSOR_OPS:
            continue
        b = _op_kept_float(op, after.subgraphs[op.subgraph].tensors, fed)
        if b:
            count[op.name] += 1
            size[op.name] += b
    rows = [KeptFloat(n, count[n], size[n]) for n in count if size[n] >= min_bytes]
    return tuple(sorted(rows, key=lambda r: -r.weight_bytes))


def kept_float_words(rows: Sequence[KeptFloat]) -> str:
    parts = [f"{r.op} ×{r.count} ({human_bytes(r.weight_bytes)} of weights)" for r in rows]
    return (
        "Kept in float: "
        + ", ".join(parts)
        + ". The quantizer has no rule for these ops in this recipe (or the recipe's scope "
        "leaves them out), so their weights stay float32; the rest is quantized."
    )


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _db(ratio: float | None) -> float:
    """The quantizer's SNR is a power ratio (mean signal² / MSE); in dB here."""
    if ratio is None or ratio <= 0.0:
        return -999.0
    return round(10.0 * math.log10(ratio), 3)


def comparison_rows(result: Any, signature_key: str) -> tuple[TensorComparison, ...]:
    """The quantizer's ``ComparisonResult`` as rows, worst first (SNR, then cosine)."""
    sig = result.get_signature_comparison_result(signature_key)
    rows = []
    for role, table in (
        ("output", sig.output_tensors),
        ("input", sig.input_tensors),
        ("constant", sig.constant_tensors),
        ("intermediate", sig.intermediate_tensors),
    ):
        for name, m in table.items():
            mse = _num(m.get("mse")) or 0.0
            rows.append(
                TensorComparison(
                    name=str(name),
                    role=role,
                    mse=mse,
                    snr_db=None if mse == 0.0 else _db(_num(m.get("snr"))),
                    cosine=_num(m.get("cosine_similarity")),
                )
            )

    def key(r: TensorComparison) -> tuple[float, float]:
        return (math.inf if r.snr_db is None else r.snr_db, r.cosine or 0.0)

    rows.sort(key=key)
    outputs = [r for r in rows if r.role == "output"]
    kept = [r for r in rows if r.role != "output"][: max(MAX_ROWS - len(outputs), 0)]
    return tuple(sorted(outputs + kept, key=key))


def signature_of(
    info: ModelInfo, wanted: str | None, name: str
) -> tuple[str, list[SignatureInput]]:
    """The signature a run uses and its inputs (``-1`` where dynamic)."""
    sigs = {s.key: s for s in info.signatures}
    if not sigs:
        raise QuantizeError(
            f"{name} has no signature, so the quantizer cannot feed it.",
            "Convert with TFLite Studio (or TFLiteConverter.from_saved_model), which keeps "
            "the signature.",
        )
    if wanted and wanted not in sigs:
        raise QuantizeError(
            f"{name} has no signature {wanted!r} (it has {', '.join(sorted(sigs))}).",
            "Pick one of those signatures.",
        )
    key = wanted or ("serving_default" if "serving_default" in sigs else next(iter(sigs)))
    sig = sigs[key]
    tensors = info.subgraphs[sig.subgraph].tensors
    inputs = []
    for in_name, idx in sig.inputs.items():
        t = tensors[idx]
        shape = tuple(t.shape_signature) if t.shape_signature else tuple(t.shape)
        inputs.append(SignatureInput(in_name, t.dtype.lower(), shape))
    return key, inputs
