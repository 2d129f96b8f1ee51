"""Plotly figures from a report dict (``core.model.report`` JSON). No Streamlit here:
each function takes the report and returns a figure, so tests can call them."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from typing import Any

import plotly.graph_objects as go

from core.model.naming import short_layer_name
from core.units import human_bytes

__all__ = [
    "VERDICT_COLORS",
    "op_histogram",
    "size_treemap",
    "weights_by_dtype",
    "quantization_coverage",
    "op_numerics",
    "weight_layers",
]

VERDICT_COLORS = {"supported": "#2E7D32", "partial": "#EF6C00", "unsupported": "#C62828"}
_KIND_COLORS = {"builtin": "#1565C0", "select_tf": "#EF6C00", "custom": "#C62828"}
_KIND_WORDS = {
    "builtin": "TFLite built-in",
    "select_tf": "Select TF op (Flex)",
    "custom": "custom op",
}
_DTYPE_COLORS = {
    "FLOAT32": "#1565C0",
    "FLOAT16": "#42A5F5",
    "BFLOAT16": "#90CAF9",
    "FLOAT64": "#0D47A1",
    "INT8": "#2E7D32",
    "UINT8": "#66BB6A",
    "INT16": "#9CCC65",
    "INT4": "#1B5E20",
    "INT32": "#8D6E63",
    "INT64": "#6D4C41",
    "BOOL": "#BDBDBD",
    "STRING": "#9E9E9E",
}
_QUANT_DTYPES = {"INT8", "UINT8", "INT16", "INT4"}
_FLOAT_DTYPES = {"FLOAT32", "FLOAT16", "BFLOAT16", "FLOAT64"}
_NUMERIC_COLORS = {
    "integer (quantized)": "#2E7D32",
    "hybrid / mixed": "#F9A825",
    "float": "#1565C0",
    "other (shapes, indices)": "#BDBDBD",
}


def _layout(fig: go.Figure, height: int = 320) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=8, r=8, t=40, b=8),
        title=dict(font=dict(size=15)),
        legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
    )
    return fig


def _text(name: str) -> str:
    """A name from the model as plotly text: plotly reads a subset of HTML
    (links, images, styling), so ``<`` and ``&`` must not reach it raw."""
    return html.escape(str(name), quote=False)


def op_histogram(report: dict[str, Any]) -> go.Figure:
    """How often each operator appears, coloured by how it runs."""
    kinds: dict[str, str] = {}
    for op in report.get("operators") or []:
        kinds.setdefault(op["op"], op.get("kind", "builtin"))
    counts = report.get("op_counts") or dict(
        Counter(o["op"] for o in report.get("operators") or [])
    )
    items = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))
    fig = go.Figure()
    for kind in ("builtin", "select_tf", "custom"):
        rows = [(n, c) for n, c in items if kinds.get(n, "builtin") == kind]
        if not rows:
            continue
        fig.add_bar(
            y=[_text(n) for n, _ in rows],
            x=[c for _, c in rows],
            orientation="h",
            name=_KIND_WORDS[kind],
            marker_color=_KIND_COLORS[kind],
            hovertemplate="%{y}: %{x} time(s)<extra>" + _KIND_WORDS[kind] + "</extra>",
        )
    most = max(counts.values(), default=1)
    fig.update_layout(
        title="Operators used",
        xaxis_title="times used",
        barmode="stack",
        xaxis=dict(dtick=1 if most <= 10 else None, rangemode="tozero"),
        yaxis=dict(categoryorder="array", categoryarray=[_text(n) for n, _ in items]),
        showlegend=len(fig.data) > 1,
    )
    return _layout(fig, height=max(260, 28 * len(items) + 90))


def weight_layers(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Weight tensors with the op type the report counts them for (each buffer
    once, its first reader in execution order: ``core.model.reader.weight_owners``)."""
    rows = []
    for t in report.get("tensors") or []:
        if not t.get("weights_of"):
            continue  # not a weight, or its buffer is counted for another tensor
        rows.append(
            {
                "op": t["weights_of"],
                "layer": short_layer_name(t.get("name", "")),
                "name": t.get("name", ""),
                "dtype": t.get("dtype", "?"),
                "bytes": int(t["bytes"]),
                "shape": t.get("shape"),
            }
        )
    return rows


def size_treemap(
    report: dict[str, Any], max_layers_per_op: int = 8, max_ops: int = 10
) -> go.Figure:
    """Where the bytes of the file go: op type → layer (weights), plus the
    FlatBuffer structure and metadata, so the boxes add up to the file size.
    Readable on a large model: the ``max_ops`` biggest op types (the rest in
    one "other" box), each with its ``max_layers_per_op`` biggest layers (the
    rest in one box), two levels shown at once (click a box to go deeper),
    labels that do not fit hidden rather than shrunk."""
    size = report.get("size") or {}
    file_bytes = int(size.get("file_bytes") or (report.get("file") or {}).get("size_bytes") or 0)
    ids, labels, parents, values, colors = ["file"], ["whole file"], [""], [file_bytes], [""]
    by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in weight_layers(report):
        by_op[row["op"]].append(row)
    ranked = sorted(by_op.items(), key=lambda kv: -sum(r["bytes"] for r in kv[1]))
    if len(ranked) > max_ops:
        rest = ranked[max_ops - 1 :]
        other = [r for _, rows in rest for r in rows]
        ranked = [*ranked[: max_ops - 1], (f"{len(rest)} other op types", other)]
    weights_total = 0
    for op, rows in ranked:
        total = sum(r["bytes"] for r in rows)
        weights_total += total
        ids.append(f"op/{op}")
        labels.append(_text(op))
        parents.append("file")
        values.append(total)
        colors.append("")
        rows.sort(key=lambda r: -r["bytes"])
        shown, rest = rows[:max_layers_per_op], rows[max_layers_per_op:]
        for j, r in enumerate(shown):
            ids.append(f"op/{op}/{j}")
            labels.append(_text(f"{r['layer']} · {r['dtype']}"))
            parents.append(f"op/{op}")
            values.append(r["bytes"])
            colors.append(_DTYPE_COLORS.get(r["dtype"], "#9E9E9E"))
        if rest:
            ids.append(f"op/{op}/rest")
            labels.append(f"{len(rest)} smaller tensors")
            parents.append(f"op/{op}")
            values.append(sum(r["bytes"] for r in rest))
            colors.append("#BDBDBD")
    meta = int(size.get("metadata_bytes") or 0)
    if meta:
        ids.append("metadata")
        labels.append("metadata")
        parents.append("file")
        values.append(meta)
        colors.append("#BDBDBD")
    structure = max(file_bytes - weights_total - meta, 0)
    if structure:
        ids.append("structure")
        labels.append("graph structure (ops, tensors, names)")
        parents.append("file")
        values.append(structure)
        colors.append("#E0E0E0")
    values[0] = max(file_bytes, sum(v for v, p in zip(values, parents) if p == "file"))
    fig = go.Figure(
        go.Treemap(
            ids=ids,
            labels=labels,
            parents=parents,
            values=values,
            branchvalues="total",
            marker=dict(colors=colors) if any(colors) else None,
            hovertemplate="%{label}<br>%{value:,} bytes<br>%{percentRoot:.1%} of the file"
            "<extra></extra>",
            texttemplate="%{label}<br>%{percentRoot:.0%}",
            maxdepth=2,
        )
    )
    fig.update_layout(
        title="Where the bytes go (by operator type; click one for its layers)",
        uniformtext=dict(minsize=11, mode="hide"),
    )
    return _layout(fig, height=420)


def weights_by_dtype(report: dict[str, Any]) -> go.Figure:
    """Weight bytes per number type (float32, int8, …)."""
    by = (report.get("size") or {}).get("by_dtype") or {}
    items = [(k, v) for k, v in by.items() if v]
    fig = go.Figure(
        go.Pie(
            labels=[k for k, _ in items],
            values=[v for _, v in items],
            hole=0.55,
            sort=False,
            marker=dict(colors=[_DTYPE_COLORS.get(k, "#9E9E9E") for k, _ in items]),
            hovertemplate="%{label}: %{value:,} bytes (%{percent})<extra></extra>",
            textinfo="percent",
            textposition="inside",
        )
    )
    total = sum(v for _, v in items)
    fig.update_layout(
        title="Weights by number type",
        showlegend=True,
        annotations=[dict(text=human_bytes(total), showarrow=False, font=dict(size=16))],
    )
    return _layout(fig)


def op_numerics(report: dict[str, Any]) -> Counter[str]:
    """Operators by the numbers they compute with: integer, hybrid, float, other."""
    tensors = {(t["subgraph"], t["index"]): t for t in report.get("tensors") or []}
    out: Counter[str] = Counter()
    for op in report.get("operators") or []:
        dts = [
            tensors[(op["subgraph"], i)]
            for i in [*op.get("inputs", []), *op.get("outputs", [])]
            if i >= 0 and (op["subgraph"], i) in tensors
        ]
        quant = any(t["dtype"] in _QUANT_DTYPES and t.get("quantization") for t in dts)
        flt = any(t["dtype"] in _FLOAT_DTYPES for t in dts)
        if quant and not flt:
            out["integer (quantized)"] += 1
        elif quant and flt:
            out["hybrid / mixed"] += 1
        elif flt:
            out["float"] += 1
        else:
            out["other (shapes, indices)"] += 1
    return out


def quantization_coverage(report: dict[str, Any]) -> go.Figure:
    """How much of the model is quantized: operators, weight bytes, activations."""
    ops = op_numerics(report)
    weights: Counter[str] = Counter()
    acts: Counter[str] = Counter()
    for t in report.get("tensors") or []:
        dt = t.get("dtype", "?")
        cat = (
            "integer (quantized)"
            if dt in _QUANT_DTYPES and t.get("quantization")
            else "float"
            if dt in _FLOAT_DTYPES
            else "other (shapes, indices)"
        )
        if t.get("constant"):
            weights[cat] += int(t.get("bytes") or 0)
        else:
            acts[cat] += 1
    rows = {"Operators": ops, "Weight bytes": weights, "Activations": acts}
    fig = go.Figure()
    for cat, color in _NUMERIC_COLORS.items():
        xs, ys, raw = [], [], []
        for row, counter in rows.items():
            total = sum(counter.values()) or 1
            xs.append(100.0 * counter.get(cat, 0) / total)
            ys.append(row)
            raw.append(counter.get(cat, 0))
        if not any(raw):
            continue
        fig.add_bar(
            x=xs,
            y=ys,
            orientation="h",
            name=cat,
            marker_color=color,
            customdata=raw,
            hovertemplate="%{y}: %{x:.0f}% " + cat + " (%{customdata:,})<extra></extra>",
        )
    fig.update_layout(
        title="Quantization coverage",
        barmode="stack",
        xaxis=dict(title="% of each", range=[0, 100], ticksuffix="%"),
        yaxis=dict(
            categoryorder="array", categoryarray=["Activations", "Weight bytes", "Operators"]
        ),
    )
    return _layout(fig)
