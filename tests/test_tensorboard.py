"""TensorBoard event files: what a run writes is what TensorBoard's own reader reads, and a resumed run shows each step once."""

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_core.config import RunConfig
from gan_core.data.images import make_grid
from gan_core.store.runs import RunStore, atomic_write_text
from gan_core.training.loop import train_run
from tests.killed_worker import kill_and_compare

TINY = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=2)


def events(run) -> EventAccumulator:
    found = EventAccumulator(str(run.dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    found.Reload()
    return found


def test_a_run_writes_its_metrics_quality_and_sample_grids_as_tensorboard_reads_them(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(cache_dir))
    run = RunStore(tmp_path / "runs").create(RunConfig(**TINY, eval_every=3))
    train_run(run)
    found = events(run)
    history = run.history_rows()
    for metric in run.metrics():
        scalars = found.Scalars(f"{metric.group}/{metric.name}")
        assert [s.step for s in scalars] == [1, 2, 3, 4, 5, 6]
        np.testing.assert_allclose([s.value for s in scalars], [float(row[metric.name]) for row in history], rtol=1e-6)
    assert [s.step for s in found.Scalars("Throughput/images_per_sec")] == [1, 2, 3, 4, 5, 6]
    quality = found.Scalars("Quality/frechet_distance")
    assert [s.step for s in quality] == [3, 6]
    np.testing.assert_allclose([s.value for s in quality], [float(row["frechet_distance"]) for row in run.metrics_rows()], rtol=1e-6)
    grids = found.Images("Samples")
    assert [image.step for image in grids] == [0, 3, 6]
    grid = make_grid(np.zeros((64, 28, 28, 1), np.uint8))
    assert (grids[-1].height, grids[-1].width) == grid.shape[:2]
    assert grids[-1].encoded_image_string.startswith(b"\x89PNG")


def test_tensorboard_false_writes_no_event_files(tmp_path):
    run = RunStore(tmp_path / "runs").create(RunConfig(**TINY, tensorboard=False))
    train_run(run)
    assert not (run.dir / "tensorboard").exists() and len(run.history_rows()) == 6


def test_a_run_resumed_after_a_kill_shows_every_step_once(job_store):
    """The killed worker logged steps past its last checkpoint; the resumed one logs them again, and TensorBoard keeps only those."""
    config = RunConfig(**TINY | {"steps": 5000, "checkpoint_every": 3, "sample_every": 1000})
    run, newest, _ = kill_and_compare(job_store, config)
    atomic_write_text(run.config_path, config.replace(steps=newest + 3).to_json())
    train_run(run, resume=True)
    assert len(list((run.dir / "tensorboard").iterdir())) == 2
    steps = [s.step for s in events(run).Scalars("Losses/g_loss")]
    assert steps == list(range(1, newest + 4))
    g_loss = [s.value for s in events(run).Scalars("Losses/g_loss")]
    np.testing.assert_allclose(g_loss, [float(row["g_loss"]) for row in run.history_rows()], rtol=1e-6)
