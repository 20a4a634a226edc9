"""The router (app.py) and the shared run picker: the eight pages in their sections, Home first, and the
selected run kept in session state and ?run= across pages, links and the picker."""

import importlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from gan_core.config import RunConfig
from gan_core.dashboard import common as ui_common
from gan_core.dashboard import preload
from gan_core.store.runs import RunStore
from tests.waiting import APPTEST_TIMEOUT

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TITLES = ["Home", "Configure", "Train", "Sweep", "Generate", "Evaluate", "Compare", "Models"]
TINY = RunConfig(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


@pytest.fixture
def runs(store):
    """Three stopped, untrained runs, oldest first (the pages list the newest first)."""
    made = []
    for name in ("a", "b", "c"):
        run = store.create(TINY.replace(name=name))
        run.update_status(state="stopped", message="Stopped before training started.")
        made.append(run.id)
        time.sleep(0.01)
    return made


def open_app(run_id: str | None = None, page: str | None = None) -> AppTest:
    """A new browser session on `page` (Home when None), opened at ?run=run_id when given.

    AppTest finds a page of st.navigation only after a first run, so the session starts on Home
    with an empty URL, as a fresh session would, and then goes to the page with ?run= set.
    """
    at = AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT).run()
    assert not at.exception
    if run_id:
        at.query_params["run"] = run_id
    if page:
        at.switch_page(page)
    return at.run()


def test_the_page_list_has_eight_pages_in_sections_home_first():
    specs = ui_common.page_specs()
    assert [spec.title for spec in specs] == TITLES
    assert [spec.url_path for spec in specs] == ["", "configure", "train", "sweep", "generate", "evaluate", "compare", "models"]
    assert specs[0] is ui_common.HOME and specs[0].path == "pages/home.py"
    assert list(ui_common.PAGES) == ["Experiment", "Results"]
    root = Path(APP).parent
    assert all((root / spec.path).is_file() for spec in specs)
    assert sorted(spec.path for spec in specs) == sorted(f"pages/{p.name}" for p in (root / "pages").glob("*.py"))
    # Each file is named for its URL, so Streamlit's older pages/ folder scan gives it the same path (see app.py).
    assert all(spec.path == f"pages/{spec.url_path or 'home'}.py" for spec in specs)


def test_the_router_declares_the_eight_pages_with_home_the_default(store, monkeypatch):
    declared = []
    real_navigation = streamlit.navigation

    def spy(pages, **kwargs):
        declared.append(pages)
        return real_navigation(pages, **kwargs)

    monkeypatch.setattr(streamlit, "navigation", spy)
    at = AppTest.from_file(APP, default_timeout=APPTEST_TIMEOUT).run()
    assert not at.exception and at.title[0].value == "GAN Workbench"  # Home runs at the root URL
    (sections,) = declared
    assert list(sections) == ["Experiment", "Results"]
    pages = [page for section in sections.values() for page in section]
    assert [page.title for page in pages] == TITLES
    assert [page.url_path for page in pages] == ["", "configure", "train", "sweep", "generate", "evaluate", "compare", "models"]
    assert [page.visibility for page in pages] == ["visible"] * 8


def test_a_url_with_run_selects_that_run_on_each_single_run_page(runs):
    oldest = runs[0]  # not the page's default (the newest)
    for page in ("pages/train.py", "pages/models.py"):
        at = open_app(oldest, page)
        assert not at.exception, page
        assert at.selectbox[0].label == "Run" and at.selectbox[0].value == oldest, page
        assert at.session_state["run_id"] == oldest and at.query_params["run"] == oldest


def test_without_a_selection_the_picker_shows_the_newest_run_and_puts_it_in_the_url(runs):
    at = open_app(page="pages/train.py")
    assert at.selectbox[0].value == runs[-1]
    assert at.query_params["run"] == runs[-1] and at.session_state["run_id"] == runs[-1]


def test_picking_a_run_updates_the_url_and_the_session(runs):
    at = open_app(runs[0], "pages/train.py")
    at.selectbox[0].select(runs[1]).run()
    assert not at.exception
    assert (at.selectbox[0].value, at.session_state["run_id"], at.query_params["run"]) == (runs[1],) * 3
    at.run()  # a rerun keeps the choice
    assert at.selectbox[0].value == runs[1]


def test_sidebar_navigation_keeps_the_run_and_puts_it_back_in_the_url(runs):
    at = open_app(runs[0], "pages/train.py")
    at.selectbox[0].select(runs[1]).run()
    for page in ("pages/models.py", "pages/home.py", "pages/compare.py", "pages/train.py"):
        at.query_params.clear()  # a click in the sidebar opens the page without query parameters
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.query_params["run"] == runs[1] and at.session_state["run_id"] == runs[1], page
    assert at.selectbox[0].value == runs[1]


def test_a_link_with_another_run_wins_over_the_session(runs):
    """A page link or a pasted URL names a run: it is selected even when the session had another one."""
    at = open_app(runs[0], "pages/models.py")
    at.query_params["run"] = runs[2]
    at.switch_page("pages/train.py").run()
    assert at.selectbox[0].value == runs[2] and at.session_state["run_id"] == runs[2]


def test_compare_includes_the_selected_run(runs):
    at = open_app(runs[0], "pages/compare.py")
    assert not at.exception
    assert at.multiselect[0].value[0] == runs[0] and len(at.multiselect[0].value) == 2


def test_home_selects_the_run_of_the_url_and_links_carry_it(runs):
    at = open_app(runs[1])
    assert not at.exception
    assert at.session_state["run_id"] == runs[1]
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert list(links) == ["New experiment", "Train", "Generate", "Evaluate", "Compare", "Models"]
    assert {label: (link.page, link.query_string) for label, link in links.items()} == {
        "New experiment": ("configure", f"run={runs[1]}"),
        **{label: (label.lower(), f"run={runs[1]}") for label in list(links)[1:]},
    }


def test_page_links_carry_the_selected_run(store):
    """The Generate page's link to Train (no checkpoint yet) keeps the run selected on Home."""
    run = store.create(TINY)
    run.update_status(state="queued")
    at = open_app(run.id, "pages/generate.py")
    assert not at.exception
    (link,) = at.get("page_link")
    assert (link.proto.label, link.proto.page, link.proto.query_string) == ("Train", "train", f"run={run.id}")



PRELOAD_SCRIPT = """
import sys, threading, time

from streamlit import runtime
from gan_core.dashboard import preload

assert not preload.start() and preload.ready(), "no server runtime: a test process imports TensorFlow itself"
print("growth", __import__("os").environ["TF_FORCE_GPU_ALLOW_GROWTH"])
runtime.exists = lambda: True  # as in `streamlit run`
drawn = threading.Event()
page = threading.Thread(target=drawn.wait, name=preload.PAGE_THREAD_NAME)  # a page's script, running
page.start()
print("started", preload.start(), preload.start())
time.sleep(1.5)
print("held", "tensorflow" not in sys.modules and not preload.ready())  # an import beside the page would have begun by now
drawn.set()
print("ended", preload.wait(120), preload.ready(), "keras" in sys.modules and "tensorflow" in sys.modules)
"""


def test_the_server_imports_tensorflow_in_the_background_once(store):
    """In a fresh process: only a server process (a Streamlit runtime) starts the import, once; it loads Keras and TensorFlow.

    It starts only once no page's script has run for a while; `ready()` says when a page may use TensorFlow without waiting.
    """
    env = {k: v for k, v in os.environ.items() if k != "TF_FORCE_GPU_ALLOW_GROWTH"}  # conftest sets it for the suite
    result = subprocess.run(
        [sys.executable, "-c", PRELOAD_SCRIPT], capture_output=True, text=True, timeout=300, cwd=Path(APP).parent, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.startswith(("growth", "started", "held", "ended")))
    assert lines == {"growth": "true", "started": "True False", "held": "True", "ended": "True True True"}  # growth: a GPU is shared with the jobs


def test_the_router_starts_the_background_import_after_the_page_has_run(store, monkeypatch):
    events = []
    monkeypatch.setattr(ui_common.preload, "start", lambda: events.append("preload"))
    real_title = streamlit.title
    monkeypatch.setattr(streamlit, "title", lambda *a, **k: (events.append("title"), real_title(*a, **k))[1])
    open_app()  # Home, run twice
    assert events == ["title", "preload"] * 2


def test_a_page_opened_without_the_router_starts_the_import_as_the_router_would(store, monkeypatch):
    """On a fresh server a page opened by its URL runs the old way, without app.py (start_page routes it): it starts the
    import as run_page does. Without that, Configure's "Loading TensorFlow" note, opened so, waited for ever (seen in Chromium)."""
    from streamlit.runtime import pages_manager

    class OldMode:  # what start_page reads: Streamlit's old pages/ mode (AppTest itself runs without it)
        uses_pages_directory = True

    started = []
    monkeypatch.setattr(pages_manager, "PagesManager", OldMode)
    monkeypatch.setattr(ui_common, "route", lambda: None)  # routing from pages/ is the browser tests' (AppTest finds no home.py)
    monkeypatch.setattr(ui_common.preload, "start", lambda: started.append("start") or True)
    AppTest.from_file(str(Path(APP).parent / "pages" / "train.py"), default_timeout=APPTEST_TIMEOUT).run()  # its page links need the real routing
    assert started == ["start"]


def test_the_background_import_waits_for_pages_to_be_idle_for_a_while_and_not_for_ever():
    """It starts once busy() has been false for after_s, and after max_s whatever busy() says."""
    calls = []
    started = time.perf_counter()
    preload.wait_until_idle(lambda: calls.append(1) or len(calls) < 3, after_s=0.2)
    assert len(calls) >= 3 and time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    preload.wait_until_idle(lambda: True, after_s=0.2, max_s=0.3)
    assert 0.3 <= time.perf_counter() - started < 2
    asked = threading.Event()
    calls.clear()
    waiting = threading.Thread(target=preload.wait_until_idle, args=(lambda: calls.append(1) or len(calls) < 3, 60, 60, asked, 0.2))
    waiting.start()
    time.sleep(0.5)
    assert waiting.is_alive()  # idle, but not yet for 60 s
    asked.set()
    waiting.join(1)
    assert not waiting.is_alive()  # asked: idle for 0.2 s is enough


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A fresh package of two modules, `giveway_pkg` and `giveway_pkg.part`, removed from sys.modules afterwards."""
    folder = tmp_path / "giveway_pkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("import giveway_pkg.part\n")
    (folder / "part.py").write_text("VALUE = 1\n")
    (tmp_path / "giveway_other.py").write_text("import giveway_pkg.part\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "giveway_pkg"
    for name in ("giveway_pkg", "giveway_pkg.part", "giveway_other"):
        sys.modules.pop(name, None)


def test_the_background_import_gives_way_to_a_running_page_between_modules(package):
    """While busy() (a page's script runs) its import statements wait; once idle it goes on. Its waits end after max_wait_s in all."""
    busy = threading.Event()
    busy.set()
    importing = threading.Thread(target=preload.import_giving_way, args=(package, busy.is_set, 60))
    importing.start()
    time.sleep(0.5)
    assert f"{package}.part" not in sys.modules and importing.is_alive()
    busy.clear()
    importing.join(10)
    assert sys.modules[package].part.VALUE == 1
    for name in (package, f"{package}.part"):
        sys.modules.pop(name)
    started = time.perf_counter()
    preload.import_giving_way(package, lambda: True, max_wait_s=0.4)
    assert 0.4 <= time.perf_counter() - started < 0.75 and sys.modules[package].part.VALUE == 1
    started = time.perf_counter()
    importlib.import_module("giveway_other")  # no import gives way now: the audit hook, which stays, does nothing
    assert time.perf_counter() - started < 0.2


def test_a_page_that_imports_a_module_the_background_import_holds_waits_no_longer_than_the_import(package):
    """The import waits inside the package (at its import statement) holding its lock; a page's script importing it meanwhile waits on
    that lock, which ends the import's wait (preload.pages_wait_for), so neither waits for ever. A page's script that has
    just ended still holds the import back for a moment (its last messages are being sent)."""
    ended = threading.Event()
    took = []

    def page_script():
        time.sleep(0.5)  # the import has begun and waits for this page inside the package, holding its lock
        started = time.perf_counter()
        importlib.import_module(package)
        took.append(time.perf_counter() - started)
        ended.wait(10)

    page = threading.Thread(target=page_script, name=preload.PAGE_THREAD_NAME)
    page.start()
    preload.import_giving_way(package, preload.PagesBusy(threading.get_ident()), max_wait_s=60)  # as the server's import
    ended.set()
    page.join(10)
    assert took and took[0] < 5 and sys.modules[package].part.VALUE == 1
    busy = preload.PagesBusy(threading.get_ident())
    assert not busy()  # no page has run
    page = threading.Thread(target=time.sleep, args=(0.2,), name=preload.PAGE_THREAD_NAME)
    page.start()
    assert busy()
    page.join()
    assert busy()  # just ended
    time.sleep(preload.GIVE_WAY_AFTER_S)
    assert not busy()
