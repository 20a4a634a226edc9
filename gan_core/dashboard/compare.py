"""Comparing runs: overlaid loss and quality curves, configs side by side and final figures."""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from gan_core.dashboard.charts import downsample_indices, floor_trace, smooth
from gan_core.dashboard.runs_table import format_seconds
from gan_core.errors import GanError
from gan_core.history_metrics import Metric, from_status, headline
from gan_core.store import provenance
from gan_core.store.jobs import job_status
from gan_core.store.runs import Run

RECENT_STEPS = 50
FRECHET_DISTANCE = Metric("frechet_distance", "Fréchet distance (lower is better)", "Quality", log=True)
RUN_COLORS = plotly.colors.qualitative.D3


def default_selection(run_ids: list[str], selected: str | None) -> list[str]:
    """The selected run and the newest other run (run_ids are newest first); the two newest without a selection."""
    if selected in run_ids:
        return [selected] + [r for r in run_ids if r != selected][:1]
    return run_ids[:2]


def overlay_figure(runs_rows: dict[str, list[dict[str, float]]], metric: Metric, smoothing: float) -> go.Figure:
    """One smoothed line of `metric` per run that has it, against the step (long histories thinned to MAX_POINTS)."""
    figure = go.Figure()
    for (label, rows), color in zip(runs_rows.items(), itertools.cycle(RUN_COLORS)):
        rows = [row for row in rows if row.get(metric.name) is not None]
        if not rows:
            continue
        smoothed = smooth([row[metric.name] for row in rows], smoothing)
        indices = downsample_indices(len(rows))
        x, y = [rows[i]["step"] for i in indices], [smoothed[i] for i in indices]
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=label, line=dict(color=color, width=2)))
    figure.update_layout(
        title=metric.label, xaxis_title="step", yaxis_title=metric.label,
        showlegend=True, legend=dict(orientation="h", y=-0.25), margin=dict(l=10, r=10, t=40, b=10), height=380,
    )
    return figure


def quality_series(runs: dict[str, Run]) -> tuple[dict[str, list[dict]], dict[str, float | None]]:
    """The metrics.csv rows and real-vs-real floor of each run that has quality metrics."""
    rows, floors = {}, {}
    for label, run in runs.items():
        found = run.metrics_rows()
        if not found:
            continue
        rows[label] = found
        try:
            floors[label] = run.raw_status().get("quality_floor")
        except GanError:
            floors[label] = None
    return rows, floors


def quality_overlay_figure(runs_rows: dict[str, list[dict]], floors: dict[str, float | None]) -> go.Figure:
    """Fréchet distance against the step per run (log scale), with one dashed line per distinct real-vs-real floor."""
    figure = overlay_figure(runs_rows, FRECHET_DISTANCE, 0.0)
    figure.update_yaxes(type="log")
    steps = [row["step"] for rows in runs_rows.values() for row in rows]
    by_floor: dict[float, list[str]] = {}
    for label, floor in floors.items():
        if floor is not None:
            by_floor.setdefault(floor, []).append(label)
    for floor, labels in by_floor.items():
        name = "Real-vs-real floor" if len(by_floor) == 1 else f"Real-vs-real floor ({', '.join(labels)})"
        figure.add_trace(floor_trace(floor, steps, name))
    return figure


def _cell(value: Any) -> str:
    """A config value as table text (one type per column keeps Arrow happy)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def run_configs(runs: dict[str, Run]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each run's config as a dict, by label, and one sentence for each run whose config cannot be read."""
    configs, problems = {}, []
    for label, run in runs.items():
        try:
            configs[label] = run.config().to_dict()
        except GanError as exc:
            problems.append(str(exc))
    return configs, problems


def differences_sentence(table: pd.DataFrame, differing: list[str]) -> str:
    """'2 of 32 fields differ: name, g_lr.' (the caption of a config table)."""
    return f"{len(differing)} of {len(table)} fields differ" + (f": {', '.join(differing)}." if differing else ".")


def config_table(configs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Config fields as rows (every field any of the runs has, in config.json's order), runs as columns, values as text."""
    names = list(dict.fromkeys(name for config in configs.values() for name in config))
    table = {label: [_cell(config.get(name, "")) for name in names] for label, config in configs.items()}
    return pd.DataFrame(table, index=names)


def environment_table(runs: dict[str, Run]) -> pd.DataFrame:
    """What reproduces each run besides its config (versions, commit, device, precision, command), fields as rows, runs as columns."""
    found = {}
    for label, run in runs.items():
        try:
            found[label] = provenance.summary(provenance.entries(run))
        except GanError as exc:
            found[label] = dict.fromkeys(provenance.FIELDS, str(exc))
    table = config_table(found)
    table.index = [provenance.FIELDS[name] for name in table.index]
    return table


def differing_fields(table: pd.DataFrame) -> list[str]:
    """The fields (rows) whose values are not the same in every run."""
    return [name for name, row in table.iterrows() if row.nunique() > 1]


def highlight_differences(table: pd.DataFrame) -> "pd.io.formats.style.Styler":
    """The table with differing rows in bold on a yellow background."""
    differing = set(differing_fields(table))
    style = "background-color: #fff3b0; font-weight: bold"
    return table.style.apply(lambda row: [style if row.name in differing else ""] * len(row), axis=1)


def _mean(rows: list[dict[str, float]], key: str, digits: int = 4) -> float | None:
    """The mean of one history column over rows, rounded; None for no rows."""
    values = [row[key] for row in rows if row.get(key) is not None]
    return round(sum(values) / len(values), digits) if values else None


def headline_metrics(runs: dict[str, Run]) -> list[Metric]:
    """The headline metrics of the runs, each once, in the order the runs declare them: one overlay chart each."""
    found: dict[str, Metric] = {}
    for run in runs.values():
        for metric in headline(run.metrics()):
            found.setdefault(metric.name, metric)
    return list(found.values())


def final_figures(runs: dict[str, Run]) -> pd.DataFrame:
    """Per run: final step, state, last and recent-mean losses, images/s and training time."""
    records = []
    for label, run in runs.items():
        try:
            status = job_status(run)
        except GanError:
            status = {"state": "broken"}
        rows = run.history_rows()
        recent = rows[-RECENT_STEPS:]
        shown = headline(from_status(status))
        records.append(
            {
                "run": label,
                "final step": int(status.get("step") or (rows[-1]["step"] if rows else 0)),
                "state": status["state"],
                **{f"{m.label} (last)": _mean(rows[-1:], m.name) for m in shown},
                **{f"{m.label} (mean of last {RECENT_STEPS})": _mean(recent, m.name) for m in shown},
                "images/s": _mean(recent, "images_per_sec", 1),
                "train time": format_seconds(status.get("train_seconds")),
            }
        )
    return pd.DataFrame(records)
