"""Training charts (plotly figures) and the animated GIF of the sample grids; no Streamlit here.

The history figures take `Run.history_frame()` (a column per history.csv field), the quality
figure the rows of `Run.metrics_rows()`; no data gives a figure that says so, and long histories
are thinned to at most MAX_POINTS points (always keeping the last).
"""

from __future__ import annotations

import io
import itertools
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from gan_core.data.images import encode_png
from gan_core.history_metrics import Metric

MAX_POINTS = 600  # about the chart width in pixels: more points only cost the browser redraw time
G_COLOR = "#1f77b4"
D_COLOR = "#d62728"
FLOOR_COLOR = "#7f7f7f"
SERIES_COLORS = (G_COLOR, D_COLOR, "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
CLASSES_COLOR = "#2ca02c"
Rows = Sequence[dict[str, float]]


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's debiased exponential moving average (0 <= weight < 1; 0 returns the values)."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1); got {weight}.")
    smoothed, last, count = [], 0.0, 0
    for value in values:
        if not math.isfinite(value):
            smoothed.append(value)
            continue
        last = last * weight + (1.0 - weight) * value
        count += 1
        smoothed.append(last / (1.0 - weight**count))
    return smoothed


def downsample_indices(n: int, max_points: int = MAX_POINTS) -> list[int]:
    """Evenly strided indices into n points, at most max_points of them, always ending at n - 1."""
    if n <= max_points:
        return list(range(n))
    stride = math.ceil(n / (max_points - 1))
    indices = list(range(0, n - 1, stride))
    return indices + [n - 1]


def _series(rows: Rows, key: str, indices: list[int], values: Sequence[float] | None = None) -> tuple[list, list]:
    values = values if values is not None else [row[key] for row in rows]
    return [rows[i]["step"] for i in indices], [values[i] for i in indices]


def _columns(history: pd.DataFrame, key: str, indices: list[int], values: Sequence[float] | None = None) -> tuple[list, list]:
    values = history[key].to_numpy() if values is None else np.asarray(values)
    return history["step"].to_numpy()[indices].tolist(), values[indices].tolist()


def _figure(title: str, y_title: str, points: int, empty: str = "No steps yet") -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title=title, xaxis_title="step", yaxis_title=y_title, height=360,
        margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.2),
    )
    if points == 0:
        figure.add_annotation(text=empty, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=16))
    return figure


def _lines(figure: go.Figure, history: pd.DataFrame, keys: dict[str, str], colors: Sequence[str]) -> go.Figure:
    if history.empty:
        return figure
    indices = downsample_indices(len(history))
    for (key, name), color in zip(keys.items(), colors):
        x, y = _columns(history, key, indices)
        figure.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines", line=dict(color=color, width=2)))
    return figure


def metric_figure(
    history: pd.DataFrame, title: str, metrics: Sequence[Metric], smoothing: float | None = None, phases: Sequence[dict] = (),
) -> go.Figure:
    """One chart group of a family's metrics per step; with `smoothing`, raw (thin, translucent) and smoothed (bold) lines.

    `phases` (status.json's, such as ProGAN's stages) become dotted vertical lines at each later phase's start, labelled.
    """
    figure = _figure(title, "value", len(history))
    last_step = float(history["step"].iloc[-1]) if not history.empty else 0.0
    for phase in phases[1:]:
        if phase["start"] < last_step:
            figure.add_vline(x=phase["start"], line=dict(color=FLOOR_COLOR, dash="dot", width=1), annotation_text=phase["label"], annotation_position="top left")
    if metrics and all(m.log for m in metrics):
        figure.update_yaxes(type="log")
    present = [m for m in metrics if m.name in history]
    if history.empty or not present:
        return figure
    indices = downsample_indices(len(history))
    for metric, color in zip(present, itertools.cycle(SERIES_COLORS)):
        x, y = _columns(history, metric.name, indices)
        if smoothing is None:
            figure.add_trace(go.Scatter(x=x, y=y, name=metric.label, mode="lines", line=dict(color=color, width=2)))
            continue
        figure.add_trace(go.Scatter(x=x, y=y, name=f"{metric.label} (raw)", mode="lines", opacity=0.3, line=dict(color=color, width=1)))
        x, y = _columns(history, metric.name, indices, smooth(history[metric.name].tolist(), smoothing))
        figure.add_trace(go.Scatter(x=x, y=y, name=metric.label, mode="lines", line=dict(color=color, width=2.5)))
    return figure


def throughput_figure(history: pd.DataFrame) -> go.Figure:
    """Training images per second."""
    return _lines(_figure("Throughput", "images/s", len(history)), history, {"images_per_sec": "images/s"}, ("#2ca02c",))


def floor_trace(floor: float, steps: Sequence[float], name: str = "Real-vs-real floor", color: str = FLOOR_COLOR) -> go.Scatter:
    """A dashed horizontal line at `floor` across the steps (a trace, so the legend names it)."""
    x = [min(steps), max(steps)] if steps else [0, 1]
    return go.Scatter(x=x, y=[floor, floor], name=name, mode="lines", line=dict(color=color, width=1.5, dash="dash"))


def quality_figure(rows: Rows, floor: float | None = None) -> go.Figure:
    """Fréchet distance per evaluated step (log scale) over its dashed real-vs-real floor; classes covered on a right axis."""
    figure = _figure("Quality", "Fréchet distance (lower is better)", len(rows), empty="No quality metrics yet")
    figure.update_yaxes(type="log")
    if not rows:
        return figure
    indices = downsample_indices(len(rows))
    x, y = _series(rows, "frechet_distance", indices)
    figure.add_trace(go.Scatter(x=x, y=y, name="Fréchet distance", mode="lines+markers", line=dict(color=G_COLOR, width=2)))
    if floor is not None:
        figure.add_trace(floor_trace(floor, x))
    if any(rows[i]["classes_covered"] is not None for i in indices):
        x, y = _series(rows, "classes_covered", indices)
        figure.add_trace(go.Scatter(
            x=x, y=y, name="Classes covered", mode="lines+markers", yaxis="y2", line=dict(color=CLASSES_COLOR, width=1.5),
        ))
        figure.update_layout(yaxis2=dict(title="classes covered", overlaying="y", side="right", rangemode="tozero", dtick=1, showgrid=False))
    return figure


def quality_caption(eval_every: int, n: int | None, has_rows: bool) -> str:
    """The line under the quality chart: what it shows, or how to turn the metrics on."""
    if has_rows:
        return (
            f"Fréchet distance of {n} generated images to {n} held-out images in the evaluator's features, every "
            f"{eval_every:,} steps; the dashed line is real held-out vs real training images, what a perfect generator reaches."
        )
    if eval_every:
        return f"Quality metrics are on: the first point appears at step {eval_every:,} (the first run on a dataset also trains a small evaluator)."
    return (
        "Quality metrics are off for this run: set 'Quality metrics every N steps' on the Configure page "
        "to chart the Fréchet distance and classes covered during training."
    )


# ---- sample grids ---------------------------------------------------------------------------
def sample_step(path: Path) -> int:
    """The training step in a sample file name such as step_000050.png."""
    match = re.search(r"(\d+)", Path(path).stem)
    return int(match.group(1)) if match else 0


def phase_grids(phases: Sequence[dict], sample_paths: Sequence[Path]) -> list[tuple[str, Path]]:
    """One sample grid per phase reached (ProGAN's resolution timeline), captioned: the grid saved at the next
    phase's start, which is the end of this one, or the newest grid for the phase under way."""
    by_step = {sample_step(path): path for path in sample_paths}
    if not by_step:
        return []
    newest = max(by_step)
    ends = [phase["start"] for phase in phases[1:]] + [newest]
    grids = []
    for phase, end in zip(phases, ends):
        if phase["start"] > newest:
            break
        step = max(s for s in by_step if s <= min(end, newest))
        grids.append((f"{phase['label']} at step {step:,}", by_step[step]))
    return grids


def enlarged_png(path: Path, min_side: int = 480) -> bytes:
    """A sample grid as PNG bytes, enlarged by a whole factor (sharp pixels) to at least min_side."""
    image = np.asarray(Image.open(path))
    if image.ndim == 2:
        image = image[..., None]
    scale = max(1, math.ceil(min_side / max(image.shape[:2])))
    return encode_png(image, scale)


def training_gif(sample_paths: Sequence[Path], fps: float = 4.0) -> bytes:
    """An animated GIF of the sample grids, one frame each, labelled with its step."""
    if not sample_paths:
        raise ValueError("training_gif needs at least one sample grid.")
    frames = [_labelled_frame(path) for path in sample_paths]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:],
        duration=max(20, round(1000 / fps)), loop=0, optimize=False, disposal=1,
    )
    return buffer.getvalue()


def _labelled_frame(path: Path, banner: int = 16) -> Image.Image:
    grid = Image.open(path).convert("RGB")
    scale = max(1, math.ceil(256 / max(grid.size)))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    frame = Image.new("RGB", (grid.width, grid.height + banner), "black")
    frame.paste(grid, (0, banner))
    ImageDraw.Draw(frame).text((4, 2), f"step {sample_step(path)}", fill="white")
    return frame
