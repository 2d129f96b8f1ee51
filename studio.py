"""The Streamlit pages of TFLite Studio (``app.py`` serves this script).

Page config, navigation over ``pages/`` and the one error handler: every page
runs inside ``ui.errors.run_page``, so an uncaught exception shows a plain
message (the traceback goes to the server log only). Convert lives at
``/convert``; ``/`` opens it (a link's ``?job=`` goes along). The sidebar
says how busy the server is, kept current while jobs run.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.server.settings import load_settings, sandbox_warning
from ui import layout
from ui.branding import app_icon
from ui.errors import run_page
from ui.format import md
from ui.sidebar import show_server_line

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


convert = _page("convert.py", "Convert", ":material/upload_file:", "convert")


def _home() -> None:
    """``/``: the Convert page, with the link's query (``?job=``)."""
    st.switch_page(convert, query_params=st.query_params.to_dict())


pages = [
    st.Page(_home, title="TFLite Studio", url_path="home", default=True, visibility="hidden"),
    convert,
    _page("inspect.py", "Inspect", ":material/query_stats:", "inspect"),
    _page("compare.py", "Compare", ":material/compare_arrows:", "compare"),
    _page("history.py", "History", ":material/history:", "history"),
    _page("guide.py", "Guide", ":material/menu_book:", "guide"),
]
# pages that come with later features, listed once their files exist
for _file, _title, _icon in (
    ("optimize.py", "Optimize", ":material/tune:"),
    ("deploy.py", "Deploy", ":material/rocket_launch:"),
):
    if (PAGES / _file).is_file():
        pages.insert(-2, _page(_file, _title, _icon, _file.removesuffix(".py")))
page = st.navigation(pages, position="sidebar")  # first: the titles show before anything else

with st.sidebar:
    st.markdown("### :material/memory: TFLite Studio")
    st.caption(
        "TensorFlow → TensorFlow Lite, in the browser. Conversions run on this "
        "server in their own process; a job keeps running if you close the tab."
    )
    show_server_line()
layout.apply()

_no_sandbox = sandbox_warning(load_settings())
if _no_sandbox:  # local single-user mode only: a shared server refuses to start
    st.warning(
        "**This server runs uploaded models without a sandbox.** Use it only for "
        "your own models. " + md(_no_sandbox.split(". ", 1)[-1]),
        icon=":material/gpp_maybe:",
    )
run_page(page)
