"""History: every job on this server — who, when, which model and preset,
sizes, status — with a link to each, and Cancel for your queued or running jobs.

Render only: the jobs come from ``core.server.jobs``; the list refreshes itself while
any job in it is still queued or running.
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from core.server import jobs
from ui.errors import guard
from ui.format import ago, human_bytes, human_seconds, md
from ui.identity import current_user
from ui.job_view import INSPECT_PAGE, STATUS_WORDS, page_of
from ui.words import option_words

_WHO = {"mine": "My jobs", "all": "Everyone's"}
_LIMIT = 300
_HIDDEN = (jobs.JobKind.SIGNATURE,)  # the Convert form reading a model's inputs
_KIND_WORDS = {
    "convert": "convert",
    "inspect": "inspect",
    "evaluate": "check",
    "sweep": "compare presets",
    "layers": "per-layer error",
    "diff": "diff",
}

user = current_user()

st.title("History")
st.caption(
    "Jobs keep running when you close the tab. Open one to see its report, download its "
    f"files or share its link. You are signed in as **{user}**."
)

c1, c2 = st.columns([1, 2])
who = (
    c1.segmented_control(
        "Show", options=list(_WHO), format_func=_WHO.get, default="mine", key="history.who"
    )
    or "mine"
)
wanted = c2.pills(
    "Status",
    options=list(jobs.JobStatus),
    selection_mode="multi",
    format_func=lambda s: STATUS_WORDS[s],
    key="history.status",
)


def _link(job: jobs.Job) -> str:
    """The job's own page (a conversion: its report; a re-conversion: its
    sweep's Compare page)."""
    page, query = page_of(job)
    if job.kind is jobs.JobKind.CONVERT:
        page = INSPECT_PAGE
    return "/" + page.removeprefix("pages/").removesuffix(".py") + "?" + urlencode(query)


def _setting(job: jobs.Job) -> str:
    """``dynamic + Select TF ops, fixed shapes``: the preset and every option
    that changes the result."""
    extra = option_words(job.params.get("options"))
    if job.kind is jobs.JobKind.SWEEP:
        presets = job.params.get("presets") or []
        base = f"{len(presets)} presets" if presets else "every preset"
    else:
        base = job.preset
    return " + ".join(p for p in (base, ", ".join(extra)) if p)


def _row(job: jobs.Job) -> dict[str, object]:
    return {
        "Open": _link(job),
        "When": ago(job.created_at),
        "Who": job.user,
        "Model": job.model_name,
        "What": _KIND_WORDS.get(job.kind.value, job.kind.value),
        "Settings": _setting(job),
        "Upload": human_bytes(job.input_size),
        "Result": human_bytes(job.output_size) if job.output_size else "",
        "Status": STATUS_WORDS[job.status] + (" (files removed)" if job.purged_at else ""),
        "Took": human_seconds(job.seconds) if job.seconds is not None else "",
        "Note": (job.error or {}).get("message") or job.progress or "",
    }


def _active_now() -> bool:
    mine = user if who == "mine" else None
    return jobs.store().count(jobs.ACTIVE, user=mine) > 0


_refreshing = _active_now()


@st.fragment(run_every=2.0 if _refreshing else None)
@guard
def _jobs_list() -> None:
    listed = [
        j
        for j in jobs.store().list(
            limit=_LIMIT, user=user if who == "mine" else None, status=wanted or None
        )
        if j.kind not in _HIDDEN
    ]
    if not listed:
        st.info(
            "No jobs here yet. Convert or inspect a model and it shows up here.",
            icon=":material/history:",
        )
        return
    st.dataframe(
        [_row(j) for j in listed],
        hide_index=True,
        width="stretch",
        column_config={
            "Open": st.column_config.LinkColumn(
                "Open", display_text="Open", help="The job's page; share this link."
            ),
            "Note": st.column_config.TextColumn("Note", width="large"),
        },
    )
    if len(listed) == _LIMIT:
        st.caption(f"Showing the newest {_LIMIT} jobs.")
    active = [j for j in listed if not j.status.finished and j.user == user]
    if active:
        st.subheader("Your unfinished jobs")
        for j in active:
            a, b = st.columns([4, 1], vertical_alignment="center")
            a.markdown(
                f"**{md(j.model_name)}** · {md(_setting(j) or j.kind.value)} · "
                f"{STATUS_WORDS[j.status]} · {md(j.progress or 'waiting')}"
            )
            if j.cancel_requested:
                b.caption("Stopping…")
            elif b.button("Cancel", key=f"history.cancel.{j.id}", icon=":material/cancel:"):
                jobs.cancel(j.id, by=user)
                st.rerun(scope="app")
    if _refreshing and not _active_now():
        st.rerun(scope="app")  # the last job finished: stop refreshing


_jobs_list()
