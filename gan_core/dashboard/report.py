"""Run reports: one self-contained HTML file that opens offline in any browser; no Streamlit here.

`run_report` holds one run's charts (the Train page's figures), its sample grids over time (ProGAN's
per-stage grids too), its saved evaluations beside their real-data floors, its config, environment and
status; `comparison_report` holds what Compare shows for several runs and each run's last sample grid.
plotly.js is embedded once (inline, no CDN), images are `data:` URIs, and a Content-Security-Policy
forbids every network load, so the file needs nothing but itself.
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import plotly.graph_objects as go

import gan_core
from gan_core.dashboard import charts, compare
from gan_core.errors import GanError
from gan_core.evaluation import evaluate as evaluation
from gan_core.history_metrics import groups
from gan_core.store import jobs, provenance
from gan_core.store.runs import Run

MAX_GRIDS = 12  # sample grids over time: evenly spaced, always the last
SMOOTHING = 0.6  # the Train and Compare pages' default smoothing of the losses
GRID_SIDE = 240  # pixels: grids are enlarged by a whole factor to at least this side
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } tr.differs td, tr.differs th { background: #fff3b0; font-weight: bold; }
.grids { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figcaption { color: #555; font-size: 0.85rem; text-align: center; }
img { image-rendering: pixelated; } .note { color: #555; }
"""


class _Document:
    """An HTML document built in order; the first chart carries plotly.js, the others reuse it."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.plotly_included = False

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def heading(self, text: str, level: int = 2) -> None:
        self.add(f"<h{level}>{html.escape(text)}</h{level}>")

    def note(self, text: str) -> None:
        self.add(f'<p class="note">{html.escape(text)}</p>')

    def figure(self, figure: go.Figure) -> None:
        self.add(figure.to_html(
            full_html=False, include_plotlyjs=not self.plotly_included, config={"displaylogo": False, "responsive": True},
        ))
        self.plotly_included = True

    def table(self, frame: pd.DataFrame, index: str | None = None, marked: Sequence[str] = ()) -> None:
        """A table of text cells; with `index`, the frame's index is its first column under that name; `marked` rows are highlighted."""
        header = ([index] if index is not None else []) + [str(column) for column in frame.columns]
        rows = []
        for name, row in frame.iterrows():
            cells = ([f"<th>{html.escape(str(name))}</th>"] if index is not None else []) + [f"<td>{html.escape(_text(v))}</td>" for v in row]
            marker = ' class="differs"' if name in marked else ""
            rows.append(f"<tr{marker}>{''.join(cells)}</tr>")
        head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
        self.add(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def grids(self, grids: Sequence[tuple[str, Path]]) -> None:
        """Sample grids side by side, each a PNG data URI with its caption."""
        figures = []
        for caption, path in grids:
            try:
                encoded = base64.b64encode(charts.enlarged_png(path, min_side=GRID_SIDE)).decode("ascii")
            except (OSError, ValueError) as exc:
                figures.append(f"<figure><figcaption>{html.escape(f'{caption}: could not be read ({exc}).')}</figcaption></figure>")
                continue
            figures.append(
                f'<figure><img src="data:image/png;base64,{encoded}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        self.add(f'<div class="grids">{"".join(figures)}</div>')

    def html(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        version = f"GAN Workbench {gan_core.__version__} ({provenance.workbench_version()})"
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(self.title)}</h1>\n"
            f'<p class="meta">Generated {html.escape(stamp)} by {html.escape(version)}.</p>\n'
            + "\n".join(self.parts) + "\n</body>\n</html>\n"
        )


def _text(value: Any) -> str:
    """A table cell's text: None and NaN as a dash, floats short."""
    if value is None or (isinstance(value, float) and value != value):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def thinned_grids(sample_paths: Sequence[Path], max_grids: int = MAX_GRIDS) -> list[tuple[str, Path]]:
    """At most max_grids sample grids, evenly spaced over the run and always the last, captioned with their step."""
    return [(f"step {charts.sample_step(sample_paths[i]):,}", sample_paths[i]) for i in charts.downsample_indices(len(sample_paths), max_grids)]


# ---- one run ----------------------------------------------------------------------------
def run_report(run: Run) -> str:
    """The report of one run as a whole HTML document (a run whose files cannot be read says so in a sentence)."""
    document = _Document(f"Run report: {run.id}")
    try:
        _run_sections(document, run)
    except GanError as exc:
        document.note(str(exc))
    except OSError as exc:
        document.note(f"Could not read run '{run.id}': {exc.strerror or exc} ({exc.filename}).")
    return document.html()


def _run_sections(document: _Document, run: Run) -> None:
    config, status = run.config(), run.status()
    document.add(
        f"<p><b>Family</b> {html.escape(config.family)} · <b>dataset</b> {html.escape(str(status.get('dataset') or config.dataset))}"
        f" · <b>state</b> {html.escape(status['state'])} · {html.escape(jobs.progress_text(jobs.job_state(run)))}</p>"
    )
    if status.get("message"):
        document.note(str(status["message"]))
    _charts(document, run, config.eval_every, status)
    _samples(document, run, status.get("phases") or [])
    _evaluations(document, run)
    document.heading("Configuration")
    document.table(compare.config_table({"value": config.to_dict()}), index="field")
    document.heading("Environment")
    document.note("What reproduces the run besides its config, as its workers recorded it (a → b: a resume changed it).")
    document.table(compare.environment_table({"value": run}), index="what")


def _charts(document: _Document, run: Run, eval_every: int, status: dict) -> None:
    history = run.history_frame()
    document.heading("Training")
    if history.empty:
        document.note("No training step has been logged yet, so there are no charts.")
        return
    phases = status.get("phases") or []
    for index, (name, metrics) in enumerate(groups(run.metrics()).items()):
        document.figure(charts.metric_figure(history, name, metrics, SMOOTHING if index == 0 else None, phases))
    rows = run.metrics_rows()
    if rows:
        document.figure(charts.quality_figure(rows, status.get("quality_floor")))
    document.note(charts.quality_caption(eval_every, status.get("quality_n"), bool(rows)))
    document.figure(charts.throughput_figure(history))


def _samples(document: _Document, run: Run, phases: list[dict]) -> None:
    paths = run.sample_paths()
    if not paths:
        return
    timeline = charts.phase_grids(phases, paths)
    if timeline:
        document.heading("Resolution timeline")
        document.note("The same fixed noise at the end of each stage (the newest grid for the stage under way).")
        document.grids(timeline)
    shown = thinned_grids(paths)
    document.heading("Samples")
    document.note(f"The same fixed noise over training: {len(shown)} of {len(paths)} grids, evenly spaced, the last included.")
    document.grids(shown)


def _evaluations(document: _Document, run: Run) -> None:
    results = evaluation.saved_evaluations(run)
    if not results:
        return
    document.heading("Evaluations")
    for result in results:
        document.heading(f"Step {result.get('step')} · N = {result['n']}", level=3)
        document.note(evaluation.evaluator_caption(result))
        table = evaluation.metric_table(result)
        if table:
            document.table(pd.DataFrame(table))
        columns = evaluation.column_values(result)
        if columns:
            document.note(evaluation.COLUMNS_CAPTION)
            document.table(pd.DataFrame({"score": list(columns.values())}, index=list(columns)), index="column")


# ---- several runs -----------------------------------------------------------------------
def comparison_report(runs: dict[str, Run], smoothing: float = SMOOTHING) -> str:
    """The report of several runs side by side, as Compare shows them (losses smoothed by `smoothing`), with each run's last sample grid."""
    document = _Document(f"Comparison of {len(runs)} runs")
    if not runs:
        document.note("No runs were chosen.")
        return document.html()
    document.add("<p>" + ", ".join(html.escape(label) for label in runs) + "</p>")
    rows = {label: run.history_rows() for label, run in runs.items()}
    document.heading("Losses")
    if not any(rows.values()):
        document.note("None of these runs has logged a training step yet.")
    for metric in compare.headline_metrics(runs):
        document.figure(compare.overlay_figure(rows, metric, smoothing))
    quality_rows, floors = compare.quality_series(runs)
    if quality_rows:
        document.heading("Quality")
        document.figure(compare.quality_overlay_figure(quality_rows, floors))
    document.heading("Final figures")
    document.table(compare.final_figures(runs).set_index("run"), index="run")
    _configurations(document, runs)
    document.heading("Environment")
    environment = compare.environment_table(runs)
    document.note("What reproduces each run besides its config (a → b: a resume changed it); the fields that differ are marked.")
    document.table(environment, index="what", marked=compare.differing_fields(environment))
    document.heading("Last sample grids")
    last = {label: run.sample_paths()[-1:] for label, run in runs.items()}
    grids = [(f"{label} at step {charts.sample_step(paths[0]):,}", paths[0]) for label, paths in last.items() if paths]
    if grids:
        document.grids(grids)
    else:
        document.note("None of these runs has saved a sample grid yet.")
    return document.html()


def _configurations(document: _Document, runs: dict[str, Run]) -> None:
    document.heading("Configurations")
    configs, problems = compare.run_configs(runs)
    for problem in problems:
        document.note(problem)
    table = compare.config_table(configs)
    differing = compare.differing_fields(table)
    document.note(compare.differences_sentence(table, differing))
    document.table(table, index="field", marked=differing)
