"""Training charts: traces, smoothing math, downsampling, empty histories and the training GIF."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gan_core.dashboard import charts
from gan_core.data.images import make_grid, save_png
from gan_core.history_metrics import ADVERSARIAL_METRICS, groups, history_columns

HISTORY_COLUMNS = history_columns(ADVERSARIAL_METRICS)
GROUPS = groups(ADVERSARIAL_METRICS)


def loss_figure(rows, smoothing):
    return charts.metric_figure(rows, "Losses", GROUPS["Losses"], smoothing)


def d_output_figure(rows):
    return charts.metric_figure(rows, "D outputs", GROUPS["D outputs"])


def grad_norm_figure(rows):
    return charts.metric_figure(rows, "Gradient norms", GROUPS["Gradient norms"])


def history(n: int) -> pd.DataFrame:
    return pd.DataFrame([
        {
            "step": float(i + 1), "epoch": 1.0, "g_loss": 1.0 + i % 3, "d_loss": 0.5 + i % 2,
            "d_real": 0.8, "d_fake": 0.2, "g_grad_norm": 2.0 + i, "d_grad_norm": 1.0 + i,
            "images_per_sec": 100.0 + i, "elapsed_sec": 0.1 * (i + 1),
        }
        for i in range(n)
    ], columns=list(HISTORY_COLUMNS))


def names(figure) -> list[str]:
    return [trace.name for trace in figure.data]


def test_smooth_matches_a_hand_computed_debiased_ema():
    # weight 0.5: ema_1 = 0.5*1 = 0.5 -> /0.5 = 1; ema_2 = 0.25 + 0.5*3 = 1.75 -> /0.75 = 7/3;
    # ema_3 = 0.875 + 0.5*5 = 3.375 -> /0.875 = 27/7.
    assert charts.smooth([1.0, 3.0, 5.0], 0.5) == pytest.approx([1.0, 7 / 3, 27 / 7])
    assert charts.smooth([4.0, 4.0, 4.0], 0.9) == pytest.approx([4.0, 4.0, 4.0])
    assert charts.smooth([1.0, 2.0], 0.0) == [1.0, 2.0]
    with pytest.raises(ValueError):
        charts.smooth([1.0], 1.0)


def test_loss_figure_has_raw_and_smoothed_traces_per_network():
    rows = history(10)
    figure = loss_figure(rows, smoothing=0.6)
    assert names(figure) == ["G loss (raw)", "G loss", "D loss (raw)", "D loss"]
    raw_g, smooth_g = figure.data[0], figure.data[1]
    assert list(raw_g.x) == [float(i) for i in range(1, 11)]
    assert list(raw_g.y) == rows["g_loss"].tolist()
    assert list(smooth_g.y) == pytest.approx(charts.smooth(rows["g_loss"].tolist(), 0.6))
    assert raw_g.opacity < 1 and smooth_g.line.width > raw_g.line.width


def test_figures_chart_only_the_metrics_the_history_has():
    rows = history(4).drop(columns=["d_fake"])
    assert names(d_output_figure(rows)) == ["D(x)"]
    assert names(loss_figure(rows, 0.5))[0] == "G loss (raw)"


def test_the_other_figures_name_their_traces():
    rows = history(5)
    assert names(d_output_figure(rows)) == ["D(x)", "D(G(z))"]
    assert names(grad_norm_figure(rows)) == ["G grad norm", "D grad norm"]
    assert grad_norm_figure(rows).layout.yaxis.type == "log"
    throughput = charts.throughput_figure(rows)
    assert names(throughput) == ["images/s"] and list(throughput.data[0].y) == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_long_histories_are_capped_and_keep_the_last_point():
    rows = history(10_001)
    for figure in (loss_figure(rows, 0.9), d_output_figure(rows), charts.throughput_figure(rows)):
        for trace in figure.data:
            assert len(trace.x) <= charts.MAX_POINTS
            assert trace.x[0] == 1.0 and trace.x[-1] == 10_001.0
    smoothed = loss_figure(rows, 0.9).data[1]
    assert smoothed.y[-1] == pytest.approx(charts.smooth(rows["g_loss"].tolist(), 0.9)[-1])
    assert charts.downsample_indices(5) == [0, 1, 2, 3, 4]
    assert charts.downsample_indices(2001, 2000)[-1] == 2000 and len(charts.downsample_indices(2001, 2000)) <= 2000


def test_empty_history_gives_a_figure_that_says_so():
    empty = history(0)
    for figure in (loss_figure(empty, 0.5), d_output_figure(empty), grad_norm_figure(empty), charts.throughput_figure(empty)):
        assert len(figure.data) == 0
        assert [a.text for a in figure.layout.annotations] == ["No steps yet"]


def quality_rows(classes: bool = True) -> list[dict]:
    return [
        {"step": float(s), "frechet_distance": 100.0 / s, "classes_covered": float(s) if classes else None, "class_kl": None}
        for s in (1, 2, 4)
    ]


def test_quality_figure_draws_fd_over_its_dashed_floor_and_classes_on_a_second_axis():
    figure = charts.quality_figure(quality_rows(), floor=2.5)
    assert names(figure) == ["Fréchet distance", "Real-vs-real floor", "Classes covered"]
    fd, floor, classes = figure.data
    assert list(fd.y) == [100.0, 50.0, 25.0] and figure.layout.yaxis.type == "log"
    assert list(floor.x) == [1.0, 4.0] and list(floor.y) == [2.5, 2.5] and floor.line.dash == "dash"
    assert classes.yaxis == "y2" and figure.layout.yaxis2.overlaying == "y" and figure.layout.yaxis2.side == "right"


def test_quality_figure_without_labels_floor_or_rows():
    assert names(charts.quality_figure(quality_rows(classes=False))) == ["Fréchet distance"]
    empty = charts.quality_figure([], floor=1.0)
    assert len(empty.data) == 0 and [a.text for a in empty.layout.annotations] == ["No quality metrics yet"]


def test_quality_caption_says_what_the_chart_shows_or_how_to_turn_it_on():
    assert charts.quality_caption(500, 1000, True).startswith("Fréchet distance of 1000 generated images to 1000 held-out")
    assert "every 500 steps" in charts.quality_caption(500, 1000, True)
    assert charts.quality_caption(200, None, False).startswith("Quality metrics are on: the first point appears at step 200")
    assert charts.quality_caption(0, None, False).startswith("Quality metrics are off for this run")


def sample_grids(folder, steps):
    paths = []
    for step in steps:
        images = np.full((4, 8, 8, 1), step % 256, dtype=np.uint8)
        paths.append(save_png(folder / f"step_{step:06d}.png", make_grid(images, cols=2)))
    return paths


def test_training_gif_has_one_labelled_frame_per_sample(tmp_path):
    paths = sample_grids(tmp_path, [0, 3, 6])
    data = charts.training_gif(paths, fps=5)
    assert data.startswith(b"GIF8")
    gif = Image.open(io.BytesIO(data))
    assert gif.n_frames == 3
    assert gif.info["duration"] == 200
    assert gif.width >= 256  # small grids are enlarged
    with pytest.raises(ValueError):
        charts.training_gif([])


def test_sample_step_and_enlarged_png(tmp_path):
    (path,) = sample_grids(tmp_path, [150])
    assert charts.sample_step(path) == 150
    enlarged = Image.open(io.BytesIO(charts.enlarged_png(path, min_side=100)))
    original = Image.open(path)
    assert enlarged.width >= 100 and enlarged.width % original.width == 0
