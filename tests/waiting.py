"""Waiting for what another process (a training worker, the server, a browser) writes: poll until it holds."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 120, every: float = 0.2) -> T:
    """Poll `predicate` every `every` seconds until it returns something true, and return that; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
    return value


# One AppTest script run (`AppTest.from_file(..., default_timeout=APPTEST_TIMEOUT)`): a file's first run imports and
# builds cold, and in the full suite it shares 2 cores with the other xdist worker's subprocesses; 60 s timed out twice
# on fresh clones (test_page_configure at 61 s, test_divergence), 2026-12-07.
APPTEST_TIMEOUT = 120
