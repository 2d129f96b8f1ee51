"""The Streamlit pages of TFLite Studio (``app.py`` serves this script).

Page config, navigation over ``pages/`` and the one error handler: every page
runs inside ``ui.errors.run_page``, so an uncaught exception shows a plain
message (the traceback goes to the server log only). Compare and History are
listed only when their page files exist.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.server.settings import load_settings, sandbox_warning
from ui.branding import app_icon
from ui.errors import run_page
from ui.format import md

ROOT = Path(__file__).resolve().parent
PAGES = ROOT / "pages"

st.set_page_config(
    page_title="TFLite Studio",
    page_icon=app_icon(),
    layout="wide",
    menu_items={
        "About": "TFLite Studio: convert TensorFlow models to TensorFlow Lite, "
        "look inside them and download them with a report."
    },
)


def _page(file: str, title: str, icon: str, url_path: str, **kw: object) -> st.Page:
    return st.Page(str(PAGES / file), title=title, icon=icon, url_path=url_path, **kw)  # type: ignore[arg-type]


pages = [
    _page("convert.py", "Convert", ":material/upload_file:", "convert", default=True),
    _page("inspect.py", "Inspect", ":material/query_stats:", "inspect"),
    _page("compare.py", "Compare", ":material/compare_arrows:", "compare"),
    _page("history.py", "History", ":material/history:", "history"),
    _page("guide.py", "Guide", ":material/menu_book:", "guide"),
]


def _queue_line() -> str:
    """How busy the shared server is, in one line (empty if the store is unreadable)."""
    try:
        from core.server import jobs

        s = jobs.store()
        running = s.count((jobs.JobStatus.RUNNING,))
        waiting = s.count((jobs.JobStatus.QUEUED,))
    except Exception:  # noqa: BLE001  (a hint only; never block a page on it)
        return ""
    if not running and not waiting:
        return "Server: idle."
    return f"Server: {running} job{'s' if running != 1 else ''} running, {waiting} waiting."


with st.sidebar:
    st.markdown("### :material/memory: TFLite Studio")
    st.caption(
        "TensorFlow → TensorFlow Lite, in the browser. Conversions run on this "
        "server in their own process; a job keeps running if you close the tab."
    )
    line = _queue_line()
    if line:
        st.caption(line)

page = st.navigation(pages, position="sidebar")
_no_sandbox = sandbox_warning(load_settings())
if _no_sandbox:  # local single-user mode only: a shared server refuses to start
    st.warning(
        "**This server runs uploaded models without a sandbox.** Use it only for "
        "your own models. " + md(_no_sandbox.split(". ", 1)[-1]),
        icon=":material/gpp_maybe:",
    )
run_page(page)
