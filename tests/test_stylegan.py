"""The stylegan family: network shapes, AdaIN and noise built from Keras layers, minibatch stddev, style mixing,
truncation (here and for the other noise-to-image families), training, a SIGKILLed worker's resume, the style
views, and generator, mapping and synthesis files that plain Keras loads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_core import families
from gan_core.config import RunConfig, load_preset
from gan_core.data.images import to_uint8
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError, RunError
from gan_core.families.base import DataSpec
from gan_core.families.blocks import minibatch_stddev
from gan_core.families.stylegan import StyleSampler, block_sizes, mixed_styles, truncate
from gan_core.generation import latents, model_io, styles
from gan_core.generation.sampling import checkpoint_steps, load_generator, sample
from gan_core.store.runs import RunStore, atomic_write_text
from gan_core.training.loop import train_run
from tests.killed_worker import kill_and_compare

TINY = dict(
    family="stylegan", dataset="mnist-5k", width=0.125, latent_dim=8, w_dim=8, mapping_layers=2, batch_size=16, steps=4,
    sample_every=2, checkpoint_every=2, seed=3, precision="float32",
)
SPEC = DataSpec((28, 28, 1), 10)
SIZES = [(7, 7), (14, 14), (14, 14), (28, 28), (28, 28)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny StyleGAN run trained 4 steps, and its loaded generator."""
    run = RunStore(tmp_path_factory.mktemp("runs")).create(RunConfig(**TINY))
    status = train_run(run)
    return run, status, load_generator(run)


def test_every_network_has_the_shapes_of_its_blocks():
    config = RunConfig(**TINY)
    family = families.get("stylegan")
    assert block_sizes((28, 28, 1)) == SIZES and block_sizes((32, 16, 3)) == [(8, 4), (16, 8), (16, 8), (32, 16), (32, 16)]
    mapping, synthesis = family.mapping(config), family.synthesis(config, SPEC)
    assert mapping.inputs[0].shape[-1] == 8 and mapping.output.shape[-1] == 8
    assert [tuple(t.shape[1:]) for t in synthesis.inputs] == [(8,)] * 5 + [(h, w, 1) for h, w in SIZES]
    assert synthesis.output.shape[1:] == (28, 28, 1)
    assert family.discriminator(config, SPEC).output.shape[1:] == (1,)
    key, generator = family.sampler(config, SPEC)
    assert key == "generator" and generator.inputs[0].shape[-1] == 8 and generator.output.shape[1:] == (28, 28, 1)
    assert {layer.name for layer in generator.layers} >= {"mapping", "synthesis", *(f"fixed_noise_{i}" for i in range(5))}


def test_adain_normalizes_each_channel_then_applies_the_style_scale_and_shift():
    synthesis = families.get("stylegan").synthesis(RunConfig(**TINY), SPEC)
    block = keras.Model(synthesis.inputs, synthesis.get_layer("block_0_instance_norm").output)
    ws = [np.random.default_rng(i).standard_normal((3, 8)).astype(np.float32) for i in range(5)]
    noises = [np.zeros((3, h, w, 1), np.float32) for h, w in SIZES]
    normalized = np.asarray(block([*ws, *noises]))
    np.testing.assert_allclose(normalized.mean(axis=(1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(axis=(1, 2)), 1, atol=0.01)
    modulated = np.asarray(keras.Model(synthesis.inputs, synthesis.get_layer("block_0_adain").output)([*ws, *noises]))
    scale = np.asarray(synthesis.get_layer("block_0_style_scale")(ws[0]))
    shift = np.asarray(synthesis.get_layer("block_0_style_shift")(ws[0]))
    np.testing.assert_allclose(modulated, normalized * scale[:, None, None, :] + shift[:, None, None, :], atol=1e-5)


def test_noise_strengths_start_at_zero_and_the_constant_is_the_same_for_every_w():
    synthesis = families.get("stylegan").synthesis(RunConfig(**TINY), SPEC)
    assert all(not np.any(synthesis.get_layer(f"block_{i}_noise_strength").kernel) for i in range(5))
    constant = keras.Model(synthesis.inputs, synthesis.get_layer("constant_map").output)
    ws = [np.random.default_rng(i).standard_normal((2, 8)).astype(np.float32) * 10 for i in range(5)]
    maps = np.asarray(constant([*ws, *(np.zeros((2, h, w, 1), np.float32) for h, w in SIZES)]))
    assert maps.shape == (2, 7, 7, 32) and np.abs(maps).max() > 0.01
    np.testing.assert_array_equal(maps[0], maps[1])


def test_minibatch_stddev_appends_the_mean_feature_deviation_over_the_batch():
    x = np.random.default_rng(0).standard_normal((6, 4, 4, 3)).astype(np.float32)
    out = np.asarray(minibatch_stddev()(x))
    assert out.shape == (6, 4, 4, 4)
    np.testing.assert_array_equal(out[..., :3], x)
    np.testing.assert_allclose(out[..., 3], np.sqrt(x.var(axis=0) + 1e-8).mean(), rtol=1e-5)
    same = np.asarray(minibatch_stddev()(np.repeat(x[:1], 6, axis=0)))
    np.testing.assert_allclose(same[..., 3], 1e-4, rtol=1e-3)  # a batch of copies: no variety at all


def test_style_mixing_switches_rows_to_the_second_w_from_their_cut_on():
    w, w_mix = tf.zeros([3, 2]), tf.ones([3, 2])
    ws = mixed_styles(w, w_mix, tf.constant([True, False, True]), tf.constant([1, 1, 4]), 5)
    uses_mix = np.array([[float(t[row, 0]) for t in ws] for row in range(3)])
    np.testing.assert_array_equal(uses_mix, [[0, 1, 1, 1, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1]])


def test_truncation_pulls_w_towards_the_average():
    w, w_avg = np.array([[2.0, -2.0]]), np.array([1.0, 0.0])
    assert truncate(w, w_avg, 1.0) is w
    np.testing.assert_allclose(truncate(w, w_avg, 0.0), [[1.0, 0.0]])
    np.testing.assert_allclose(truncate(w, w_avg, 0.5), [[1.5, -1.0]])


def test_settings_are_validated_the_preset_loads_and_odd_sides_are_refused():
    with pytest.raises(ConfigError, match=r"^mapping_layers must be an integer between 1 and 8; got 0\.$"):
        RunConfig(**TINY | {"mapping_layers": 0})
    with pytest.raises(ConfigError, match=r"^style_mixing must be a number between 0 and 1; got 1\.5\.$"):
        RunConfig(**TINY | {"style_mixing": 1.5})
    config = load_preset("stylegan")
    assert config.family == "stylegan" and config.dataset == "mnist-5k"
    odd = ImageSet(np.zeros((4, 30, 30, 1), np.uint8), None, (), "odd.npz")
    with pytest.raises(ConfigError, match=r"needs image sides divisible by 4 .* has 30x30 images\.$"):
        families.get("stylegan").check_data(RunConfig(**TINY), odd)


def test_a_tiny_run_trains_checkpoints_tracks_the_average_w_and_generates(trained):
    run, status, loaded = trained
    assert status["state"] == "finished" and checkpoint_steps(run) == [2, 4]
    rows = run.history_rows()
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert [m.name for m in run.metrics()][-2:] == ["d_grad_norm", "r1_penalty"]  # feature matching off: no column
    assert all(np.isfinite(float(r[name])) for r in rows for name in ("g_loss", "d_loss", "r1_penalty"))
    assert all(float(r["r1_penalty"]) > 0 for r in rows)
    assert sorted(p.name for p in run.samples_dir.glob("*.png"))[-1].endswith("4.png")
    w_avg = np.asarray(loaded.partners["w_avg"])
    assert w_avg.shape == (8,) and np.abs(w_avg).max() > 0  # moved from its zeros by 4 batches of w
    pictures, labels = sample(loaded, 5, seed=7)
    assert pictures.shape == (5, 28, 28, 1) and pictures.dtype == np.uint8 and labels is None


def test_truncation_one_leaves_samples_unchanged_and_zero_gives_the_average_w_image(trained):
    _, _, loaded = trained
    plain, _ = sample(loaded, 6, seed=2)
    np.testing.assert_array_equal(sample(loaded, 6, seed=2, truncation=1.0)[0], plain)
    average, _ = sample(loaded, 6, seed=2, truncation=0.0)
    sampler = StyleSampler(loaded.model, loaded.partners["w_avg"])
    expected = to_uint8(sampler.images(np.asarray(loaded.partners["w_avg"])[None, :]))
    assert np.abs(average.astype(int) - expected.astype(int)).max() <= 1 and all(np.array_equal(image, average[0]) for image in average)
    half, _ = sample(loaded, 6, seed=2, truncation=0.5)
    assert not np.array_equal(half, plain) and not np.array_equal(half, average)
    for bad in (-0.1, 1.5):
        with pytest.raises(RunError, match=rf"^truncation must be between 0 and 1; got {bad}\.$"):
            sample(loaded, 2, truncation=bad)


@pytest.fixture(scope="module")
def dcgan(tmp_path_factory):
    """A tiny dcgan run's loaded generator: a family that is fed z directly and has no styles."""
    run = RunStore(tmp_path_factory.mktemp("dcgan")).create(
        RunConfig(family="dcgan", dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=2, precision="float32")
    )
    train_run(run)
    return load_generator(run)


def test_truncation_of_a_noise_fed_generator_shrinks_z(dcgan):
    loaded = dcgan
    plain, _ = sample(loaded, 4, seed=1)
    np.testing.assert_array_equal(sample(loaded, 4, seed=1, truncation=1.0)[0], plain)
    zero, _ = sample(loaded, 4, seed=1, truncation=0.0)
    centre = to_uint8(np.asarray(loaded.model(np.zeros((1, 8), np.float32), training=False)))
    np.testing.assert_array_equal(zero, np.repeat(centre, 4, axis=0))
    grid, _, _ = latents.grid_for(loaded, 4, seed=1, truncation=0.0)
    np.testing.assert_array_equal(grid, zero)


def test_the_mixing_grid_takes_coarse_styles_from_rows_and_fine_styles_from_columns(trained):
    _, _, loaded = trained
    assert styles.is_style_based(loaded) and styles.block_names(loaded) == ["7x7", "14x14", "14x14", "28x28", "28x28"]
    images, cols = styles.mixing_grid(loaded, [1, 2], [3, 4, 5], cut=2)
    assert cols == 4 and images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
    assert not images[0].any()  # the blank corner
    column_sources, _ = styles.mixing_grid(loaded, [3], [3, 4, 5], cut=2)
    np.testing.assert_array_equal(images[1:4], column_sources[1:4])  # the top row: the column seeds' own images
    np.testing.assert_array_equal(column_sources[5], column_sources[1])  # a seed mixed with itself is itself
    other_cut, _ = styles.mixing_grid(loaded, [1, 2], [3, 4, 5], cut=4)
    np.testing.assert_array_equal(other_cut[[0, 1, 2, 3, 4, 8]], images[[0, 1, 2, 3, 4, 8]])
    assert not np.array_equal(other_cut[5:8], images[5:8])
    quiet, _ = styles.mixing_grid(loaded, [1, 2], [3, 4, 5], cut=2, noise=False)
    assert quiet.shape == images.shape
    with pytest.raises(RunError, match=r"^the cut-over block must be between 1 and 4; got 5\.$"):
        styles.mixing_grid(loaded, [1], [2], cut=5)


def test_paths_in_z_and_in_w_share_their_ends_and_differ_between(trained):
    _, _, loaded = trained
    images, cols = styles.z_and_w_paths(loaded, 1, 2, steps=6)
    assert cols == 6 and images.shape == (12, 28, 28, 1)
    in_z, in_w = images[:6], images[6:]
    np.testing.assert_array_equal(in_z[[0, -1]], in_w[[0, -1]])
    # sample() draws a batch of one, the paths a batch of 12: the CPU kernels may round a pixel across 0.5 differently (seen once, 1 of 784)
    np.testing.assert_allclose(in_z[0].astype(int), sample(loaded, 1, seed=1)[0][0].astype(int), rtol=0, atol=1)
    assert not np.array_equal(in_z[1:-1], in_w[1:-1])


def test_style_views_refuse_other_families_in_one_sentence(dcgan):
    loaded = dcgan
    assert not styles.is_style_based(loaded)
    with pytest.raises(RunError, match=r"^The dcgan family has no styles to mix; style views need a StyleGAN run's checkpoint\.$"):
        styles.mixing_grid(loaded, [1], [2], cut=1)


def test_generator_mapping_and_synthesis_download_as_files_plain_keras_loads(trained, tmp_path):
    run, _, loaded = trained
    files = {download.label: download for download in model_io.run_downloads(run, None)}
    assert set(files) == {"Generator (.keras)", "Mapping (.keras)", "Synthesis (.keras)", "Whole run (.zip)"}
    plain = {}
    for role in ("generator", "mapping", "synthesis"):
        path = tmp_path / f"{role}.keras"
        path.write_bytes(files[f"{role.capitalize()} (.keras)"].data)
        plain[role] = keras.saving.load_model(path, safe_mode=True)
    z = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    image = np.asarray(plain["generator"](z))
    np.testing.assert_allclose(image, np.asarray(loaded.model(z)), atol=1e-5)
    w = np.asarray(plain["mapping"](z))
    fixed = StyleSampler(loaded.model, loaded.partners["w_avg"]).fixed_noise
    np.testing.assert_allclose(np.asarray(plain["synthesis"]([w] * 5 + [np.repeat(m, 4, axis=0) for m in fixed])), image, atol=1e-5)


def test_a_killed_worker_resumes_with_both_networks_their_ema_and_the_average_w_restored(job_store):
    """SIGKILL mid-run: the newest checkpoint holds what an unbroken run of as many steps holds, and the run resumes from it."""
    config = RunConfig(**TINY | {"steps": 5000, "checkpoint_every": 3, "sample_every": 1000})
    run, newest, items = kill_and_compare(job_store, config)
    assert {"mapping", "synthesis", "ema_mapping", "ema_synthesis", "discriminator", "generator", "mapping_optimizer", "w_avg"} <= set(items)

    atomic_write_text(run.config_path, config.replace(steps=newest + 3).to_json())
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and f"Resumed from step {newest}" in status["message"]
    assert [int(r["step"]) for r in run.history_rows()] == list(range(1, newest + 4))
