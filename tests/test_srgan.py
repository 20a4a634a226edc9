"""The srgan family: degradations, sub-pixel upsampling, a trained tiny run, its pairs, a worker killed by SIGKILL that resumes
with both networks and their optimizers restored, and its plain-Keras generator."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_core import families
from gan_core.config import RunConfig, load_preset
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.families.base import DataSpec
from gan_core.families.srgan import baseline, batch_psnr, degrade, pixel_shuffle
from gan_core.generation.sampling import checkpoint_steps, export_generator, load_generator, sample
from gan_core.store.runs import RunStore, atomic_write_text
from gan_core.training.loop import train_run
from tests.killed_worker import kill_and_compare

TINY = dict(
    family="srgan", dataset="mnist-5k", width=0.125, blocks=1, batch_size=16, steps=4, sample_every=2,
    checkpoint_every=2, seed=4, precision="float32", feature_weight=0.0, warmup_steps=2,
)
SPEC = DataSpec((28, 28, 1), 10)


def digits(n: int = 4) -> tf.Tensor:
    return tf.constant(np.random.default_rng(0).uniform(-1, 1, (n, 28, 28, 1)).astype(np.float32))


@pytest.mark.parametrize("degradation, side", [("x2", 14), ("x4", 7), ("blur", 28), ("noise", 28), ("blocks", 28)])
def test_each_degradation_keeps_the_range_and_gives_the_generator_its_input_shape(degradation, side):
    noise = tf.random.stateless_normal([4, 28, 28, 1], seed=[1, 2])
    out = degrade(digits(), degradation, noise, 0.3)
    assert tuple(out.shape) == (4, side, side, 1)
    assert float(tf.reduce_min(out)) >= -1 and float(tf.reduce_max(out)) <= 1
    config = RunConfig(**TINY | {"degradation": degradation})
    assert families.get("srgan").generator(config, SPEC).input_shape[1:] == (side, side, 1)


def test_downscaling_averages_blocks_blur_keeps_flat_images_and_blocks_have_four_levels():
    block = tf.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1) / 16)
    np.testing.assert_allclose(degrade(block, "x2")[0, :, :, 0], np.array([[2.5, 4.5], [10.5, 12.5]]) / 16)
    flat = tf.fill([1, 12, 12, 1], 0.25)
    np.testing.assert_allclose(degrade(flat, "blur"), flat, atol=1e-6)
    assert float(tf.math.reduce_std(degrade(digits(), "blur"))) < float(tf.math.reduce_std(digits()))
    blocky = degrade(digits(), "blocks").numpy()
    np.testing.assert_allclose(np.unique(blocky), [-1, -1 / 3, 1 / 3, 1], atol=1e-6)  # random pixels: every level occurs
    np.testing.assert_array_equal(blocky[:, ::2, ::2], blocky[:, 1::2, 1::2])


def test_noise_is_the_given_noise_scaled_and_clipped():
    x = tf.zeros([1, 8, 8, 1])
    noise = tf.fill([1, 8, 8, 1], 2.0)
    np.testing.assert_allclose(degrade(x, "noise", noise, 0.3), 0.6)
    np.testing.assert_allclose(degrade(x, "noise", noise, 1.0), 1.0)


def test_pixel_shuffle_is_depth_to_space():
    x = np.random.default_rng(3).normal(size=(2, 3, 5, 8)).astype(np.float32)
    inputs = keras.Input(shape=(3, 5, 8))
    model = keras.Model(inputs, pixel_shuffle(inputs, 2))
    np.testing.assert_allclose(model(x), tf.nn.depth_to_space(x, 2), atol=1e-6)


def test_the_bicubic_baseline_and_psnr():
    low = degrade(digits(), "x4")
    config = RunConfig(**TINY)
    assert tuple(baseline(low, config, (28, 28, 1)).shape) == (4, 28, 28, 1)
    assert float(batch_psnr(digits(), digits())) == 100.0
    assert float(batch_psnr(tf.zeros([1, 4, 4, 1]), tf.fill([1, 4, 4, 1], 0.2))) == pytest.approx(10 * np.log10(4 / 0.04), rel=1e-5)


def test_settings_and_data_are_checked_in_one_sentence():
    with pytest.raises(ConfigError, match=r"^degradation must be one of x2, x4, blur, noise, blocks; got 'x3'\.$"):
        RunConfig(**TINY | {"degradation": "x3"})
    odd = ImageSet(np.zeros((4, 30, 30, 1), np.uint8), None, (), "odd.npz")
    with pytest.raises(ConfigError, match=r"^degradation=x4 needs image sides divisible by 4; 'odd.npz' has 30x30 images\.$"):
        families.get("srgan").check_data(RunConfig(**TINY), odd)
    even = ImageSet(np.zeros((4, 32, 32, 1), np.uint8), None, (), "plain.npz")
    with pytest.raises(ConfigError, match=r"^feature_weight above 0 needs a labelled dataset .* 'plain.npz' has no labels"):
        families.get("srgan").check_data(RunConfig(**TINY | {"feature_weight": 0.1}), even)


@pytest.mark.parametrize("preset", ["srgan", "restore"])
def test_the_presets_load(preset):
    config = load_preset(preset)
    assert config.family == "srgan" and config.dataset == "mnist-5k"


@pytest.mark.parametrize("degradation", ["x4", "noise"])
def test_a_tiny_run_trains_checkpoints_and_restores_held_out_digits(tmp_path, degradation):
    store = RunStore(tmp_path / "runs")
    run = store.create(RunConfig(**TINY | {"degradation": degradation}))
    status = train_run(run)
    assert status["state"] == "finished" and checkpoint_steps(run) == [2, 4]
    rows = run.history_rows()
    assert [m.name for m in run.metrics()] == [
        "g_loss", "d_loss", "pixel_mse", "feature_mse", "g_adversarial", "d_fake", "psnr", "psnr_baseline",
    ]
    assert all(np.isfinite(float(r[m])) for r in rows for m in ("g_loss", "d_loss", "psnr", "psnr_baseline"))
    assert all(float(r["feature_mse"]) == 0.0 for r in rows)
    loaded = load_generator(run)
    pictures, labels = sample(loaded, 5, seed=1)
    assert pictures.shape == (5, 28, 28, 1) and labels is None
    family = families.get("srgan")
    grid, cols = family.sample_grid(loaded.model, loaded.config, 10)
    columns = family.pairs(loaded.model, loaded.config, 3, seed=2)
    originals, labels = family.originals(loaded.config, 3, seed=2)
    assert list(columns) == (["Low-res (7x7)", "Bicubic", "SRGAN", "Original"] if degradation == "x4" else ["Degraded (noise)", "Restored", "Original"])
    assert cols == len(columns) and grid.shape == (8 * cols, 28, 28, 1)
    np.testing.assert_array_equal(columns["Original"].images, originals)
    assert all(column.labels is None or list(column.labels) == list(labels) for column in columns.values())
    assert {name for name, column in columns.items() if column.scored_against == "Original"} == set(list(columns)[-3:-1])


def test_the_feature_loss_uses_the_evaluator_of_the_dataset(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv("GAN_CACHE_DIR", str(cache_dir))
    run = RunStore(tmp_path / "runs").create(RunConfig(**TINY | {"feature_weight": 0.01, "steps": 2}))
    train_run(run)
    assert all(float(r["feature_mse"]) > 0 for r in run.history_rows())


def test_a_killed_worker_resumes_with_both_networks_and_their_optimizers_restored(job_store):
    """SIGKILL after the pixel-loss warm-up: the newest checkpoint holds what an unbroken run of as many steps holds, and
    the run resumes from it."""
    config = RunConfig(**TINY | {"steps": 5000, "checkpoint_every": 3, "sample_every": 1000})
    run, newest, items = kill_and_compare(job_store, config)
    assert {"generator", "discriminator", "g_optimizer", "d_optimizer"} <= set(items)

    atomic_write_text(run.config_path, config.replace(steps=newest + 3).to_json())
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and f"Resumed from step {newest}" in status["message"]
    assert [int(r["step"]) for r in run.history_rows()] == list(range(1, newest + 4))


def test_the_exported_generator_loads_in_plain_keras_image_in_image_out(tmp_path):
    run = RunStore(tmp_path / "runs").create(RunConfig(**TINY | {"steps": 2}))
    train_run(run)
    plain = keras.saving.load_model(export_generator(run))
    low = np.random.default_rng(0).uniform(-1, 1, (2, 7, 7, 1)).astype(np.float32)
    out = np.asarray(plain(low))
    assert out.shape == (2, 28, 28, 1)
    np.testing.assert_allclose(out, np.asarray(load_generator(run).model(low)), atol=1e-5)
