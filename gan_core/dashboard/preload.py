"""TensorFlow and Keras, imported in the background once the server has drawn its first page and no page is running.

Importing them takes about 5 s on a 2-core CPU (4.8 s measured 2026-12-05), and only the pages that
build or run a network need them (Configure's model summary, Generate, Evaluate, Models' downloads).
The router starts this thread after the first page of a server process has run, so the user reads that
page while the import happens, and the first visit of Generate then finds TensorFlow loaded. A page that
needs TensorFlow while the import is under way waits for it through Python's import lock: it is imported once.

Two threads running Python share one interpreter lock: started at once, the import held back the
server's last messages of the page that started it (Home's script ended 5.4 s after navigation, its
title having been drawn at 1.4 s; bench/first_render.py, docs/PERFORMANCE.md section 4). So the thread
first waits until no page's script has run for `AFTER_PAGE_S` (at most `MAX_WAIT_S`), holding no lock: a user
who opens the next page at once (the bench does) gets it drawn before the import begins. A page that
needs TensorFlow for a part of itself draws the rest first, asks for the import (`request`: it then begins
once no page's script has run for `AFTER_ASKED_S`) and polls `ready()` for that part (Configure's model
summary): importing TensorFlow in a page's own script thread took 8-10 s against about 5 s here.

Once begun, the import gives way to pages (`import_giving_way`, `PagesBusy`): before each `import` statement
that loads one of TensorFlow's modules it waits while a page's script runs and `GIVE_WAY_AFTER_S` after. A
page importing pandas and plotly took 1.3-1.9 s beside the import against 0.3-0.6 s alone, and 0.26 s beside
an import that gives way: pure Python work runs at full speed beside the import, but each of an import's many
file-system calls gives up the interpreter lock and must wait for the importing thread to hand it back. While
waiting, the import holds the locks of the modules it is inside (Keras, TensorFlow), so it goes on as soon as a
page's script waits for one of them (`pages_wait_for`), and after `GIVE_WAY_MAX_S` of waiting in all.

Only `keras` is imported here, and it imports TensorFlow itself: a page that imports `keras` or
`tensorflow` meanwhile then waits on the lock this thread holds for that module, and never holds
one this thread wants (two threads importing the two packages in opposite orders deadlock, and
Python breaks that by handing one of them a half-initialised module). It runs in the dashboard's
server only: a test process imports TensorFlow from its own thread at any moment (AppTest's runtime
would start it too, so the suite's conftest turns `start` off).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections.abc import Callable

# The dashboard generates and evaluates in its own process: on a GPU it must not take the whole memory
# before the training jobs it starts (devices.configure_gpus does this for workers). TensorFlow reads it on import.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

THREAD_NAME = "preload-tensorflow"
MODULE = "keras"  # imports tensorflow, its backend
PAGE_THREAD_NAME = "ScriptRunner.scriptThread"  # the thread Streamlit runs a page's script in
MAX_WAIT_S = 30.0
POLL_S = 0.01
AFTER_PAGE_S = 2.0
AFTER_ASKED_S = 0.5  # the server still sends the page's last messages after its script ends: the import would hold them back
GIVE_WAY_AFTER_S = 0.3  # after a page's script has ended the import still waits this long: the server sends the page's last messages
GIVE_WAY_MAX_S = 5.0  # the most the import waits for pages in all: a page blocked on a lock it holds waits no longer than this

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_requested = threading.Event()  # a page waits for the import: begin it sooner
_giving_way: dict[int, "_Budget"] = {}  # thread id -> its budget, while import_giving_way runs in that thread
_hooked = False


def start() -> bool:
    """Start the background import, once per server process; True when this call started it."""
    global _thread
    from streamlit import runtime

    with _lock:
        if _thread is not None or not runtime.exists():
            return False
        _thread = threading.Thread(target=_import, name=THREAD_NAME, daemon=True)
        _thread.start()
        return True


def _import() -> None:
    try:
        wait_until_idle(pages_running, asked=_requested)
        import_giving_way(MODULE, PagesBusy(threading.get_ident()))
    finally:
        _done.set()


def wait_until_idle(
    busy: Callable[[], bool], after_s: float = AFTER_PAGE_S, max_s: float = MAX_WAIT_S,
    asked: threading.Event | None = None, after_asked_s: float = AFTER_ASKED_S,
) -> None:
    """Return once `busy()` has been false for `after_s` seconds (`after_asked_s` once `asked` is set),
    or after `max_s` seconds in all."""
    started = last_busy = time.monotonic()
    while (now := time.monotonic()) - started < max_s:
        idle_needed = after_asked_s if asked is not None and asked.is_set() else after_s
        if busy():
            last_busy = now
        elif now - last_busy >= idle_needed:
            return
        time.sleep(POLL_S)


def import_giving_way(module: str, busy: Callable[[], bool], max_wait_s: float = GIVE_WAY_MAX_S) -> None:
    """Import `module`; before each `import` statement its modules run, wait while `busy()`, at most `max_wait_s` in all.

    The wait happens in an audit hook on the "import" event, which CPython raises before it looks for a module
    that is not loaded yet, holding no import lock but those of the modules whose code is running. (A finder on
    `sys.meta_path` would wait holding the global import lock, so every page's imports would wait too.)
    """
    global _hooked
    with _lock:
        if not _hooked:
            sys.addaudithook(_on_audit_event)  # hooks cannot be removed: it does nothing once no import gives way
            _hooked = True
    _giving_way[threading.get_ident()] = _Budget(busy, max_wait_s)
    try:
        importlib.import_module(module)
    finally:
        del _giving_way[threading.get_ident()]


class PagesBusy:
    """Whether the background import (thread `importer`) should wait: a page's script runs or ended under
    `GIVE_WAY_AFTER_S` ago (the server still sends its last messages: the import would hold them back), and no
    page's script waits for a lock the import holds.

    Pages that asked for the import count too: a page's script ending at once with the import going on again
    took as long as before (Configure, Generate, Evaluate: 4.7-8.0 s on a fresh server, against 1.7-2.8 s so).
    The cost: a page waiting for the import polls every second, and each poll holds the import back for a moment.
    """

    def __init__(self, importer: int) -> None:
        self.importer = importer
        self.last_seen = float("-inf")

    def __call__(self) -> bool:
        if pages_running():
            self.last_seen = time.monotonic()
        return time.monotonic() - self.last_seen < GIVE_WAY_AFTER_S and not pages_wait_for(self.importer)


class _Budget:
    """Waits while `busy()`, for at most `left` seconds in all."""

    def __init__(self, busy: Callable[[], bool], left: float) -> None:
        self.busy, self.left = busy, left

    def wait(self) -> None:
        if self.left <= 0:
            return
        started = time.monotonic()
        while self.busy() and time.monotonic() - started < self.left:
            time.sleep(POLL_S)
        self.left -= time.monotonic() - started


def _on_audit_event(event: str, args: tuple) -> None:
    if event == "import" and _giving_way:
        budget = _giving_way.get(threading.get_ident())
        if budget is not None:
            budget.wait()


def pages_wait_for(thread_id: int) -> bool:
    """Whether a page's script waits, directly or through other threads, for a module lock that thread `thread_id` holds."""
    from importlib import _bootstrap

    blocking = getattr(_bootstrap, "_blocking_on", None)  # CPython's: thread id -> the module lock(s) it waits for
    if blocking is None:
        return True  # cannot tell: never keep a page waiting
    for waiter in page_threads():
        seen = set()
        while waiter is not None and waiter not in seen:
            seen.add(waiter)
            locks = blocking.get(waiter)  # one lock (CPython 3.11) or a list of them (3.12+)
            owners = [lock.owner for lock in (locks if isinstance(locks, list) else [locks] if locks is not None else [])]
            if thread_id in owners:
                return True
            waiter = owners[0] if owners else None
    return False


def page_threads() -> list[int | None]:
    """The ids of the threads Streamlit runs pages' scripts in, alive now."""
    return [thread.ident for thread in threading.enumerate() if thread.name == PAGE_THREAD_NAME]


def pages_running() -> bool:
    """Whether a page's script is running in this server (a thread Streamlit runs scripts in is alive)."""
    return bool(page_threads())


def request() -> None:
    """Have the import begin once no page's script has run for `AFTER_ASKED_S` rather than `AFTER_PAGE_S` (a page waits for it)."""
    _requested.set()


def ready() -> bool:
    """Whether a page may import TensorFlow now without waiting: outside a server always, in one once Keras is imported
    (or the import has ended without it: the page's own import then says why)."""
    from streamlit import runtime

    module = sys.modules.get(MODULE)
    imported = module is not None and not getattr(module.__spec__, "_initializing", False)  # the import system's own flag
    return imported or _done.is_set() or not runtime.exists()


def in_progress() -> bool:
    """Whether the background import has started and not yet ended."""
    return _thread is not None and not _done.is_set()


def wait(timeout: float) -> bool:
    """Wait for the background import to end; False when it has not ended within `timeout` seconds."""
    return _done.wait(timeout)
