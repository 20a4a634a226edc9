"""What every dashboard page shares: the run store, the selected run, and cheap reruns.

The selected run lives in `st.session_state["run_id"]` (per browser session) and can come
from the `?run=` query parameter, so links between pages carry it.

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

import streamlit as st

from gan_core.runs import RunStore, default_runs_dir

RUN_KEY = "run_id"


_frozen = False


def get_store() -> RunStore:
    """The run store under $GAN_RUNS_DIR (default ./runs); every page calls it first (see freeze_startup_heap)."""
    freeze_startup_heap()
    return RunStore(default_runs_dir())


def freeze_startup_heap() -> bool:
    """Once TensorFlow is imported, move every object alive now out of the collector's reach (once per process)."""
    global _frozen
    if _frozen or "tensorflow" not in sys.modules:
        return False
    gc.collect()
    gc.freeze()
    _frozen = True
    return True


def selected_run_id() -> str | None:
    """The run this session is looking at: session state first, then ?run= in the URL."""
    run_id = st.session_state.get(RUN_KEY) or st.query_params.get("run")
    return run_id or None


def select_run(run_id: str | None) -> None:
    """Remember the run for this session and put it in the URL."""
    st.session_state[RUN_KEY] = run_id
    if run_id:
        st.query_params["run"] = run_id
    elif "run" in st.query_params:
        del st.query_params["run"]
