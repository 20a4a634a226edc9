"""What every dashboard page shares: the run store and the selected run.

The selected run lives in `st.session_state["run_id"]` (per browser session) and can come
from the `?run=` query parameter, so links between pages carry it.
"""

from __future__ import annotations

import streamlit as st

from gan_core.runs import RunStore, default_runs_dir

RUN_KEY = "run_id"


def get_store() -> RunStore:
    """The run store under $GAN_RUNS_DIR (default ./runs)."""
    return RunStore(default_runs_dir())


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
