"""TensorFlow and Keras, imported in the background once the server has drawn its first page.

Importing them takes about 5 s on a 2-core CPU (4.8 s measured 2026-12-05), and only the pages that
build or run a network need them (Configure's model summary, Generate, Evaluate, Models' downloads).
The router starts this import after the first page of a server process has run, so the user reads that
page while it happens, and the first visit of Generate then finds TensorFlow loaded. A page that needs
TensorFlow while the import is still under way waits for it through Python's import lock: it is
imported once. The import holds the interpreter for most of its time, so any page drawn meanwhile waits
too (bench/first_render.py; docs/PERFORMANCE.md, section 4).

Only `keras` is imported here, and it imports TensorFlow itself: a page that imports `keras` or
`tensorflow` meanwhile then waits on the lock this thread holds for that module, and never holds
one this thread wants (two threads importing the two packages in opposite orders deadlock, and
Python breaks that by handing one of them a half-initialised module). It runs in the dashboard's
server only: a test process imports TensorFlow from its own thread at any moment.
"""

from __future__ import annotations

import importlib
import os
import threading

# The dashboard generates and evaluates in its own process: on a GPU it must not take the whole memory
# before the training jobs it starts (devices.configure_gpus does this for workers). TensorFlow reads it on import.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

THREAD_NAME = "preload-tensorflow"
MODULE = "keras"  # imports tensorflow, its backend

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
    try:
        importlib.import_module(MODULE)
    finally:
        _done.set()


def in_progress() -> bool:
    """Whether the background import has started and not yet ended."""
    return _thread is not None and not _done.is_set()


def wait(timeout: float) -> bool:
    """Wait for the background import to end; False when it has not ended within `timeout` seconds."""
    return _done.wait(timeout)
