"""The Sweep page's pieces below its widgets: the fields a sweep can vary with a starting range each, and Optuna's figures."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from gan_core.config import COMMON_FIELDS, config_fields
from gan_core.sweeps.spec import FIXED_FIELDS
from gan_core.sweeps.store import Sweep, open_study

SEARCHED_GROUPS = ("optimizer",)  # of the common fields, only batch size: not data, schedule, output or performance
STARTING_FIELDS = ("g_lr", "batch_size", "loss")  # what a new sweep varies first, when its family has them


def varied_fields(family: str) -> list[str]:
    """The fields a sweep may vary: the family's numbers and choices, and the batch size."""
    found = []
    for f in config_fields(family):
        meta = f.metadata
        searchable = f.type in ("int", "float", "bool") or "choices" in meta
        if searchable and f.name not in FIXED_FIELDS and (meta["group"] in SEARCHED_GROUPS or f.name not in COMMON_FIELDS):
            found.append(f.name)
    return found


def starting_fields(family: str) -> list[str]:
    return [name for name in STARTING_FIELDS if name in varied_fields(family)]


def starting_range(family: str, name: str, value) -> str:
    """A first range to try around the base value, as the page's text field and `--vary` take it."""
    f = next(f for f in config_fields(family) if f.name == name)
    meta = f.metadata
    if f.type == "bool":
        return "true,false"
    if "choices" in meta:
        return ",".join(meta["choices"][:4])
    if f.type == "int":
        values = sorted({min(meta["max"], max(meta["min"], v)) for v in (value // 2, value, value * 2)})
        return ",".join(str(v) for v in values)
    if value > 0 and meta["min"] > 0:
        return f"{max(meta['min'], value / 3):.3g}:{min(meta['max'], value * 3):.3g}:log"
    if meta["max"] - meta["min"] <= 1 or value <= 0:
        return f"{meta['min']:g}:{min(meta['max'], meta['min'] + 1):g}"
    return f"{max(meta['min'], value / 2):g}:{min(meta['max'], value * 2):g}"


def _empty(title: str, text: str) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(title=title, height=360, margin=dict(l=10, r=10, t=50, b=10), xaxis_visible=False, yaxis_visible=False)
    figure.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=16))
    return figure


def history_figure(study, objective: str) -> go.Figure:
    """Optuna's optimization history: each completed trial's objective and the best so far."""
    import optuna

    if not _completed(study):
        return _empty("Optimization history", "No trial has completed yet")
    figure = optuna.visualization.plot_optimization_history(study, target_name=objective)
    return figure.update_layout(height=360)


def parallel_figure(study, objective: str) -> go.Figure:
    """Optuna's parallel coordinates: every completed trial's parameters and objective on one chart."""
    import optuna

    if not _completed(study):
        return _empty("Parallel coordinates", "No trial has completed yet")
    figure = optuna.visualization.plot_parallel_coordinate(study, target_name=objective)
    return figure.update_layout(height=400)


def importance_figure(sweep: Sweep, study, objective: str) -> go.Figure:
    """Optuna's parameter importances (fANOVA); it needs two completed trials that differ.

    fANOVA fits a random forest, so the figure is computed once per set of completed trials (a live sweep's 5-second
    ticks do not take a core from its trials), with a fixed seed.
    """
    completed = tuple((trial.number, trial.value) for trial in _completed(study))
    if len(completed) < 2:
        return _empty("Parameter importances", "Importances need at least two completed trials")
    return _importances(str(sweep.dir), objective, completed)


@st.cache_data(max_entries=16, show_spinner="Computing the parameter importances…")
def _importances(sweep_dir: str, objective: str, completed: tuple) -> go.Figure:
    """The importance figure of the sweep in `sweep_dir` over the trials `completed` ((number, value) pairs), its cache key."""
    import optuna

    study = open_study(Sweep(Path(sweep_dir)))
    numbers = {number for number, _ in completed}
    trials = [trial for trial in _completed(study) if trial.number in numbers]  # as keyed, though more may have completed
    try:
        figure = optuna.visualization.plot_param_importances(
            _frozen_copy(study, trials), evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), target_name=objective,
        )
    except (RuntimeError, ValueError) as exc:  # e.g. every completed trial has the same parameters
        return _empty("Parameter importances", f"Not available yet: {str(exc).rstrip('.')}")
    return figure.update_layout(height=360)


def _frozen_copy(study, trials: list):
    """An in-memory study holding only `trials`, with `study`'s direction."""
    import optuna

    copy = optuna.create_study(direction=study.direction)
    copy.add_trials(trials)
    return copy


def _completed(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
