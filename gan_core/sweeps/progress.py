"""What a sweep is doing, read from its study and its trials' runs: the state line, the trials table, the best trial."""

from __future__ import annotations

from typing import Any

import pandas as pd

from gan_core.errors import GanError
from gan_core.store import jobs
from gan_core.store.runs import RunStore
from gan_core.sweeps.store import Sweep, open_study
from gan_core.sweeps.worker import counted


def shown_trials(study) -> list:
    """The trials a user sees: all but those drawn past the budget or replaced by a retry."""
    return [t for t in study.get_trials(deepcopy=False) if counted(t)]


def best_trial(study) -> Any | None:
    from optuna.trial import TrialState

    return study.best_trial if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) else None


def sweep_state(sweep: Sweep, study) -> str:
    """finished, running, stopping, stopped, or paused (trials left and no worker)."""
    from optuna.trial import TrialState

    trials = shown_trials(study)
    ended = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    if len(ended) >= sweep.spec().planned_trials():
        return "finished"
    workers = sweep.live_workers()
    if sweep.stop_requested():
        return "stopping" if workers else "stopped"
    return "running" if workers else "paused"


def trials_frame(sweep: Sweep, study, store: RunStore) -> pd.DataFrame:
    """One row per trial: its state (live from its run while it trains), objective, params, run and any error."""
    spec = sweep.spec()
    rows = []
    for trial in shown_trials(study):
        run_id = trial.user_attrs.get("run_id", "")
        row = {"trial": trial.number, "state": _trial_state(trial, run_id, store), spec.objective: trial.value}
        row |= {d.field: trial.params.get(d.field) for d in spec.dimensions}
        row |= {"run": run_id, "error": trial.user_attrs.get("error", "")}
        rows.append(row)
    columns = ["trial", "state", spec.objective, *(d.field for d in spec.dimensions), "run", "error"]
    return pd.DataFrame(rows, columns=columns)


def _trial_state(trial, run_id: str, store: RunStore) -> str:
    name = trial.state.name.lower()
    if name != "running" or not run_id:
        return {"complete": "complete", "fail": "failed", "waiting": "waiting", "running": "starting"}.get(name, name)
    try:
        view = jobs.job_state(store.get(run_id))
    except GanError:
        return "running (run not on this machine)"
    retries = trial.user_attrs.get("retries")
    retried = f", retry {retries}" if retries else ""
    return f"{view.state} {view.step}/{view.total_steps or '?'}{retried}" if view.state == "running" else f"{view.state}{retried}"


def sweep_line(sweep: Sweep) -> str:
    """One line for `sweeps`: id, state, trials ended of planned, best value and trial."""
    try:
        spec, study = sweep.spec(), open_study(sweep)
    except GanError as exc:
        return f"{sweep.id:<44} broken    {exc}"
    trials = shown_trials(study)
    ended = sum(t.state.name in ("COMPLETE", "FAIL") for t in trials)
    best = best_trial(study)
    best_text = f"best #{best.number} {spec.objective}={best.value:.4g} (run {best.user_attrs.get('run_id')})" if best else "no trial completed"
    return f"{sweep.id:<44} {sweep_state(sweep, study):<9} {ended}/{spec.planned_trials()} trials  {best_text}"

