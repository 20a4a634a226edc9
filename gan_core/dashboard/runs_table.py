"""The runs table of the Home page: one row per run folder, broken runs included."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from gan_core.config import RunConfig
from gan_core.errors import GanError
from gan_core.history_metrics import from_status, headline
from gan_core.store.jobs import job_status
from gan_core.store.runs import Run, RunStore

COLUMNS = (
    "run", "name", "dataset", "model", "loss", "status", "step", "started", "duration", "message",
)  # the families' headline metrics (e.g. G loss, D loss) come after "step"
RUN_PAGES = {  # label: (page, icon) of the links Home offers for the selected run
    "Train": ("pages/train.py", ":material/model_training:"),
    "Generate": ("pages/generate.py", ":material/auto_awesome:"),
    "Evaluate": ("pages/evaluate.py", ":material/fact_check:"),
    "Compare": ("pages/compare.py", ":material/compare_arrows:"),
    "Models": ("pages/models.py", ":material/download:"),
}


def format_seconds(seconds: float | None) -> str:
    """A duration as '42s', '3m 05s' or '2h 07m'; '' when unknown."""
    if seconds is None:
        return ""
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time(timestamp: float | None) -> str:
    """A Unix time as local 'YYYY-MM-DD HH:MM'; '' when unknown."""
    if not isinstance(timestamp, (int, float)):
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def model_label(config: RunConfig) -> str:
    """The family, with 'conditional' added for conditional runs."""
    return f"{config.family} conditional" if getattr(config, "conditional", False) else config.family


def step_label(status: dict[str, Any]) -> str:
    """'120/700', or '0/?' before the worker knows the total."""
    return f"{status.get('step', 0)}/{status.get('total_steps', '?')}"


def run_row(run: Run) -> dict[str, Any]:
    """One table row; a run whose config or status cannot be read gets status 'broken' and the reason."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row["run"] = run.id
    try:
        config = run.config()
        status = job_status(run)
    except GanError as exc:
        row.update(status="broken", message=str(exc))
        return row
    history = run.history_tail(1)
    last = history[-1] if history else {}
    row.update(
        {
            "name": config.name,
            "dataset": status.get("dataset") or config.dataset,
            "model": model_label(config),
            "loss": getattr(config, "loss", ""),
            "status": status["state"],
            "step": step_label(status),
            **{m.label: last.get(m.name) for m in headline(from_status(status))},
            "started": format_time(status.get("started") or status.get("created")),
            "duration": format_seconds(status.get("train_seconds")),
            "message": status.get("message", ""),
        }
    )
    return row


def runs_table(store: RunStore) -> pd.DataFrame:
    """All runs of the store, newest first, as a table for st.dataframe."""
    rows = [run_row(run) for run in store.list()]
    metric_columns = [key for row in rows for key in row if key not in COLUMNS]
    cut = COLUMNS.index("step") + 1
    return pd.DataFrame(rows, columns=[*COLUMNS[:cut], *dict.fromkeys(metric_columns), *COLUMNS[cut:]])


def run_exists(store: RunStore, run_id: str | None) -> bool:
    """True when run_id names a run folder in the store (an invalid id is simply absent)."""
    if not run_id:
        return False
    try:
        store.get(run_id)
    except GanError:
        return False
    return True
