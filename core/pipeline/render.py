"""A sweep report as text for a terminal, Markdown, or JSON."""

from __future__ import annotations

import json

from core.tasks.sweep import SweepReport

__all__ = ["render_sweep", "SWEEP_FORMATS"]

SWEEP_FORMATS = ("json", "text", "md")


def render_sweep(report: SweepReport, fmt: str = "text") -> str:
    """``json``, ``text`` (terminal) or ``md``."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2)
    md = fmt == "md"
    head = [
        "preset",
        "size",
        "latency ms",
        "top-1 agree",
        "accuracy",
        "cosine",
        "SNR dB",
        "verdict",
        "pareto",
    ]
    rows = []
    for r in report.rows:
        m = r.metrics
        rows.append(
            [
                r.label,
                f"{r.size_bytes:,}" if r.size_bytes is not None else "–",
                f"{r.latency_ms:.4f}" if r.latency_ms is not None else "–",
                f"{m['top1_agreement']:.2%}" if m.get("top1_agreement") is not None else "–",
                f"{m['accuracy']:.2%}" if m.get("accuracy") is not None else "–",
                f"{m['cosine']:.5f}" if m.get("cosine") is not None else "–",
                ("∞" if m.get("snr_db") is None else f"{m['snr_db']:.1f}") if m else "–",
                m.get("verdict", "failed" if r.error else "–")
                if m
                else ("can't run here" if r.cannot_run_here else "failed" if r.error else "–"),
                "yes" if r.pareto else "",
            ]
        )
    lines = [
        f"Sweep of {report.model.name}: {report.data.get('samples')} samples from "
        f"{report.data.get('name')} ({report.data.get('source')}), "
        f"latency at {min(report.threads)} thread(s), {report.runs} runs",
        "",
    ]
    if md:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines.extend("| " + " | ".join(r) + " |" for r in rows)
    else:
        widths = [
            max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i])
            for i in range(len(head))
        ]
        lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    notes = [(r.label, r.note) for r in report.rows if r.error]
    if notes:
        lines.append("")
        lines.extend(f"{lab}: {n}" for lab, n in notes)
    lines.append("")
    lines.append("Recommendation: " + report.recommendation.text.replace("**", ""))
    for f in report.flags:
        lines.append(f"{f.severity}: {f.message}")
    for le in report.layer_errors:
        by_name = {x["tensor"]: x for x in le.get("layers", [])}
        metric = le.get("metric", "rmse_over_scale")
        words = "rmse/scale" if metric == "rmse_over_scale" else "relative rmse"
        worst = [by_name[w] for w in (le.get("worst") or [])[:3] if w in by_name]
        if worst:
            lines.append(
                f"worst layers ({le.get('preset')}, {words}): "
                + "; ".join(f"{w['tensor'][:60]} ({w[metric]:.3g})" for w in worst)
            )
    return "\n".join(lines) + "\n"
