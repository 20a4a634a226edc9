"""What every dashboard page shares: the pages and their sections, the run store, the selected run and
its picker, links that carry it, and cheap reruns.

`app.py` is a router: `st.navigation(navigation_pages())` declares the pages of `PAGES` in their
sections and runs the open one. The selected run lives in `st.session_state["run_id"]` (per browser
session) and in the `?run=` query parameter, so a link or a shared URL opens the same run: `?run=`
wins when the URL has it, and the router puts the session's run back into the URL after sidebar
navigation (which drops query parameters). `run_picker` is the one widget that shows and changes it.

After every rerun Streamlit runs a full garbage collection, and, once Keras is imported,
`keras.backend.clear_session()`, which runs another. With TensorFlow loaded that is ~470k
objects and ~240 ms each: the Train page's 2-second refresh then cost the server 0.3 of a
core, taken from the training job on a 2-core machine (bench/dashboard_overhead.py).
`get_store` therefore freezes the objects alive when TensorFlow is first seen, once per
server process: they are mostly modules, live for the whole process anyway, and are no
longer traversed by those collections.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from gan_core.dashboard import preload

if TYPE_CHECKING:
    from gan_core.store.runs import RunStore

READY_POLL_S = 1.0  # how often a page waiting for TensorFlow looks whether the import has ended
RUN_KEY = "run_id"
RUN_PARAM = "run"


@dataclass(frozen=True)
class PageSpec:
    """One page of the dashboard: its file (relative to app.py), sidebar label and URL path."""

    path: str
    title: str
    url_path: str


# Home is served at the root URL, so its url_path is "". Every other file is named for its url_path (see start_page).
HOME = PageSpec("pages/home.py", "Home", "")
# No icons: a Material icon is a ligature, so its name would be part of each sidebar label's text.
PAGES: dict[str, tuple[PageSpec, ...]] = {
    "Experiment": (
        HOME,
        PageSpec("pages/configure.py", "Configure", "configure"),
        PageSpec("pages/train.py", "Train", "train"),
        PageSpec("pages/sweep.py", "Sweep", "sweep"),
    ),
    "Results": (
        PageSpec("pages/generate.py", "Generate", "generate"),
        PageSpec("pages/evaluate.py", "Evaluate", "evaluate"),
        PageSpec("pages/compare.py", "Compare", "compare"),
        PageSpec("pages/models.py", "Models", "models"),
    ),
}


def page_specs() -> list[PageSpec]:
    """Every page in sidebar order, Home first."""
    return [spec for specs in PAGES.values() for spec in specs]


def navigation_pages() -> dict[str, list[st.Page]]:
    """The argument of `st.navigation`: one `st.Page` per spec, in its section; Home is the default (served at /)."""
    return {
        section: [
            st.Page(spec.path, title=spec.title, url_path=spec.url_path, default=spec is HOME)
            for spec in specs
        ]
        for section, specs in PAGES.items()
    }


def route() -> st.Page:
    """What the router (app.py) does on every rerun: wide layout, the pages in their sections, ?run= in step; the open page."""
    st.set_page_config(layout="wide")
    page = st.navigation(navigation_pages())
    sync_selected_run()
    return page


def run_page(page: st.Page) -> None:
    """Run the open page, then start importing TensorFlow if this server process has not yet (see preload).

    A page ended by `st.stop()` may not come back here (under AppTest it does not), so the import
    can start only after the next page that runs to its end.
    """
    try:
        page.run()
    finally:
        preload.start()


def start_page(title: str) -> None:
    """Every page's first call: route a run that bypassed the router (and start the background import, as the router
    would), then write the page's title.

    The page files live in pages/, the folder of Streamlit's older multipage mode. Until a server
    process has run st.navigation once, Streamlit runs a page URL such as /train?run=ID the old way:
    it finds pages/train.py by its file name and runs it without app.py. Routing here declares the
    router's pages (which ends that mode for the process) and selects the run, and the page goes on.
    Because each file is named for its url_path, that first session finds its page: no "Page not found".
    Declaring the pages makes the app's main script the active one, which widget ids include, so the
    page's own hash is put back: its widgets keep the ids they get under the router, and the first
    click of that session is not lost.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

    if getattr(PagesManager, "uses_pages_directory", False):
        preload.start()  # as the router does (run_page); its thread waits until no page's script runs
        page_hash = ThreadState.get().active_script_hash
        route()
        ThreadState.update(active_script_hash=page_hash)
    st.title(title)


_frozen = False


def get_store() -> RunStore:
    """The run store under $GAN_RUNS_DIR (default ./runs); every page calls it first (see freeze_startup_heap)."""
    from gan_core.store.runs import RunStore, default_runs_dir  # here, so the router (app.py) starts without pandas

    freeze_startup_heap()
    return RunStore(default_runs_dir())


def freeze_startup_heap() -> bool:
    """Once TensorFlow is imported, move every object alive now out of the collector's reach (once per process)."""
    global _frozen
    if _frozen or "tensorflow" not in sys.modules or preload.in_progress():
        return False
    gc.collect()
    gc.freeze()
    _frozen = True
    return True


def selected_run_id() -> str | None:
    """The run this session is looking at: ?run= in the URL first (a link or a shared URL), then session state."""
    run_id = st.query_params.get(RUN_PARAM) or st.session_state.get(RUN_KEY)
    return run_id or None


def select_run(run_id: str | None) -> None:
    """Remember the run for this session and put it in the URL."""
    st.session_state[RUN_KEY] = run_id
    if run_id:
        st.query_params[RUN_PARAM] = run_id
    elif RUN_PARAM in st.query_params:
        del st.query_params[RUN_PARAM]


def sync_selected_run() -> str | None:
    """Make session state and ?run= agree before a page runs (the router calls it on every rerun).

    A URL's ?run= selects that run for the session; when the URL has none (sidebar navigation drops
    query parameters) the session's run is put back into it, so every page's URL names its run.
    """
    run_id = selected_run_id()
    if run_id and (st.session_state.get(RUN_KEY) != run_id or st.query_params.get(RUN_PARAM) != run_id):
        select_run(run_id)
    return run_id


def _picked(key: str) -> None:
    select_run(st.session_state[key])


def run_picker(run_ids: Sequence[str], *, key: str, label: str = "Run") -> str | None:
    """The run selectbox every single-run page shares; None when run_ids is empty.

    It opens on the selected run (?run= or this session's), or on the first of run_ids when that
    run is not among them, and what it shows is the selected run: picking another one selects it
    for every page (session state and ?run=). `key` is the widget's key, one per page.
    """
    run_ids = list(run_ids)
    if not run_ids:
        return None
    wanted = selected_run_id()
    st.session_state[key] = wanted if wanted in run_ids else run_ids[0]
    run_id = st.selectbox(label, run_ids, key=key, on_change=_picked, args=(key,))
    if run_id != st.session_state.get(RUN_KEY) or st.query_params.get(RUN_PARAM) != run_id:
        select_run(run_id)
    return run_id


def page_link(page: str, label: str, icon: str | None = None) -> None:
    """`st.page_link` to a page file that carries the selected run as ?run=, when one is selected."""
    run_id = selected_run_id()
    st.page_link(page, label=label, icon=icon, query_params={RUN_PARAM: run_id} if run_id else None)


def score_formats() -> dict:
    """Number formats of the image-to-image score tables (Generate's Pairs view, Evaluate)."""
    from gan_core.evaluation.columns import KEPT, PSNR, SSIM

    number = st.column_config.NumberColumn
    return {PSNR: number(format="%.2f"), SSIM: number(format="%.3f"), KEPT: number(format="%.1f")}


def tensorflow_ready(purpose: str) -> bool:
    """Whether the page may use TensorFlow now. While the server's background import runs (see preload), it asks for
    it and draws a note, "Loading TensorFlow to {purpose}", that reruns the page once the import has ended: the page
    draws what needs no TensorFlow meanwhile rather than waiting for it."""
    if preload.ready():
        return True
    preload.request()
    _rerun_when_ready(purpose)
    return False


@st.fragment(run_every=READY_POLL_S)
def _rerun_when_ready(purpose: str) -> None:
    if preload.ready():
        st.rerun()
    st.info(f"Loading TensorFlow to {purpose} (a few seconds after the server starts)…")
