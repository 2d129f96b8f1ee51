"""The runs behind a report's verdicts, on a page: which runtime loaded,
allocated and ran the model here, whether it fits typical microcontrollers,
and what static validation found. Every string from the model is data."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.format import human_bytes, md

__all__ = ["decided_caption", "show_runs"]


def decided_caption(target: dict[str, Any]) -> str:
    """One line under a verdict card: a run here, or the rules and why."""
    d = target.get("details") or {}
    if d.get("decided_by") == "run":
        return "Decided by a run on this server"
    why = d.get("not_run")
    return f"Decided by rules: {why}" if why else "Decided by rules"


def _run_rows(runs: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in runs.get("litert") or []:
        detail = ""
        if r.get("delegated_nodes") is not None:
            detail = f"{r['delegated_nodes']} of {r.get('total_nodes') or 0} ops delegated"
        rows.append(
            {
                "Runtime": str(r.get("name") or r.get("runtime", "")),  # the report names it
                "Outcome": r.get("outcome", ""),
                "Delegation / memory": detail,
                "What it said": r.get("error") or r.get("skipped") or "",
            }
        )
    mp = runs.get("micro")
    if mp:
        outcome = (
            "ran"
            if mp.get("ok")
            else "crashed"
            if mp.get("crashed")
            else "did not finish in time"
            if mp.get("timed_out")
            else "failed"
        )
        rows.append(
            {
                "Runtime": "TFLite Micro interpreter",
                "Outcome": outcome,
                "Delegation / memory": (
                    f"tensor arena {human_bytes(mp['arena_bytes'])}"
                    if mp.get("arena_bytes")
                    else ""
                ),
                "What it said": mp.get("error") or "",
            }
        )
    return rows


def _fit_rows(fits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "Board": f.get("board", ""),
            "Flash": human_bytes(f.get("flash_bytes") or 0),
            "Model uses": f"{100 * (f.get('flash_share') or 0):.0f}% of flash",
            "RAM": human_bytes(f.get("ram_bytes") or 0),
            "Arena uses": (
                f"{100 * f['ram_share']:.0f}% of RAM"
                if f.get("ram_share") is not None
                else "not known"
            ),
            "Fits": "yes" if f.get("fits") else "no",
        }
        for f in fits
    ]


def show_runs(report: dict[str, Any], *, key: str) -> None:
    """The evidence under the verdict cards, folded away by default."""
    runs = report.get("runs")
    micro = (report.get("compatibility") or {}).get("micro") or {}
    fits = (micro.get("details") or {}).get("fits") or []
    findings = report.get("validation") or []
    if runs:
        with st.expander("Runs behind these verdicts", icon=":material/play_circle:"):
            st.caption(
                "Each runtime loaded the model, set up its memory and ran it once on valid "
                "made-up inputs, on this server. GPU and Edge TPU were not run here: their "
                "verdicts come from the published rules named in their tabs."
            )
            st.dataframe(_run_rows(runs), hide_index=True, key=f"{key}.runs")
    if fits:
        with st.expander("Does it fit a microcontroller?", icon=":material/memory:"):
            st.caption(
                "The model goes to flash and TFLite Micro's tensor arena to RAM; the app and "
                "TFLite Micro's own code need room too. Board sizes are the makers' data sheets."
            )
            st.dataframe(_fit_rows(fits), hide_index=True, key=f"{key}.fits")
    if findings:
        fatal = sum(1 for f in findings if f.get("fatal", True))
        with st.expander(
            f"Checks of the file: {len(findings)} finding" + ("s" if len(findings) != 1 else ""),
            icon=":material/rule:",
            expanded=bool(fatal),
        ):
            st.caption("What LiteRT's loader checks, checked here without running the model.")
            for f in findings[:50]:
                st.markdown(f"- {md(f.get('message', ''))}  \n  *{md(f.get('where', ''))}*")
            if len(findings) > 50:
                st.caption(f"… and {len(findings) - 50} more in the report download.")
