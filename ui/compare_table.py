"""A sweep's results in plain language: the recommendation as one sentence a
non-programmer understands (details below it), the table with one unit per
column and a one-line explanation of every metric, and every failure reason
in full. Reads the sweep report dict (``core.tasks.sweep.SweepReport``)
defensively: a field may be missing, and nothing missing is shown as ``None``,
``NaN`` or a dash."""

from __future__ import annotations

import math
import re
from typing import Any

import streamlit as st

from ui.errors import show_error
from ui.format import md
from ui.words import web_md

__all__ = [
    "METRIC_HELP",
    "size_unit",
    "in_unit",
    "headline",
    "details",
    "table_rows",
    "show_recommendation",
    "show_table",
    "show_failures",
]

# one line per metric: the column's tooltip and the legend under the table
METRIC_HELP = {
    "verdict": "Good: as the original on this data. Check: small differences. Bad: look first.",
    "size": "The .tflite file's size.",
    "smaller": "How many times smaller than the float32 file.",
    "latency": "Median time of one run on this server's CPU (LiteRT, µs = millionths of a "
    "second); lower is faster.",
    "agreement": "How often it picks the same class as the original model, on the same inputs.",
    "accuracy": "Share of your evaluation samples it gets right (needs labels in the data).",
    "change": "Accuracy minus the original's, in percentage points (0 = no loss).",
    "similarity": "Cosine similarity of its outputs to the original's; 1 = the same, "
    "0.99 or more is close.",
    "snr": "Signal-to-noise ratio: how far the error stays below the outputs; 20 dB means "
    "the error is a tenth of the signal. Higher is better.",
    "tradeoff": "No other preset is smaller, faster and at least as accurate at once.",
}
_VERDICT_WORDS = {"good": "✅ good", "check": "⚠️ check", "bad": "❌ bad"}
_UNITS = (("bytes", 1), ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30))
_KB_RE = re.compile(r"(\d[\d,]*(?:\.\d+)?) KB")


def _num(v: Any) -> float | None:
    """A finite number, else None (missing, None, NaN, a string)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def size_unit(sizes: list[Any]) -> tuple[str, int]:
    """The one unit for a column of sizes: the largest's (KB for 38 KB, MB for 9.7 MB)."""
    biggest = max((n for s in sizes if (n := _num(s)) is not None), default=0.0)
    unit = _UNITS[0]
    for u in _UNITS:
        if biggest >= u[1]:
            unit = u
    return unit


def in_unit(n: float, unit: tuple[str, int]) -> str:
    v = n / unit[1]
    return f"{v:,.0f} {unit[0]}" if unit[0] == "bytes" or v >= 100 else f"{v:,.1f} {unit[0]}"


def _rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report.get("rows") or [] if isinstance(r, dict)]


def _row(report: dict[str, Any], label: str | None) -> dict[str, Any] | None:
    return next((r for r in _rows(report) if r.get("label") == label), None)


def _base(report: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (r for r in _rows(report) if r.get("preset") == "float32" and _num(r.get("size_bytes"))),
        None,
    )


def _data_words(report: dict[str, Any]) -> str:
    src = (report.get("data") or {}).get("source")
    return {
        "user": "on your data",
        "calibration": "on the calibration data",
        "synthetic": "on random inputs",
    }.get(str(src), "on the test inputs")


def _accuracy_words(m: dict[str, Any], report: dict[str, Any]) -> str:
    drop = _num(m.get("accuracy_drop"))
    agree = _num(m.get("top1_agreement"))
    if _num(m.get("accuracy")) is not None and drop is not None:
        if abs(drop) < 0.005:
            return "as accurate " + _data_words(report)
        if drop < 0:
            return f"{-drop * 100:.1f} points more accurate " + _data_words(report)
        return f"{drop * 100:.1f} points less accurate " + _data_words(report)
    if agree is not None:
        return f"same answers as the original {agree:.0%} of the time " + _data_words(report)
    cos = _num(m.get("cosine"))
    if cos is not None:
        return "outputs close to the original's " + _data_words(report)
    return "accuracy not measured"


def headline(report: dict[str, Any]) -> str:
    """The recommendation in one sentence: "Ship int8: 2.6× smaller, 1.4× faster,
    as accurate on your data." (plain text)."""
    rec = report.get("recommendation") or {}
    pick = _row(report, rec.get("label"))
    if not rec.get("label") or pick is None:
        return "No preset can be recommended yet: see why below."
    parts = []
    base = _base(report)
    size, bsize = _num(pick.get("size_bytes")), _num((base or {}).get("size_bytes"))
    if pick is not base and size and bsize:
        ratio = bsize / size
        parts.append(f"{ratio:.1f}× smaller" if ratio >= 1.1 else "about the same size")
    lat, blat = _num(pick.get("latency_ms")), _num((base or {}).get("latency_ms"))
    if pick is not base and lat and blat and blat / lat >= 1.2:
        parts.append(f"{blat / lat:.1f}× faster")
    parts.append(_accuracy_words(pick.get("metrics") or {}, report))
    if pick is base:
        return f"Ship {rec['label']}: no smaller preset kept the accuracy ({parts[-1]})."
    return f"Ship {rec['label']}: " + ", ".join(parts) + "."


def _sentences(text: str) -> list[str]:
    plain = text.replace("**", "")
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", plain) if s.strip()]


def details(report: dict[str, Any]) -> list[str]:
    """The recommendation's reasons, one sentence each, sizes in the table's unit."""
    unit = size_unit([r.get("size_bytes") for r in _rows(report)])
    text = str((report.get("recommendation") or {}).get("text") or "")

    def same_unit(m: re.Match[str]) -> str:
        return in_unit(float(m.group(1).replace(",", "")) * 1024, unit)

    out = [_KB_RE.sub(same_unit, s) for s in _sentences(text)]
    if out and out[0].startswith("Ship "):  # the headline says it already
        out[0] = out[0][len("Ship ") :]
    return out


def show_recommendation(report: dict[str, Any]) -> None:
    rec = report.get("recommendation") or {}
    box = st.success if rec.get("label") else st.warning
    box(f"**{md(headline(report))}**", icon=":material/recommend:")
    reasons = details(report)
    if reasons:
        st.markdown("\n".join(f"- {md(s)}" for s in reasons))
    data = report.get("data") or {}
    bits = []
    if _num(data.get("samples")):
        bits.append(f"Measured on {int(data['samples'])} samples {_data_words(report)}")
    threads = report.get("threads") or []
    if threads and report.get("runs"):
        bits.append(
            f"latency on this server's CPU with LiteRT, {min(threads)} thread(s), "
            f"{report['runs']} runs"
        )
    if _num(report.get("seconds")):
        bits.append(f"the comparison took {float(report['seconds']):.0f} s")
    if bits:
        st.caption("; ".join(bits) + ".")
    for f in report.get("flags") or []:
        if not isinstance(f, dict) or not f.get("message"):
            continue
        {"error": st.error, "warning": st.warning}.get(str(f.get("severity")), st.info)(
            web_md(f["message"]),
            icon=":material/warning:" if f.get("severity") != "info" else ":material/info:",
        )


def _status(r: dict[str, Any]) -> str:
    m = r.get("metrics") or {}
    err = r.get("error") or {}
    if m.get("verdict"):
        return _VERDICT_WORDS.get(str(m["verdict"]), str(m["verdict"]))
    if (err.get("details") or {}).get("cannot_run_here"):
        return "🚫 can't run here"
    if err:
        return "❌ failed"
    return "not measured"


def table_rows(report: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The rows as the table shows them, and each shown column's unit or kind
    (``number`` columns have a value in every row; others are words)."""
    rows = _rows(report)
    rec = (report.get("recommendation") or {}).get("label")
    unit = size_unit([r.get("size_bytes") for r in rows])
    base = _base(report)
    bsize = _num((base or {}).get("size_bytes"))
    lats = [n for r in rows if (n := _num(r.get("latency_ms"))) is not None]
    lat_unit = ("µs", 1000.0) if lats and max(lats) < 1 else ("ms", 1.0)
    out = []
    for r in rows:
        m = r.get("metrics") or {}
        size = _num(r.get("size_bytes"))
        drop = _num(m.get("accuracy_drop"))
        out.append(
            {
                "preset": ("★ " if r.get("label") == rec else "") + str(r.get("label", "")),
                "verdict": _status(r),
                "size": size / unit[1] if size is not None else None,
                "smaller": bsize / size if size and bsize else None,
                "latency": lat * lat_unit[1]
                if (lat := _num(r.get("latency_ms"))) is not None
                else None,
                "agreement": _num(m.get("top1_agreement")),
                "accuracy": _num(m.get("accuracy")),
                "change": round(-drop * 100, 2) + 0.0 if drop is not None else None,
                "similarity": _num(m.get("cosine")),
                "snr": _num(m.get("snr_db")) if m else None,
                "tradeoff": "yes" if r.get("pareto") else "",
                "_identical": bool(m) and m.get("snr_db") is None,
            }
        )
    return out, {"size": unit[0], "latency": lat_unit[0]}


_TITLES = {
    "size": "size ({unit})",
    "smaller": "smaller by",
    "latency": "latency ({lat})",
    "agreement": "same answer as original",
    "accuracy": "accuracy",
    "change": "accuracy change (points)",
    "similarity": "output similarity",
    "snr": "signal-to-noise (dB)",
    "tradeoff": "best trade-off",
}
_FORMATS = {
    "size": "%.1f",
    "smaller": "%.1f×",
    "latency": "%.3g",
    "agreement": "percent",
    "accuracy": "percent",
    "change": "%+.1f",
    "similarity": "%.4f",
    "snr": "%.1f",
}


def _words(col: str, v: float | None, identical: bool) -> str:
    if v is None:
        return "identical" if col == "snr" and identical else "not measured"
    fmt = _FORMATS[col]
    return f"{v:.1%}" if fmt == "percent" else fmt % v


def show_table(report: dict[str, Any], *, key: str) -> None:
    rows, units = table_rows(report)
    if not rows:
        st.info("This comparison has no rows.")
        return
    shown = ["preset", "verdict", "size", "smaller", "latency"]
    shown += [c for c in ("agreement", "accuracy", "change") if any(r[c] is not None for r in rows)]
    shown += ["similarity", "snr", "tradeoff"]
    cols: dict[str, Any] = {
        "preset": st.column_config.TextColumn(
            "preset", pinned=True, width="medium", help="★ the recommended one."
        ),
        "verdict": st.column_config.TextColumn("verdict", help=METRIC_HELP["verdict"]),
        "tradeoff": st.column_config.TextColumn(_TITLES["tradeoff"], help=METRIC_HELP["tradeoff"]),
    }
    table = [{c: r[c] for c in ("preset", "verdict", "tradeoff")} for r in rows]
    for c in shown[2:-1]:
        title = _TITLES[c].format(unit=units["size"], lat=units["latency"])
        if all(r[c] is not None for r in rows):  # numbers: sortable
            fmt = _FORMATS[c]
            cols[c] = st.column_config.NumberColumn(title, format=fmt, help=METRIC_HELP[c])
            for t, r in zip(table, rows):
                t[c] = r[c]
        else:  # some rows have no value: words, never None
            cols[c] = st.column_config.TextColumn(title, help=METRIC_HELP[c])
            for t, r in zip(table, rows):
                t[c] = _words(c, r[c], r["_identical"])
    st.dataframe(
        table,
        column_config=cols,
        column_order=shown,
        hide_index=True,
        width="stretch",
        key=f"{key}.table",
    )
    legend = [
        f"**{_TITLES[c].format(unit=units['size'], lat=units['latency'])}**: {METRIC_HELP[c]}"
        for c in shown[3:]
    ]
    with st.expander("What the columns mean", icon=":material/help:", expanded=True):
        st.markdown("\n".join(f"- {line}" for line in legend))


def show_failures(report: dict[str, Any]) -> None:
    """Why some presets have no numbers: each reason in full, with its fix."""
    for r in _rows(report):
        err = r.get("error")
        note = str(r.get("note") or "")
        if isinstance(err, dict) and err:
            step = r.get("failed_step") or "the comparison"
            if (err.get("details") or {}).get("cannot_run_here"):
                st.info(
                    f"**{md(r.get('label', ''))}** converted but cannot run here: "
                    + web_md(err.get("message") or note),
                    icon=":material/block:",
                )
            else:
                show_error(err, title=f"{r.get('label', '')}: {step} failed.")
        elif note and not r.get("metrics"):
            st.info(f"**{md(r.get('label', ''))}**: {web_md(note)}", icon=":material/info:")
        for w in r.get("warnings") or []:
            if "random synthetic data" in str(w):
                st.caption(f"{md(r.get('label', ''))}: {web_md(w)}")
                break
