"""The progan family: block shapes at every stage, the fade-in arithmetic, equalized learning rate, pixel norm, the
schedule, training through every stage (a compiled step per stage, a grid at each stage's end), resume across stage
boundaries and after a SIGKILL in the middle of a fade-in, truncation, and a generator file plain Keras loads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_core import families
from gan_core.config import RunConfig, load_preset
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.families.base import DataSpec
from gan_core.families.blocks import equalized_conv, pixel_norm
from gan_core.families.progan import (
    Schedule,
    channel_list,
    discriminator_stages,
    faded_reals,
    generator_stages,
    growth_of,
    pad_images,
    padded_side,
    stage_count,
    stage_model,
)
from gan_core.generation import model_io
from gan_core.generation.sampling import checkpoint_steps, load_generator, sample
from gan_core.store.runs import RunStore, atomic_write_text
from gan_core.training.loop import Trainer, train_run
from tests.killed_worker import kill_and_compare

# batch 8: stage 0 for 2 steps, then each stage fades in over 2 steps and is stable for 2: stages start at steps 0, 2, 6, 10.
TINY = dict(
    family="progan", dataset="mnist-5k", channels="8,8,8,4", latent_dim=8, batch_size=8, fade_images=16, stable_images=16,
    steps=12, sample_every=100, checkpoint_every=100, seed=3, precision="float32",
)
SPEC = DataSpec((28, 28, 1), 10)
SIDES = [4, 8, 16, 32]


def _schedule_at(step: int) -> tuple[int, float]:
    """The tiny run's stage and alpha at a 0-based step, by hand."""
    starts = [0, 2, 6, 10]
    stage = max(s for s, start in enumerate(starts) if start <= step)
    return stage, 1.0 if stage == 0 else min(1.0, (step - starts[stage] + 1) / 2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny run trained through all four stages, its loaded generator, and how often its step was compiled."""
    trainer = Trainer(RunStore(tmp_path_factory.mktemp("runs")).create(RunConfig(**TINY)))
    status = trainer.fit()
    return trainer.run, status, load_generator(trainer.run), trainer.train_fn.experimental_get_tracing_count()


def test_every_stage_has_the_shapes_of_its_blocks_and_shares_the_weights_of_the_stage_before():
    assert padded_side((28, 28, 1)) == 32 and stage_count((28, 28, 1)) == 4 and stage_count((8, 8, 3)) == 2 and padded_side((33, 20, 1)) == 64
    G, D = generator_stages(8, [8, 8, 8, 4], 1), discriminator_stages([8, 8, 8, 4], 1)
    assert [tuple(out.shape[1:]) for out in G.outputs] == [(side, side, 1) for side in SIDES]
    assert [tuple(t.shape[1:]) for t in D.inputs] == [(side, side, 1) for side in SIDES] + [(1, 1, 1)]
    assert all(tuple(out.shape[1:]) == (1,) for out in D.outputs)
    for net, first in ((G, lambda s: 0), (D, lambda s: s)):
        used = [{id(v) for v in stage_model(net, s, first(s)).trainable_variables} for s in range(4)]
        assert [len(ids) for ids in used] == sorted(len(ids) for ids in used) and len({len(ids) for ids in used}) == 4
        assert set().union(*used) == {id(v) for v in net.trainable_variables}  # every weight is some stage's, none is a copy
        assert len(used[-1]) == len(net.trainable_variables) - 4  # the last stage skips the image layers of the first two
    key, sampler = families.get("progan").sampler(RunConfig(**TINY), SPEC)
    assert key == "generator" and sampler.outputs[0].shape[1:] == (28, 28, 1) and growth_of(sampler) == (0, 1.0)


def test_a_new_block_fades_in_over_the_upsampled_output_of_the_stage_before():
    G = generator_stages(8, [8, 8, 8, 4], 1)
    z = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    at = lambda alpha: [np.asarray(image) for image in G([z, np.full((3, 1, 1, 1), alpha, np.float32)])]  # noqa: E731
    none, half, full = at(0.0), at(0.5), at(1.0)
    np.testing.assert_allclose(none[1], np.repeat(np.repeat(none[0], 2, axis=1), 2, axis=2), atol=1e-6)
    assert np.abs(full[1] - none[1]).max() > 1e-3
    np.testing.assert_allclose(np.arctanh(half[1]), (np.arctanh(none[1]) + np.arctanh(full[1])) / 2, atol=1e-4)
    np.testing.assert_allclose(none[0], full[0])


def test_real_images_are_padded_with_background_pooled_to_the_stage_and_faded_the_same_way():
    images = tf.constant(np.random.default_rng(1).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32))
    padded = pad_images(images, 32)
    assert padded.shape == (2, 32, 32, 1) and np.all(padded[:, :2] == -1) and np.all(padded[:, :, -2:] == -1)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], images)
    at_16 = faded_reals(padded, 2, tf.constant(1.0))
    np.testing.assert_allclose(at_16[0, 0, 0, 0], np.mean(padded[0, :2, :2, 0]), atol=1e-6)
    before = faded_reals(padded, 2, tf.constant(0.0))
    np.testing.assert_allclose(before[:, ::2, ::2], faded_reals(padded, 1, tf.constant(1.0)), atol=1e-6)
    np.testing.assert_allclose(faded_reals(padded, 2, tf.constant(0.25)), 0.25 * at_16 + 0.75 * before, atol=1e-6)


def test_the_schedule_gives_each_step_its_stage_and_alpha():
    schedule = Schedule.of(RunConfig(**TINY), SPEC.image_shape)
    assert (schedule.stages, schedule.fade, schedule.stable) == (4, 2, 2)
    assert [schedule.start(s) for s in range(4)] == [0, 2, 6, 10]
    for step in range(14):
        stage = int(schedule.stage_at(step))
        assert (stage, float(schedule.alpha(step, stage))) == _schedule_at(step)
    assert [p.start for p in families.get("progan").phases(RunConfig(**TINY), SPEC)] == [0, 2, 6, 10]
    assert [p.label for p in families.get("progan").phases(RunConfig(**TINY), SPEC)] == ["4x4", "8x8", "16x16", "32x32"]


def test_equalized_convolutions_scale_unit_normal_weights_by_hes_constant_and_pixel_norm_gives_unit_mean_square():
    x = keras.Input((5, 5, 6))
    model = keras.Model(x, equalized_conv(x, 4, 3, "conv"))
    kernel = np.asarray(model.get_layer("conv").kernel)
    assert abs(kernel.std() - 1) < 0.25 and abs(model.get_layer("conv_he_scale").scale - np.sqrt(2 / (3 * 3 * 6))) < 1e-7
    inputs = np.random.default_rng(2).standard_normal((2, 5, 5, 6)).astype(np.float32)
    plain = keras.layers.Conv2D(4, 3, padding="same")
    plain.build((None, 5, 5, 6))
    plain.set_weights([kernel * np.sqrt(2 / 54), np.asarray(model.get_layer("conv").bias)])
    np.testing.assert_allclose(np.asarray(model(inputs)), np.asarray(plain(inputs)), atol=1e-5)
    y = keras.Input((3, 3, 16))
    normed = np.asarray(keras.Model(y, pixel_norm(y, "pn"))(inputs[:, :3, :3, :1] * np.arange(1, 17, dtype=np.float32)))
    np.testing.assert_allclose(np.mean(normed**2, axis=-1), 1.0, rtol=1e-4)


def test_settings_and_data_are_checked_in_one_sentence_and_the_preset_loads():
    for bad in ("8,x", "8,0", "8,,8", "1,2,3,4,5,6,7,8,9", "10000"):
        with pytest.raises(ConfigError, match=rf"^channels must be one to eight whole numbers from 1 to 9999 separated by commas \(one per resolution from 4x4 up\); got '{bad}'\.$"):
            RunConfig(**TINY | {"channels": bad})
    assert channel_list(RunConfig(**TINY | {"channels": "64, 32 ,16,8"}).channels) == [64, 32, 16, 8]
    with pytest.raises(ConfigError, match=r"^channels lists 2 resolutions but 'mnist-5k' grows through 4 \(4x4 to 32x32\); give 4 numbers"):
        families.get("progan").check_data(RunConfig(**TINY | {"channels": "8,8"}), ImageSet(np.zeros((4, 28, 28, 1), np.uint8), None, (), "mnist-5k"))
    config = load_preset("progan")
    assert config.family == "progan" and len(config.channels.split(",")) == 4


def test_a_run_grows_through_every_stage_with_a_grid_at_each_stages_end_compiling_each_stage_once(trained):
    run, status, loaded, traces = trained
    assert status["state"] == "finished" and checkpoint_steps(run) == [12] and traces == 4 and "last phase" not in status["message"]
    assert [(p["start"], p["label"]) for p in status["phases"]] == [(0, "4x4"), (2, "8x8"), (6, "16x16"), (10, "32x32")]
    rows = run.history_rows()
    assert [int(r["step"]) for r in rows] == list(range(1, 13))
    assert [(int(float(r["stage"])), float(r["alpha"])) for r in rows] == [_schedule_at(step) for step in range(12)]
    assert all(np.isfinite(float(r[name])) for r in rows for name in ("g_loss", "d_loss", "r1_penalty"))
    assert sorted(p.name for p in run.samples_dir.glob("*.png")) == [f"step_{s:06d}.png" for s in (0, 2, 6, 10, 12)]
    assert growth_of(loaded.model) == (3, 1.0)
    pictures, labels = sample(loaded, 5, seed=7)
    assert pictures.shape == (5, 28, 28, 1) and pictures.dtype == np.uint8 and labels is None


def test_truncation_one_leaves_samples_unchanged_and_zero_draws_g_of_zero(trained):
    _, _, loaded, _ = trained
    plain, _ = sample(loaded, 6, seed=2)
    np.testing.assert_array_equal(sample(loaded, 6, seed=2, truncation=1.0)[0], plain)
    average, _ = sample(loaded, 6, seed=2, truncation=0.0)
    assert all(np.array_equal(image, average[0]) for image in average) and not np.array_equal(average, plain)


def test_a_run_resumed_in_the_middle_of_a_fade_in_carries_on_across_the_next_stages(tmp_path):
    config = RunConfig(**TINY | {"steps": 3, "checkpoint_every": 3})
    run = RunStore(tmp_path).create(config)
    short = train_run(run)
    assert growth_of(load_generator(run).model) == _schedule_at(2)  # stage 1, alpha 0.5
    assert "ends at step 3, before its last phase (32x32) starts at step 10: it trains up to 8x8 only" in short["message"]
    atomic_write_text(run.config_path, config.replace(steps=12).to_json())
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and status["message"].startswith("Resumed from step 3")
    rows = run.history_rows()
    assert [(int(r["step"]), int(float(r["stage"])), float(r["alpha"])) for r in rows] == [(s + 1, *_schedule_at(s)) for s in range(12)]
    assert growth_of(load_generator(run).model) == (3, 1.0)


def test_the_generator_downloads_as_a_file_plain_keras_loads(trained, tmp_path):
    run, _, loaded, _ = trained
    files = {download.label: download for download in model_io.run_downloads(run, None)}
    assert "Generator (.keras)" in files
    path = tmp_path / "generator.keras"
    path.write_bytes(files["Generator (.keras)"].data)
    plain = keras.saving.load_model(path, safe_mode=True)
    z = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    image = np.asarray(plain(z))
    assert image.shape == (4, 28, 28, 1)
    np.testing.assert_allclose(image, np.asarray(loaded.model(z)), atol=1e-5)


def test_a_worker_killed_in_the_middle_of_a_fade_in_resumes_at_the_same_stage_and_alpha(job_store):
    """SIGKILL during stage 1's long fade-in: the newest checkpoint holds the unbroken run's state (growth step, stored
    stage and alpha, both networks, the EMA), and the resumed run goes on with the alpha the schedule gives."""
    config = RunConfig(**TINY | {"steps": 5000, "fade_images": 8 * 4000, "stable_images": 8, "checkpoint_every": 3, "sample_every": 1000})
    run, newest, items = kill_and_compare(job_store, config)
    assert {"generator_stages", "ema_generator_stages", "discriminator_stages", "generator", "growth_step"} <= set(items)
    assert 1 < newest < 4000 and int(items["growth_step"].numpy()) == newest
    stage, alpha = growth_of(items["generator"])
    assert stage == 1 and alpha == pytest.approx((newest - 1) / 4000)

    atomic_write_text(run.config_path, config.replace(steps=newest + 3).to_json())
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and f"Resumed from step {newest}" in status["message"]
    rows = run.history_rows()
    assert [int(r["step"]) for r in rows] == list(range(1, newest + 4))
    assert [float(r["alpha"]) for r in rows[1:]] == pytest.approx([step / 4000 for step in range(1, newest + 3)])
