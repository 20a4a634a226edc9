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
It does not give way once the import has begun: it would then hold the import locks of Keras and
TensorFlow, and a page importing TensorFlow meanwhile (whose import imports Keras) would deadlock with it.

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

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()
_requested = threading.Event()  # a page waits for the import: begin it sooner


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
        importlib.import_module(MODULE)
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


def pages_running() -> bool:
    """Whether a page's script is running in this server (a thread Streamlit runs scripts in is alive)."""
    return any(thread.name == PAGE_THREAD_NAME for thread in threading.enumerate())


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
