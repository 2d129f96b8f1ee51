"""Which preset to ship: the Pareto front (size × latency × accuracy) and
the recommendation, with its rule in words."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from core.options import Preset
from core.tasks.metrics import snr_words
from core.tasks.results import Thresholds
from core.tasks.sweep import Recommendation, SweepRow, accuracy_of

__all__ = ["pareto_front", "recommend"]


def _accuracy_key(r: SweepRow) -> float:
    """Higher is better (the sweep's accuracy axis; unmeasured rows last)."""
    v = accuracy_of(r.metrics)
    return v if v is not None else 0.0


def pareto_front(rows: Sequence[SweepRow]) -> set[str]:
    """Labels of the measured rows no other row beats on size, latency and
    accuracy at once (smaller, faster, more accurate; one strictly)."""
    cand = [r for r in rows if r.measured and r.size_bytes is not None]
    front = set()
    for r in cand:
        rl = r.latency_ms if r.latency_ms is not None else math.inf
        ra, rs = _accuracy_key(r), _size(r)
        dominated = False
        for o in cand:
            if o is r:
                continue
            ol = o.latency_ms if o.latency_ms is not None else math.inf
            oa, os_ = _accuracy_key(o), _size(o)
            if os_ <= rs and ol <= rl and oa >= ra and (os_ < rs or ol < rl or oa > ra):
                dominated = True
                break
        if not dominated:
            front.add(r.label)
    return front


def _meaningful_top1(m: dict[str, Any]) -> bool:
    return m.get("top1_agreement") is not None and bool(m.get("top1_meaningful", True))


def _passes(m: dict[str, Any], th: Thresholds, classifier: bool) -> bool:
    """Agreement and signal fidelity both, and nothing degenerate."""
    if m.get("degenerate") or m.get("verdict") == "bad":
        return False
    snr = m.get("snr_db")
    cosine = float(m.get("cosine") or 0.0)
    if classifier:
        snr_ok = snr is None or float(snr) >= th.floor_snr_db
        agree = _meaningful_top1(m) and float(m["top1_agreement"]) >= th.top1_agreement
        return agree and cosine >= th.floor_cosine and snr_ok
    snr_ok = snr is None or float(snr) >= th.snr_db
    return cosine >= th.cosine and snr_ok


def _rule(th: Thresholds, classifier: bool) -> tuple[str, str]:
    """The rule as an expression and in words."""
    if classifier:
        return (
            f"top1_agreement >= {th.top1_agreement:g} and cosine >= {th.floor_cosine:g} "
            f"and snr_db >= {th.floor_snr_db:g}",
            f"the smallest model whose top-1 prediction agrees with the original "
            f"model's on at least {th.top1_agreement:.0%} of the evaluation samples, "
            f"whose outputs keep a cosine similarity of at least {th.floor_cosine:g} and a "
            f"signal-to-noise ratio of at least {th.floor_snr_db:g} dB, and whose "
            "comparison is not degenerate (no output stuck at one value, no invalid numbers)",
        )
    return (
        f"cosine >= {th.cosine:g} and snr_db >= {th.snr_db:g}",
        f"the smallest model whose outputs stay close to the original's: "
        f"cosine similarity at least {th.cosine:g} and signal-to-noise ratio at "
        f"least {th.snr_db:g} dB on every output, with no output stuck at one value and no "
        "invalid numbers",
    )


def _nothing_measured(rows: Sequence[SweepRow]) -> str:
    converted = [r for r in rows if r.converted]
    cannot = [r for r in rows if r.cannot_run_here]
    if cannot:
        smallest = (
            f"; the smallest converted file is {min(converted, key=_size).label}."
            if converted
            else "."
        )
        return (
            "Nothing could be measured on this server: " + cannot[0].note + " "
            "Pick by size only after checking accuracy on the device" + smallest
        )
    if converted:
        return "The converted models could not be run here, so no preset is recommended."
    return "No preset converted, so there is nothing to recommend; see each row's error."


def _pick_words(
    pick: SweepRow,
    passing: list[SweepRow],
    measured: list[SweepRow],
    rows: Sequence[SweepRow],
    rule_words: str,
    synthetic_data: bool,
) -> str:
    parts = [
        f"Ship **{pick.label}**: {_size_words(pick, rows)}, "
        f"{_latency_words(pick, rows)}, {_acc_words(pick.metrics)}.",
        f"Rule: {rule_words}; ties go to the faster one.",
    ]
    timed = [r for r in passing if r.latency_ms]
    fastest = min(timed, key=lambda r: r.latency_ms or math.inf) if timed else None
    if (
        fastest is not None
        and fastest is not pick
        and pick.latency_ms
        and fastest.latency_ms
        and pick.latency_ms > 1.2 * fastest.latency_ms
    ):
        parts.append(
            f"If speed matters more than size, {fastest.label} is the fastest within "
            f"the rule ({_ms_words(fastest.latency_ms)}, {_size_words(fastest, rows)})."
        )
    others = [r.label for r in passing if r.label != pick.label]
    if others:
        parts.append("Also within the rule: " + ", ".join(others) + ".")
    failing = [r for r in measured if r not in passing]
    if failing:
        parts.append(
            "Outside the rule: "
            + ", ".join(f"{r.label} ({_acc_words(r.metrics)})" for r in failing)
            + "."
        )
    if any("random synthetic data" in w for w in pick.warnings):
        parts.append(
            "Careful: this preset was calibrated on random data; give real "
            "calibration samples before shipping it."
        )
    if synthetic_data:
        parts.append(
            "The comparison ran on random inputs, so this says little about real "
            "accuracy; give evaluation data."
        )
    return " ".join(parts)


def recommend(
    rows: Sequence[SweepRow], thresholds: Thresholds | None = None, *, synthetic_data: bool = False
) -> Recommendation:
    """The smallest measured row that meets the rule (ties: the faster one).

    Rule for classifiers: top-1 agreement with the original ≥ 99 % and signal
    fidelity (cosine ≥ 0.9, SNR ≥ 10 dB); for other outputs: cosine ≥ 0.99 and
    SNR ≥ 20 dB on every output. Degenerate comparisons never pass."""
    th = thresholds or Thresholds()
    measured = [r for r in rows if r.measured]
    classifier = any(_meaningful_top1(r.metrics) for r in measured)
    rule, rule_words = _rule(th, classifier)
    if not measured:
        return Recommendation(None, None, rule, _nothing_measured(rows), ())
    passing = [r for r in measured if _passes(r.metrics, th, classifier)]
    if not passing:
        best = max(measured, key=_accuracy_key)
        text = (
            f"No preset meets the rule ({rule_words}). The closest is {best.label} "
            f"({_acc_words(best.metrics)}). Ship float32, or improve the calibration data "
            "(more typical samples, the same scaling as real inputs) and run the sweep "
            "again."
        )
        return Recommendation(None, None, rule, text, ())
    pick = min(
        passing, key=lambda r: (_size(r), r.latency_ms if r.latency_ms is not None else math.inf)
    )
    text = _pick_words(pick, passing, measured, rows, rule_words, synthetic_data)
    return Recommendation(pick.preset, pick.label, rule, text, tuple(r.label for r in passing))


def _size(r: SweepRow) -> int:
    return r.size_bytes if r.size_bytes is not None else 1 << 62


def _size_words(r: SweepRow, rows: Sequence[SweepRow]) -> str:
    base = next((x for x in rows if x.preset == Preset.FLOAT32.value and x.converted), None)
    s = f"{_size(r) / 1024:,.1f} KB"
    if base and base is not r and base.size_bytes:
        s += f" ({_size(r) / base.size_bytes:.0%} of float32)"
    return s


def _latency_words(r: SweepRow, rows: Sequence[SweepRow]) -> str:
    if r.latency_ms is None:
        return "latency not measured"
    s = f"{_ms_words(r.latency_ms)} median"
    base = next((x for x in rows if x.preset == Preset.FLOAT32.value and x.latency_ms), None)
    if base and base is not r and base.latency_ms and r.latency_ms > 0:
        ratio = base.latency_ms / r.latency_ms
        s += (
            f" ({ratio:.1f}× faster than float32)"
            if ratio >= 1.05
            else f" ({1 / ratio:.1f}× slower than float32)"
            if ratio <= 0.95
            else " (as fast as float32)"
        )
    return s


def _ms_words(ms: float) -> str:
    """0.00129 -> "1.3 µs"; 12.3456 -> "12.3 ms"."""
    if ms < 0.1:
        return f"{ms * 1000:.3g} µs"
    return f"{ms:.3g} ms"


_DEGENERATE_WORDS = {
    "collapsed_output": "its outputs collapsed to a constant",
    "non_finite": "it gives NaN or infinite values",
    "low_fidelity": "its outputs differ from the original's",
    "constant_original": "the original's output does not vary on these inputs",
    "one_class_original": "the original predicts one class for every sample",
}


def _acc_words(m: dict[str, Any]) -> str:
    parts = []
    if _meaningful_top1(m):
        s = f"top-1 agreement {m['top1_agreement']:.1%}"
        if m.get("accuracy") is not None:
            s += f", accuracy {m['accuracy']:.1%}"
            drop = m.get("accuracy_drop")
            if drop is not None:
                s += " (unchanged)" if abs(drop) < 0.0005 else f" ({-drop * 100:+.1f} points)"
        parts.append(s)
    parts.append(f"cosine {float(m.get('cosine') or 0.0):.4f}, SNR {snr_words(m.get('snr_db'))}")
    parts += [_DEGENERATE_WORDS.get(c, c) for c in m.get("degenerate") or ()]
    return ", ".join(parts)
