"""Plotly figures for the Compare page, from a sweep report dict
(``core.tasks.sweep.SweepReport.to_dict()``) and a per-layer error report
(``core.tasks.layers.LayerErrorReport.to_dict()``). No Streamlit here."""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go

from core.model.naming import short_layer_name
from core.tasks.sweep import accuracy_of
from core.units import human_bytes

__all__ = ["accuracy_label", "pareto_chart", "layer_error_chart"]


def _text(name: object) -> str:
    """A name from the model as plotly text (plotly reads a subset of HTML)."""
    return html.escape(str(name), quote=False)


def accuracy_label(report: dict[str, Any]) -> str:
    rows = [r for r in report.get("rows", []) if r.get("metrics")]
    if any(
        r["metrics"].get("top1_agreement") is not None and r["metrics"].get("top1_meaningful", True)
        for r in rows
    ):
        return "Same answer as the original"
    return "Output similarity to the original"


def pareto_chart(report: dict[str, Any]) -> go.Figure:
    """Size (x) × latency (y), colour = accuracy; the Pareto-optimal presets are
    ringed and joined, the recommended one is a star."""
    rows = [r for r in report.get("rows", []) if r.get("metrics") and r.get("size_bytes")]
    rec = (report.get("recommendation") or {}).get("label")
    label = accuracy_label(report)
    fig = go.Figure()
    if not rows:
        fig.add_annotation(text="No preset could be measured", showarrow=False)
        return _layout(fig, "Size, speed and accuracy")
    accs = [accuracy_of(r["metrics"]) or 0.0 for r in rows]
    lat = [r.get("latency_ms") for r in rows]
    has_lat = any(v is not None for v in lat)
    y = [v if v is not None else 0.0 for v in lat]
    texts = [_text(r["label"]) for r in rows]
    # neighbours (similar size and latency) get their labels on alternating sides
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["size_bytes"], y[i]))
    sides = ["top center", "bottom center", "middle right", "middle left"]
    positions = [""] * len(rows)
    for k, i in enumerate(order):
        positions[i] = sides[k % len(sides)]
    hover = []
    for r, a in zip(rows, accs):
        m = r["metrics"]
        extra = ""
        if m.get("accuracy") is not None:
            extra = f"<br>accuracy {m['accuracy']:.2%}"
        hover.append(
            f"<b>{_text(r['label'])}</b><br>{human_bytes(r['size_bytes'])}<br>"
            + (
                f"{r['latency_ms']:.4g} ms median<br>"
                if r.get("latency_ms") is not None
                else "latency not measured<br>"
            )
            + f"{label.lower()}: {a:.4f}{extra}<br>verdict: {m.get('verdict') or 'not judged'}"
        )
    lo = min(accs)
    fig.add_trace(
        go.Scatter(
            x=[r["size_bytes"] / 1024 for r in rows],
            y=y,
            mode="markers+text",
            text=texts,
            textposition=positions,
            hovertext=hover,
            hoverinfo="text",
            marker=dict(
                size=[22 if r["label"] == rec else 15 for r in rows],
                symbol=["star" if r["label"] == rec else "circle" for r in rows],
                color=accs,
                colorscale="RdYlGn",
                cmin=min(lo, 0.9),
                cmax=1.0,
                line=dict(width=[3 if r.get("pareto") else 0 for r in rows], color="#212121"),
                colorbar=dict(
                    title=dict(
                        text=label.replace(" as the original", "").replace(" to the original", ""),
                        side="right",
                    ),
                    thickness=12,
                ),
            ),
            showlegend=False,
        )
    )
    front = sorted((r for r in rows if r.get("pareto")), key=lambda r: r["size_bytes"])
    if len(front) > 1 and has_lat:
        fig.add_trace(
            go.Scatter(
                x=[r["size_bytes"] / 1024 for r in front],
                y=[r.get("latency_ms") or 0.0 for r in front],
                mode="lines",
                line=dict(dash="dot", color="#616161", width=1),
                hoverinfo="skip",
                name="Best trade-offs",
                showlegend=True,
            )
        )
    fig.update_xaxes(title="File size (KB)", rangemode="tozero")
    measured = [v for v in lat if v]
    spread = max(measured) / min(measured) if measured else 1.0
    if spread > 8:  # one slow preset (int16x8 reference kernels) would flatten the rest
        fig.update_yaxes(type="log", title="Median latency (ms, log scale)")
    else:
        fig.update_yaxes(
            title="Median latency (ms)" if has_lat else "latency not measured", rangemode="tozero"
        )
    return _layout(fig, "Size, speed and accuracy (ringed: the best trade-offs)", height=420)


def layer_error_chart(layers: dict[str, Any], *, highlight: int = 0) -> go.Figure:
    """Error per layer, in execution order; suspects above the dashed line are
    red, the ``highlight`` worst ones are outlined."""
    metric = layers.get("metric", "rmse_over_scale")
    thr = float(layers.get("threshold", 0.7))
    items = [x for x in layers.get("layers", []) if x.get(metric) is not None]
    ranked = sorted(items, key=lambda x: -x[metric])
    worst = {x["tensor"] for x in ranked[:highlight]}
    fig = go.Figure()
    if not items:
        fig.add_annotation(text="No layer error to show", showarrow=False)
        return _layout(fig, "Quantization error by layer")
    ytitle = (
        "error, in integer steps" if metric == "rmse_over_scale" else "error, share of the output"
    )
    many = len(items) > 16  # long names would overlap: numbers on the axis, names on hover
    fig.add_trace(
        go.Bar(
            x=[str(x["index"]) if many else f"{x['index']}: {_text(x['op'])}" for x in items],
            y=[x[metric] for x in items],
            marker=dict(
                color=["#C62828" if x.get("suspect") else "#1565C0" for x in items],
                line=dict(width=[3 if x["tensor"] in worst else 0 for x in items], color="#212121"),
            ),
            hovertext=[
                f"<b>{_text(x['op'])}</b><br>{_text(short_layer_name(x['tensor'], 80))}<br>"
                f"{metric.replace('_', ' ')}: {x[metric]:.4g}<br>max |error| "
                f"{x['max_abs_error']:.4g}<br>scale {x['scale']:.4g}"
                for x in items
            ],
            hoverinfo="text",
            showlegend=False,
        )
    )
    fig.add_hline(
        y=thr,
        line_dash="dash",
        line_color="#C62828",
        annotation_text=f"suspect above {thr:g}",
        annotation_position="top left",
    )
    if metric == "rmse_over_scale":
        fig.add_hline(
            y=0.289,
            line_dash="dot",
            line_color="#2E7D32",
            annotation_text="plain rounding (0.29)",
            annotation_position="bottom right",
        )
    fig.update_xaxes(
        title="Layer number, in the order the model runs them" if many else "Layer",
        tickangle=0 if many else -45,
        automargin=True,
        type="category",
        nticks=min(len(items), 20) if many else None,
    )
    fig.update_yaxes(title=ytitle, rangemode="tozero")
    return _layout(fig, f"Quantization error by layer ({layers.get('preset')})", height=380)


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, font=dict(size=15)),
        height=height,
        margin=dict(l=8, r=8, t=48, b=8),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0),
    )
    return fig
