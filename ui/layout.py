"""Layout the pages share: what keeps them usable on a small screen, and
bringing a job's progress into view.

- ``apply()`` (every run, from ``studio.py``): CSS that keeps metric values and
  verdict words whole at any width and gives the Netron frame the viewport's
  height; on a narrow window (under 1000 px) the sidebar starts collapsed,
  once per page load (the person can open it again).
- ``progress_anchor(job_id, scroll)``: a mark above a job's progress; with
  ``scroll`` the page scrolls to it (after a submit from the bottom of a
  page, the progress is what the person sees).

Only this module's own constant scripts run in the page; nothing from a model
reaches them.
"""

from __future__ import annotations

import re

import streamlit as st

__all__ = ["apply", "progress_anchor", "NARROW_PX"]

NARROW_PX = 1000  # below this window width the sidebar starts collapsed

_CSS = """
<style>
/* metric values whole, never "37.…": smaller on narrow screens, wrapping if need be */
[data-testid="stMetricValue"] { font-size: clamp(1.25rem, 0.9rem + 1.2vw, 2.25rem); }
[data-testid="stMetricValue"] > div {
  white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: normal;
}
[data-testid="stMetricLabel"] p { white-space: normal; }
/* words break between words, never inside them ("Par tly", "XNNPA CK") */
[data-testid="stMarkdownContainer"] :is(p, h3, span, strong) {
  word-break: normal; overflow-wrap: normal; hyphens: none;
}
/* the graph takes the window's height, whatever the size of the model */
[data-testid="stElementContainer"]:has(> iframe[title^="Graph of"]) { height: auto !important; }
iframe[title^="Graph of"] { height: clamp(480px, calc(100vh - 170px), 1400px) !important; }
</style>
"""

_SIDEBAR_JS = """
<script>
(() => {
  // once per page load: reruns and page switches keep what the person chose
  if (window.innerWidth >= %(narrow)d || window.__tfliteStudioSidebarAuto) return;
  window.__tfliteStudioSidebarAuto = true;
  const collapse = (tries) => {
    const bar = document.querySelector('[data-testid="stSidebar"]');
    const btn = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (bar && bar.getAttribute("data-collapsed") === "true") return;
    if (bar && btn) { btn.click(); return; }
    if (tries > 0) window.setTimeout(() => collapse(tries - 1), 100);
  };
  collapse(50);
})();
</script>
"""

_SCROLL_JS = """
<div id="%(anchor)s" style="scroll-margin-top: 5rem"></div>
<script>
(() => {
  const go = () => {
    const el = document.getElementById("%(anchor)s");
    if (el) el.scrollIntoView({block: "start", behavior: "instant"});
  };
  for (const ms of [0, 150, 500, 1200]) window.setTimeout(go, ms);
})();
</script>
"""

_ID = re.compile(r"^[0-9a-f]{1,32}$")


def apply() -> None:
    """The shared CSS, and the narrow-screen sidebar (``studio.py``, every run)."""
    st.html(_CSS)
    with st.sidebar:
        st.html(_SIDEBAR_JS % {"narrow": NARROW_PX}, unsafe_allow_javascript=True)


def progress_anchor(job_id: str, *, scroll: bool) -> None:
    """A mark above a job's progress; ``scroll``: bring it into view now."""
    if not scroll or not _ID.match(job_id):
        return
    anchor = f"job-progress-{job_id}"
    st.html(_SCROLL_JS % {"anchor": anchor}, unsafe_allow_javascript=True)
