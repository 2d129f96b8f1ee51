"""History: every job on this server — who, when, which model and preset,
sizes, status — with a link to each, and Cancel for your queued or running jobs.

Render only: the jobs come from ``core.server.jobs``; the list refreshes itself while
any job in it is still queued or running.
"""

from __future__ import annotations

import streamlit as st

from core.server import jobs
from ui.errors import guard
from ui.format import ago, human_bytes, human_seconds, md
from ui.identity import current_user

_WHO = {"mine": "My jobs", "all": "Everyone's"}
_STATUS_WORDS = {
    jobs.JobStatus.QUEUED: "⏳ queued",
    jobs.JobStatus.RUNNING: "⚙️ running",
    jobs.JobStatus.DONE: "✅ done",
    jobs.JobStatus.FAILED: "❌ failed",
    jobs.JobStatus.CANCELLED: "⏹️ cancelled",
}
_LIMIT = 300

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
    format_func=lambda s: _STATUS_WORDS[s],
    key="history.status",
)


def _link(job: jobs.Job) -> str:
    if job.kind is jobs.JobKind.EVALUATE and job.params.get("parent"):
        # a re-conversion is shown on its sweep's Compare page
        return f"/compare?job={job.params['parent']}&reconvert={job.id}"
    page = "compare" if job.kind is jobs.JobKind.SWEEP else "inspect"
    return f"/{page}?job={job.id}"


def _row(job: jobs.Job) -> dict[str, object]:
    return {
        "Open": _link(job),
        "When": ago(job.created_at),
        "Who": job.user,
        "Model": job.model_name,
        "What": job.kind.value,
        "Preset": job.preset or "–",
        "Upload": human_bytes(job.input_size),
        "Result": human_bytes(job.output_size) if job.output_size else "–",
        "Status": _STATUS_WORDS[job.status] + (" (files removed)" if job.purged_at else ""),
        "Took": human_seconds(job.seconds),
        "Note": (job.error or {}).get("message") or job.progress or "",
    }


def _active_now() -> bool:
    mine = user if who == "mine" else None
    return jobs.store().count(jobs.ACTIVE, user=mine) > 0


_refreshing = _active_now()


@st.fragment(run_every=2.0 if _refreshing else None)
@guard
def _jobs_list() -> None:
    listed = jobs.store().list(
        limit=_LIMIT, user=user if who == "mine" else None, status=wanted or None
    )
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
                f"**{md(j.model_name)}** · {j.preset or j.kind.value} · "
                f"{_STATUS_WORDS[j.status]} · {md(j.progress or 'waiting')}"
            )
            if j.cancel_requested:
                b.caption("Stopping…")
            elif b.button("Cancel", key=f"history.cancel.{j.id}", icon=":material/cancel:"):
                jobs.cancel(j.id, by=user)
                st.rerun(scope="app")
    if _refreshing and not _active_now():
        st.rerun(scope="app")  # the last job finished: stop refreshing


_jobs_list()
