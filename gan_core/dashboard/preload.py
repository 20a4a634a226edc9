"""TensorFlow and Keras, imported in the background once the server has drawn its first page, giving way to pages.

Importing them takes about 5 s on a 2-core CPU (4.8 s measured 2026-12-05), and only the pages that
build or run a network need them (Configure's model summary, Generate, Evaluate, Models' downloads).
The router starts this import after the first page of a server process has run, so the user reads that
page while it happens, and the first visit of Generate then finds TensorFlow loaded. A page that needs
TensorFlow while the import is still under way waits for it through Python's import lock: it is
imported once.

Two threads running Python share one interpreter lock, so a page drawn during a plain background
import took as long as the import (bench/first_render.py; docs/PERFORMANCE.md, section 4). The import
therefore gives way: while it runs, a finder first on `sys.meta_path` holds this thread, before each
module it is about to load, for as long as a page's script is running and not itself importing
(a page importing Keras waits on this thread's lock, so this thread must go on then), and for
`AFTER_PAGE_S` after, while the server sends what the page drew. What it
cannot give back is the time inside one C call, such as loading TensorFlow's shared library (about 1 s).
The waits end for good after `MAX_GIVEN_S` seconds in all, so a page that never ends cannot hold the
import back for ever.

Only `keras` is imported here, and it imports TensorFlow itself: a page that imports `keras` or
`tensorflow` meanwhile then waits on the lock this thread holds for that module, and never holds
one this thread wants (two threads importing the two packages in opposite orders deadlock, and
Python breaks that by handing one of them a half-initialised module). It runs in the dashboard's
server only: a test process imports TensorFlow from its own thread at any moment.
"""

from __future__ import annotations

import importlib
import importlib.abc
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
MAX_GIVEN_S = 30.0
POLL_S = 0.01
AFTER_PAGE_S = 0.5

_lock = threading.Lock()
_thread: threading.Thread | None = None
_done = threading.Event()


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
    finder = GiveWay(threading.get_ident(), pages_drawing)
    sys.meta_path.insert(0, finder)
    try:
        importlib.import_module(MODULE)
    finally:
        sys.meta_path.remove(finder)
        _done.set()


class GiveWay(importlib.abc.MetaPathFinder):
    """A finder that finds nothing: in one thread, it waits while `busy()` says another thread needs the interpreter,
    and `after_s` more after `busy()` was last true."""

    def __init__(
        self, thread_id: int, busy: Callable[[], bool], max_given_s: float = MAX_GIVEN_S, after_s: float = AFTER_PAGE_S,
    ) -> None:
        self.thread_id, self.busy, self.left_s, self.after_s = thread_id, busy, max_given_s, after_s
        self.last_busy = -float("inf")

    def find_spec(self, fullname, path, target=None):
        if threading.get_ident() == self.thread_id:
            self.give_way()
        return None

    def give_way(self) -> None:
        """Sleep while busy or just after, at most the seconds still left to give."""
        while self.left_s > 0 and self._busy_lately():
            time.sleep(POLL_S)
            self.left_s -= POLL_S

    def _busy_lately(self) -> bool:
        now = time.monotonic()
        if self.busy():
            self.last_busy = now
        return now - self.last_busy < self.after_s


def pages_drawing() -> bool:
    """Whether a page's script is running and not waiting in an import (which may be waiting for the background one)."""
    frames = sys._current_frames()
    return any(
        thread.name == PAGE_THREAD_NAME and thread.ident in frames and not _importing(frames[thread.ident])
        for thread in threading.enumerate()
    )


def _importing(frame) -> bool:
    """Whether a thread whose innermost frame is `frame` is inside an import statement."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def in_progress() -> bool:
    """Whether the background import has started and not yet ended."""
    return _thread is not None and not _done.is_set()


def wait(timeout: float) -> bool:
    """Wait for the background import to end; False when it has not ended within `timeout` seconds."""
    return _done.wait(timeout)
