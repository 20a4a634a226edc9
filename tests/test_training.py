"""The training loop on tiny models: files on disk, no retracing, stop/resume, divergence."""

import threading

import numpy as np
import pytest
import tensorflow as tf

from gan_core.config import RunConfig
from gan_core.errors import ConfigError, RunError
from gan_core.generation.sampling import checkpoint_steps, load_generator, sample
from gan_core.store.runs import RunStore
from gan_core.training import devices
from gan_core.training import loop as training
from gan_core.training.loop import Trainer, train_run


def tiny(**changes) -> RunConfig:
    base = dict(
        dataset="mnist-5k", architecture="dcgan", width=0.125, latent_dim=8, batch_size=16,
        steps=6, sample_every=3, checkpoint_every=3, seed=1,
    )
    return RunConfig(**(base | changes))


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def history_steps(run):
    return [int(r["step"]) for r in run.history_rows()]


def test_a_run_leaves_config_status_history_samples_and_checkpoints(store):
    run = store.create(tiny())
    status = train_run(run)
    assert status["state"] == "finished" and status["step"] == 6
    assert status["dataset"] == "mnist-5k" and status["image_shape"] == [28, 28, 1]
    assert history_steps(run) == [1, 2, 3, 4, 5, 6]
    row = run.history_rows()[-1]
    assert 0.0 <= row["d_real"] <= 1.0 and 0.0 <= row["d_fake"] <= 1.0
    assert row["g_grad_norm"] > 0 and row["d_grad_norm"] > 0 and row["images_per_sec"] > 0
    assert [p.name for p in run.sample_paths()] == ["step_000000.png", "step_000003.png", "step_000006.png"]
    assert run.sample_paths()[-1].read_bytes().startswith(b"\x89PNG")
    assert checkpoint_steps(run) == [3, 6]


def test_the_step_is_traced_once_even_when_call_sizes_change(store):
    run = store.create(tiny(steps=7, steps_per_call=2, sample_every=3, checkpoint_every=5))
    trainer = Trainer(run)
    trainer.fit()
    assert history_steps(run) == list(range(1, 8))
    assert trainer.train_fn.experimental_get_tracing_count() == 1


def test_stop_then_resume_continues_from_the_saved_step(store):
    run = store.create(tiny(steps=6, checkpoint_every=100, sample_every=100))
    stop = threading.Event()

    def stop_at_four(progress):
        if progress.step == 4:
            stop.set()

    status = train_run(run, stop_event=stop, on_progress=stop_at_four)
    assert status["state"] == "stopped" and status["step"] == 4
    assert checkpoint_steps(run) == [4]

    run.update_status(state="stopped")
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and status["step"] == 6
    assert history_steps(run) == [1, 2, 3, 4, 5, 6]
    assert "Resumed from step 4" in status["message"] or status["message"] == ""


def test_resume_cuts_history_back_to_the_checkpoint(store):
    run = store.create(tiny(steps=5, checkpoint_every=3, sample_every=100))
    train_run(run)
    run.update_status(state="crashed")
    # Simulate a crash after step 5 was logged but before its checkpoint: drop ckpt-5.
    manager_state = run.checkpoints_dir / "checkpoint"
    manager_state.write_text(manager_state.read_text().replace("ckpt-5", "ckpt-3"))
    status = Trainer(run).fit(resume=True)
    assert status["step"] == 5
    assert history_steps(run) == [1, 2, 3, 4, 5]


def test_a_broken_newest_checkpoint_falls_back_to_the_previous_one(store):
    run = store.create(tiny(steps=6, checkpoint_every=3, sample_every=100))
    train_run(run)
    (run.checkpoints_dir / "ckpt-6.data-00000-of-00001").write_bytes(b"truncated")
    trainer = Trainer(run)
    step = trainer._restore()
    assert step == 3
    assert any("ckpt-6 could not be read" in note for note in trainer.notes)


def test_resume_without_a_checkpoint_never_starts_from_scratch(store):
    run = store.create(tiny())
    with pytest.raises(RunError, match="no readable checkpoint"):
        train_run(run, resume=True)
    assert run.status()["state"] == "crashed"


def test_training_a_trained_run_again_is_refused(store):
    run = store.create(tiny(steps=3))
    train_run(run)
    with pytest.raises(RunError, match="resume it instead"):
        Trainer(run).fit()


def test_same_seed_same_losses(store):
    first, second = store.create(tiny(steps=4)), store.create(tiny(steps=4))
    train_run(first)
    train_run(second)
    losses = [[(r["g_loss"], r["d_loss"]) for r in run.history_rows()] for run in (first, second)]
    assert losses[0] == losses[1]
    other = store.create(tiny(steps=4, seed=2))
    train_run(other)
    assert [(r["g_loss"], r["d_loss"]) for r in other.history_rows()] != losses[0]


def test_a_nan_batch_stops_the_run_as_diverged_and_keeps_the_good_checkpoint(store, monkeypatch):
    real_pipeline = training.make_pipeline

    def poisoned(*args, **kwargs):
        dataset = real_pipeline(*args, **kwargs)
        nan = tf.constant(float("nan"))
        return dataset.enumerate().map(lambda i, b: (tf.where(i >= 4, b[0] * nan, b[0]), b[1]))

    monkeypatch.setattr(training, "make_pipeline", poisoned)
    run = store.create(tiny(steps=10, checkpoint_every=2, sample_every=100))
    status = train_run(run)
    assert status["state"] == "diverged" and status["step"] == 4
    assert "diverged at step 5" in status["message"] and "learning rate" in status["message"]
    assert history_steps(run) == [1, 2, 3, 4]
    assert checkpoint_steps(run) == [2, 4]


def test_conditional_wgan_gp_with_ema_and_several_steps_per_call(store):
    config = tiny(
        conditional=True, loss="wgan-gp", d_steps=2, ema_decay=0.9, steps_per_call=3,
        dropout=0.0, steps=6, sample_every=6, checkpoint_every=6,
    )
    run = store.create(config)
    status = train_run(run)
    assert status["state"] == "finished" and status["num_classes"] == 10
    assert history_steps(run) == [1, 2, 3, 4, 5, 6]
    loaded = load_generator(run)
    images, labels = sample(loaded, 20, seed=3, label=7)
    assert images.shape == (20, 28, 28, 1) and images.dtype == np.uint8
    assert (labels == 7).all()
    with pytest.raises(RunError, match="label must be between 0 and 9; got 12"):
        sample(loaded, 4, label=12)


@pytest.mark.parametrize("loss", ["minimax", "lsgan", "hinge"])
def test_every_loss_trains_with_the_mlp(store, loss):
    run = store.create(tiny(architecture="mlp", loss=loss, steps=2, label_smoothing=0.1, spectral_norm=True))
    assert train_run(run)["state"] == "finished"
    assert all(np.isfinite(r["g_loss"]) for r in run.history_rows())


def test_colour_32px_user_data_trains(store, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "colour.npz"
    np.savez(path, x=rng.integers(0, 255, (64, 32, 32, 3), dtype=np.uint8), y=rng.integers(0, 3, 64))
    run = store.create(tiny(dataset=str(path), conditional=True, steps=2))
    status = train_run(run)
    assert status["image_shape"] == [32, 32, 3] and status["num_classes"] == 3
    images, _ = sample(load_generator(run), 4)
    assert images.shape == (4, 32, 32, 3)


def test_conditional_needs_labels(store, tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x=np.zeros((32, 28, 28), np.uint8))
    run = store.create(tiny(dataset=str(path), conditional=True))
    with pytest.raises(ConfigError, match="needs a labelled dataset"):
        train_run(run)
    status = run.status()
    assert status["state"] == "crashed" and "needs a labelled dataset" in status["message"]


def test_batch_larger_than_the_data_is_refused(store, tmp_path):
    path = tmp_path / "small.npz"
    np.savez(path, x=np.zeros((20, 28, 28), np.uint8))
    run = store.create(tiny(dataset=str(path), batch_size=32))
    with pytest.raises(ConfigError, match=r"takes 32 images, more than the dataset.s 20"):
        train_run(run)


def test_mixed_precision_trains_in_the_devices_half_precision(store):
    """float16 (with loss scaling) on a GPU, bfloat16 on a CPU; the overflow test below trains float16 on any device."""
    half = "float16" if devices.has_gpu() else "bfloat16"
    run = store.create(tiny(precision="mixed", steps=3))
    trainer = Trainer(run)
    status = trainer.fit()
    assert status["state"] == "finished" and status["precision"] == f"mixed_{half}"
    assert {layer.compute_dtype for layer in trainer.parts.networks["generator"].layers if layer.weights} == {half}
    assert all(np.isfinite(r["g_loss"]) and np.isfinite(r["d_loss"]) for r in run.history_rows())
    images, _ = sample(load_generator(run), 4)
    assert images.dtype == np.uint8 and images.shape == (4, 28, 28, 1)


def test_the_worker_writes_the_familys_warning_into_the_status(store, monkeypatch):
    from gan_core import families

    seen = []

    def warning(config, recent):
        seen.append(len(recent))
        return f"saw {len(recent)} steps" if len(recent) >= 4 else None

    monkeypatch.setattr(families.get("dcgan"), "warning", warning)
    run = store.create(tiny(steps=5))
    status = train_run(run)
    assert status["warning"] == "saw 5 steps" and seen[-1] == 5


def test_a_float16_loss_scale_overflow_is_a_skipped_step_not_divergence(store, monkeypatch):
    """A GPU's float16 policy, forced on any device, with a loss scale so large that the first steps overflow."""
    import keras

    from gan_core.families import adversarial

    def huge_scale(lr, beta1, beta2, policy):
        return keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(lr, beta_1=beta1, beta_2=beta2), initial_scale=2.0**30)

    monkeypatch.setattr(devices, "precision_policy", lambda precision: "mixed_float16")
    monkeypatch.setattr(adversarial, "make_optimizer", huge_scale)
    run = store.create(tiny(steps=12, sample_every=6, checkpoint_every=6))
    status = train_run(run)
    assert status["state"] == "finished" and status["precision"] == "mixed_float16", status["message"]
    rows = run.history_rows()
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert all(np.isfinite(r["g_loss"]) and np.isfinite(r["d_loss"]) for r in rows)
    assert not np.isfinite(rows[0]["g_grad_norm"]), "the first steps overflow: the scaler skips them"
    unscaled = [r["g_grad_norm"] for r in rows if np.isfinite(r["g_grad_norm"])]
    assert unscaled and all(0 < norm < 100 for norm in unscaled), unscaled  # divided by a scale still near 1e9


def test_a_run_copied_without_its_empty_folders_resumes(store):
    """Git and zip archives keep no empty folders: a run folder may come back without samples/."""
    import shutil

    run = store.create(tiny(steps=6, checkpoint_every=3, sample_every=3))
    stop = threading.Event()
    train_run(run, stop_event=stop, on_progress=lambda p: p.step >= 3 and stop.set())
    shutil.rmtree(run.samples_dir)
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and [p.name for p in run.sample_paths()] == ["step_000006.png"]


def test_the_generator_restored_for_sampling_is_the_trainers_ema(store):
    """Samples come from the trainer's EMA copy, weight for weight (float32 training: samplers always run in float32)."""
    run = store.create(tiny(ema_decay=0.9, steps=4, sample_every=4, checkpoint_every=4, precision="float32"))
    trainer = Trainer(run)
    trainer.fit()
    ema = trainer.parts.networks["ema_generator"]
    assert trainer.parts.sampling_model is ema
    z = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    restored = load_generator(run).model(z, training=False).numpy()
    assert not np.allclose(ema(z, training=False), trainer.parts.networks["generator"](z, training=False))  # EMA is its own copy
    np.testing.assert_allclose(restored, ema(z, training=False).numpy(), rtol=0, atol=1e-6)


def test_a_sampler_whose_names_the_checkpoint_lacks_is_refused_not_left_random(store, monkeypatch):
    from gan_core.families.adversarial import AdversarialFamily

    run = store.create(tiny(ema_decay=0.9, steps=2, sample_every=2, checkpoint_every=2))
    train_run(run)
    built = AdversarialFamily.sampler
    monkeypatch.setattr(AdversarialFamily, "sampler", lambda self, config, spec: ("ema_gen", built(self, config, spec)[1]))
    with pytest.raises(RunError, match=r"checkpoint 2 holds no weights for its sampler 'ema_gen'"):
        load_generator(run)
