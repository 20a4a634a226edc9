"""The lapgan family: pyramid arithmetic, network shapes, one sampler for the whole pyramid, training,
a worker killed by SIGKILL that resumes with every level restored, and a generator plain Keras loads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_core import families
from gan_core.config import RunConfig, load_preset
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.families.base import DataSpec
from gan_core.families.lapgan import LEVELS, compose, downsample, level_shapes, pyramid_images, real_pyramid, upsampler
from gan_core.generation import latents
from gan_core.generation.sampling import checkpoint_steps, export_generator, load_generator, sample
from gan_core.store.runs import RunStore, atomic_write_text
from gan_core.training.loop import Trainer, train_run
from tests.killed_worker import kill_and_compare

TINY = dict(
    family="lapgan", dataset="mnist-5k", width=0.125, latent_dim=8, noise_dim=4, batch_size=16, steps=4,
    sample_every=2, checkpoint_every=2, seed=3, precision="float32",
)
SPEC = DataSpec((28, 28, 1), 10)
LOSSES = [f"{role}_{level}" for role in ("g", "d") for level in LEVELS]


def images(n: int = 4, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, 28, 28, 1)).astype(np.float32))


def test_the_pyramid_halves_each_side_twice_and_residuals_rebuild_each_level_exactly():
    pyramid = real_pyramid(images())
    assert [tuple(level.shape[1:]) for level in pyramid] == level_shapes((28, 28, 1)) == [(7, 7, 1), (14, 14, 1), (28, 28, 1)]
    for coarser, finer in zip(pyramid, pyramid[1:]):
        upsampled = upsampler()(coarser)
        residual = finer - upsampled
        np.testing.assert_allclose(upsampled + residual, finer, atol=1e-6)
        assert float(tf.reduce_mean(tf.abs(residual))) > 0.01  # random pixels: the detail is not all in the coarse image


def test_downsampling_averages_each_2x2_block_and_a_flat_image_stays_flat():
    block = tf.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
    np.testing.assert_allclose(downsample(block)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])
    flat = tf.fill([1, 8, 8, 1], 0.25)
    np.testing.assert_allclose(upsampler()(downsample(flat)), flat, atol=1e-6)


def test_the_sampler_is_the_pyramid_of_its_level_generators():
    config = RunConfig(**TINY)
    family = families.get("lapgan")
    key, sampler = family.sampler(config, SPEC)
    assert key == "generator" and sampler.inputs[0].shape[-1] == 8 + 2 * 4
    z = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    levels = pyramid_images(sampler, config, z)
    assert [level.shape for level in levels] == [(3, 7, 7, 1), (3, 14, 14, 1), (3, 28, 28, 1)]
    np.testing.assert_allclose(np.asarray(sampler(z)), levels[-1], atol=1e-5)
    assert all(level.min() >= -1 and level.max() <= 1 for level in levels)
    # The coarse image depends only on the first latent_dim values: new fine noise changes the detail alone.
    other = z.copy()
    other[:, -4:] = np.random.default_rng(2).standard_normal((3, 4))
    redrawn = pyramid_images(sampler, config, other)
    np.testing.assert_allclose(redrawn[1], levels[1], atol=1e-6)
    assert not np.allclose(redrawn[2], levels[2])


def test_the_pyramid_view_redraws_the_finest_level_alone(tmp_path):
    run = RunStore(tmp_path / "runs").create(RunConfig(**TINY | {"steps": 2}))
    train_run(run)
    loaded = load_generator(run)
    assert latents.stage_view(loaded) == "Pyramid"
    rows, names = latents.stage_images(loaded, 3, seed=5)
    assert names == ["7x7", "14x14", "28x28"] and rows.shape == (9, 28, 28, 1) and rows.dtype == np.uint8
    redrawn, _ = latents.stage_images(loaded, 3, seed=5, redraws=1)
    coarse_and_middle = [i for i in range(9) if i % 3 < 2]
    np.testing.assert_array_equal(redrawn[coarse_and_middle], rows[coarse_and_middle])
    assert not np.array_equal(redrawn[2::3], rows[2::3])
    np.testing.assert_array_equal(latents.stage_images(loaded, 3, seed=5, redraws=1)[0], redrawn)  # the same redraw again
    grid, _, _ = latents.grid_for(loaded, 3, seed=5)
    np.testing.assert_array_equal(grid, rows[2::3])  # the pyramid ends in the digits the grid shows


def test_network_shapes_at_every_level():
    config = RunConfig(**TINY)
    family = families.get("lapgan")
    generators, discriminators = family.generators(config, SPEC), family.discriminators(config, SPEC)
    assert [g.name for g in generators] == [f"g_{level}" for level in LEVELS]
    assert generators[0].output.shape[1:] == (7, 7, 1)
    for generator, shape in zip(generators[1:], level_shapes((28, 28, 1))[1:]):
        condition, noise = generator.inputs
        assert condition.shape[1:] == shape and noise.shape[-1] == 4 and generator.output.shape[1:] == shape
    assert [len(d.inputs) for d in discriminators] == [1, 2, 2]
    assert all(d.output.shape[-1] == 1 for d in discriminators)
    composed = compose(keras.Input(shape=(16,)), generators, 8, 4)
    assert [tuple(t.shape[1:]) for t in composed] == level_shapes((28, 28, 1))


def test_settings_are_validated_in_one_sentence_and_odd_sides_are_refused():
    with pytest.raises(ConfigError, match=r"^noise_dim must be an integer between 1 and 256; got 0\.$"):
        RunConfig(**TINY | {"noise_dim": 0})
    with pytest.raises(ConfigError, match=r"^gp_weight must be above 0 with loss wgan-gp; got 0\.$"):
        RunConfig(**TINY | {"loss": "wgan-gp", "gp_weight": 0.0})
    odd = ImageSet(np.zeros((4, 30, 30, 1), np.uint8), None, (), "odd.npz")
    with pytest.raises(ConfigError, match=r"needs image sides divisible by 4 .* has 30x30 images\.$"):
        families.get("lapgan").check_data(RunConfig(**TINY), odd)


def test_the_preset_loads():
    config = load_preset("lapgan")
    assert config.family == "lapgan" and config.dataset == "mnist-5k"
    assert config.ema_decay == 0.999 and RunConfig(**TINY).ema_decay == 0.0  # since 2026-12-06; old runs' configs: no EMA


@pytest.mark.parametrize("loss", ["bce", "wgan-gp"])
def test_a_tiny_run_trains_every_level_checkpoints_and_generates(tmp_path, loss):
    store = RunStore(tmp_path / "runs")
    run = store.create(RunConfig(**TINY | {"loss": loss}))
    status = train_run(run)
    assert status["state"] == "finished" and checkpoint_steps(run) == [2, 4]
    rows = run.history_rows()
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r[name])) for r in rows for name in LOSSES)
    per_level = [f"{name}_{level}" for name in ("d_fake",) for level in LEVELS]
    assert [m.name for m in run.metrics()] == LOSSES + per_level
    assert sorted(p.name for p in run.samples_dir.glob("*.png"))[-1].endswith("4.png")
    pictures, labels = sample(load_generator(run), 5, seed=7)
    assert pictures.shape == (5, 28, 28, 1) and pictures.dtype == np.uint8 and labels is None


def test_a_killed_worker_resumes_with_every_network_and_optimizer_of_every_level_restored(job_store):
    """SIGKILL mid-run: the newest checkpoint holds what an unbroken run of as many steps holds, and the run resumes from it."""
    config = RunConfig(**TINY | {"steps": 5000, "checkpoint_every": 3, "sample_every": 1000})
    run, newest, items = kill_and_compare(job_store, config)
    assert {"g_coarse", "g_middle", "g_fine", "d_coarse", "d_middle", "d_fine", "generator"} <= set(items)

    atomic_write_text(run.config_path, config.replace(steps=newest + 3).to_json())
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and f"Resumed from step {newest}" in status["message"]
    assert [int(r["step"]) for r in run.history_rows()] == list(range(1, newest + 4))


def test_with_ema_every_level_samples_from_its_moving_average_and_the_restored_generator_is_it(tmp_path):
    """ema_decay 0.9: the pyramid sampler is made of the three EMA copies, each its own weights, and the generator restored
    for sampling draws what the trainer's sampler draws; without it (the default, old runs) no EMA network is built."""
    assert not [name for name in families.get("lapgan").build(RunConfig(**TINY), SPEC, False).networks if name.startswith("ema_")]
    run = RunStore(tmp_path / "runs").create(RunConfig(**TINY | {"ema_decay": 0.9}))
    trainer = Trainer(run)
    trainer.fit()
    networks = trainer.parts.networks
    assert trainer.parts.sampling_model is networks["generator"]
    for level in LEVELS:
        ema, raw = networks[f"ema_g_{level}"], networks[f"g_{level}"]
        assert networks["generator"].get_layer(f"g_{level}") is ema
        assert not all(np.allclose(a, b) for a, b in zip(ema.get_weights(), raw.get_weights())), level
    z = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    drawn = networks["generator"](z, training=False).numpy()
    np.testing.assert_allclose(load_generator(run).model(z, training=False).numpy(), drawn, rtol=0, atol=1e-6)


def test_the_exported_generator_loads_in_plain_keras_and_draws_the_same_digits(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.create(RunConfig(**TINY | {"steps": 2}))
    train_run(run)
    path = export_generator(run)
    plain = keras.saving.load_model(path)
    z = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(plain(z)), np.asarray(load_generator(run).model(z)), atol=1e-5)
