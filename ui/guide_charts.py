"""The Guide's pictures: the workflow as a diagram, and what each preset does
to size and accuracy as a chart drawn from a sample model's real results (the
conversion matrix ``sample_models/build.py`` measured and wrote into
``manifest.json``: every preset converted, run in LiteRT, scored on held-out
data). No Streamlit here: tests call these directly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.options import PRESET_IDS, PRESETS, Preset

__all__ = ["WORKFLOW_DOT", "PresetEffect", "preset_effects", "preset_effects_chart"]

# pick → convert → check → deploy → optimize (and back to check)
WORKFLOW_DOT = """
digraph workflow {
  rankdir=LR; bgcolor="transparent"; nodesep=0.35; ranksep=0.45;
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12,
        color="#FF6F00", fillcolor="#FFF3E0", margin="0.18,0.10"];
  edge [color="#616161", fontname="Helvetica", fontsize=10];
  pick     [label="1. Pick a model\\nSavedModel · .keras · .h5"];
  convert  [label="2. Convert\\nchoose a preset"];
  check    [label="3. Check\\nsize · where it runs\\naccuracy · speed"];
  deploy   [label="4. Deploy\\n.tflite + report"];
  optimize [label="5. Optimize\\nanother preset, layers in float"];
  pick -> convert -> check -> deploy;
  check -> optimize [label="not good enough"];
  optimize -> check [label="check again"];
}
"""


@dataclass(frozen=True)
class PresetEffect:
    preset: str
    size_bytes: int
    accuracy: float | None


def preset_effects(manifest: Path, file: str = "digits_classifier.zip") -> list[PresetEffect]:
    """Each preset's measured ``.tflite`` size and accuracy for one sample model
    (empty when the manifest has no results for it)."""
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entry: dict[str, Any] = next(
        (e for e in entries if isinstance(e, dict) and e.get("file") == file), {}
    )
    checks = entry.get("checks") or {}
    out = []
    for p in PRESET_IDS:
        c = checks.get(p) or {}
        if c.get("converts") and isinstance(c.get("size_bytes"), int):
            acc = c.get("accuracy")
            out.append(PresetEffect(p, int(c["size_bytes"]), float(acc) if acc else None))
    return out


def preset_effects_chart(effects: list[PresetEffect], model: str) -> go.Figure:
    """Size (bars, KB) and accuracy (dots) per preset, float32 first."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    names = [PRESETS[Preset(e.preset)].title for e in effects]
    base = effects[0].size_bytes if effects else 1
    fig.add_bar(
        x=names,
        y=[e.size_bytes / 1024 for e in effects],
        name="file size (KB)",
        marker_color="#1565C0",
        text=[
            f"{e.size_bytes / 1024:.1f} KB" + ("" if i == 0 else f" ({e.size_bytes / base:.0%})")
            for i, e in enumerate(effects)
        ],
        textposition="outside",
        hovertemplate="%{x}: %{y:.1f} KB<extra></extra>",
    )
    accs = [e.accuracy for e in effects]
    if any(a is not None for a in accs):
        fig.add_scatter(
            x=names,
            y=[a * 100 if a is not None else None for a in accs],
            name="accuracy on held-out data (%)",
            mode="markers+lines",
            marker=dict(size=11, color="#2E7D32"),
            line=dict(dash="dot", color="#2E7D32"),
            hovertemplate="%{x}: %{y:.1f}% accurate<extra></extra>",
            secondary_y=True,
        )
        lo = min(a for a in accs if a is not None) * 100
        fig.update_yaxes(
            title_text="accuracy (%)", range=[max(0.0, lo - 10), 100.5], secondary_y=True
        )
    fig.update_yaxes(title_text="file size (KB)", rangemode="tozero", secondary_y=False)
    fig.update_layout(
        title=dict(text=f"What each preset did to {model}", font=dict(size=15)),
        height=380,
        margin=dict(l=8, r=8, t=48, b=8),
        legend=dict(orientation="h", yanchor="top", y=-0.25, x=0),
        xaxis=dict(automargin=True),
    )
    return fig
