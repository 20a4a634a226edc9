"""Latent vectors and the image sets of the Generate page, on tiny trained runs."""

import numpy as np
import pytest

from gan_core.config import RunConfig
from gan_core.data.images import to_uint8
from gan_core.errors import RunError
from gan_core.families.adversarial import run_generator as generate
from gan_core.generation import latents
from gan_core.generation.sampling import load_generator, sample
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run

TINY = dict(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=3, checkpoint_every=3, seed=3)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    plain, conditional = store.create(RunConfig(**TINY)), store.create(RunConfig(**TINY, conditional=True))
    train_run(plain)
    train_run(conditional)
    return load_generator(plain), load_generator(conditional)


def test_slerp_starts_and_ends_at_the_inputs_and_interpolates_lengths():
    z0, z1 = latents.seeded_latents(2, 128, seed=7)
    path = latents.interpolate(z0, z1, 9)
    assert path.shape == (9, 128) and path.dtype == np.float32
    np.testing.assert_allclose(path[0], z0, atol=1e-5)
    np.testing.assert_allclose(path[-1], z1, atol=1e-5)
    norms = np.linalg.norm(path, axis=1)
    np.testing.assert_allclose(norms, np.linspace(np.linalg.norm(z0), np.linalg.norm(z1), 9), rtol=1e-4)


def test_straight_interpolation_shrinks_the_midpoint_but_slerp_does_not():
    z0, z1 = latents.seeded_latents(2, 256, seed=1)
    mean_norm = (np.linalg.norm(z0) + np.linalg.norm(z1)) / 2
    straight = latents.interpolate(z0, z1, 3, spherical=False)[1]
    np.testing.assert_allclose(straight, (z0 + z1) / 2, atol=1e-6)
    assert np.linalg.norm(straight) < 0.8 * mean_norm
    assert np.linalg.norm(latents.interpolate(z0, z1, 3)[1]) == pytest.approx(mean_norm, rel=1e-4)


def test_slerp_between_parallel_vectors_stays_finite():
    z = latents.seeded_latents(1, 16, seed=2)[0]
    path = latents.interpolate(z, 2 * z, 5)
    assert np.isfinite(path).all()
    np.testing.assert_allclose(path[-1], 2 * z, atol=1e-5)


def test_a_walk_changes_only_the_chosen_dimension():
    z = latents.seeded_latents(1, 10, seed=4)[0]
    walk = latents.latent_walk(z, 3, np.array([-2.0, 0.0, 2.0], np.float32))
    assert walk.shape == (3, 10)
    np.testing.assert_array_equal(walk[:, 3], [-2.0, 0.0, 2.0])
    np.testing.assert_array_equal(np.delete(walk, 3, axis=1), np.tile(np.delete(z, 3), (3, 1)))
    with pytest.raises(RunError, match="dimension must be between 0 and 9; got 10"):
        latents.latent_walk(z, 10, np.zeros(2))


def test_seeded_latents_are_deterministic_and_refuse_negative_seeds():
    np.testing.assert_array_equal(latents.seeded_latents(4, 8, 5), latents.seeded_latents(4, 8, 5))
    assert not np.allclose(latents.seeded_latents(4, 8, 5), latents.seeded_latents(4, 8, 6))
    with pytest.raises(RunError, match="seed must be 0 or more"):
        latents.seeded_latents(1, 8, -1)


def test_an_unconditional_grid_matches_the_cli_samples(loaded):
    plain, _ = loaded
    images, labels, cols = latents.grid_for(plain, 10, seed=4)
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8 and labels is None and cols == 4
    np.testing.assert_array_equal(images, sample(plain, 10, seed=4)[0])
    assert not np.array_equal(images, latents.grid_for(plain, 10, seed=5)[0])


def test_one_row_per_class_shares_each_columns_latent_vector(loaded):
    _, conditional = loaded
    images, labels, cols = latents.grid_for(conditional, 64, seed=2, label=latents.ROWS)
    assert images.shape == (60, 28, 28, 1) and cols == 6
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 6))
    z = latents.seeded_latents(6, 8, 2)
    expected = to_uint8(generate(conditional.model, np.tile(z, (10, 1)), labels))
    np.testing.assert_array_equal(images, expected)


def test_a_single_class_and_the_default_class_cycle(loaded):
    _, conditional = loaded
    images, labels, cols = latents.grid_for(conditional, 12, seed=0, label=7)
    assert images.shape[0] == 12 and set(labels) == {7} and cols == 4
    _, cycled, cols = latents.grid_for(conditional, 20, seed=0)
    np.testing.assert_array_equal(cycled, np.arange(20) % 10)
    assert cols == 10


def test_rows_need_a_conditional_generator(loaded):
    plain, conditional = loaded
    with pytest.raises(RunError, match="needs a conditional generator"):
        latents.grid_for(plain, 16, seed=0, label=latents.ROWS)
    with pytest.raises(RunError, match="label must be between 0 and 9; got 12"):
        latents.interpolation_images(conditional, 0, 1, 4, label=12)


def test_interpolation_images_run_from_seed_a_to_seed_b(loaded):
    plain, conditional = loaded
    images, labels, cols = latents.interpolation_images(plain, 3, 9, steps=6)
    assert images.shape == (6, 28, 28, 1) and labels is None and cols == 6
    first, last = sample(plain, 1, seed=3)[0][0], sample(plain, 1, seed=9)[0][0]
    assert np.abs(images[0].astype(int) - first).max() <= 1
    assert np.abs(images[-1].astype(int) - last).max() <= 1
    rows, labels, cols = latents.interpolation_images(conditional, 3, 9, steps=5, label=latents.ROWS)
    assert rows.shape == (50, 28, 28, 1) and cols == 5
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 5))
    with pytest.raises(RunError, match="steps must be between 2 and 64; got 1"):
        latents.interpolation_images(plain, 0, 1, steps=1)


def test_walk_images_vary_one_dimension_per_row(loaded):
    plain, conditional = loaded
    images, _, cols = latents.walk_images(plain, seed=1, dim=2, low=-3.0, high=3.0, steps=7)
    assert images.shape == (7, 28, 28, 1) and cols == 7
    assert not np.array_equal(images[0], images[-1])
    one_class, labels, _ = latents.walk_images(conditional, seed=1, dim=0, low=-1.0, high=1.0, steps=4, label=3)
    assert one_class.shape == (4, 28, 28, 1) and set(labels) == {3}


def test_class_choices_start_with_one_row_per_class(loaded):
    _, conditional = loaded
    choices = latents.class_choices(conditional)
    assert list(choices) == [latents.ROWS, *range(10)]
    assert choices[latents.ROWS] == "One row per class" and choices[4] == "4"


def test_a_one_stage_family_has_no_stage_view_and_asking_for_stages_is_one_sentence(loaded):
    plain, _ = loaded
    assert latents.stage_view(plain) == ""
    with pytest.raises(RunError, match=r"^The dcgan family draws in one stage; there are no stages to show\.$"):
        latents.stage_images(plain, 2, seed=0)
    with pytest.raises(RunError, match=r"^This generator has no noise of its own for the finest stage to redraw\.$"):
        latents.stage_images(plain, 2, seed=0, redraws=1)
