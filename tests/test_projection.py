"""Projection into the latent space and latent directions, on tiny trained runs; the `project` command."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gan_core.config import RunConfig
from gan_core.data.images import to_uint8
from gan_core.errors import DataError, RunError
from gan_core.evaluation.evaluator import Evaluator, get_evaluator, reference_data
from gan_core.generation import directions, edits, projection
from gan_core.generation.attributes import ATTRIBUTES, measure
from gan_core.generation.latent_space import latent_space
from gan_core.generation.sampling import LoadedGenerator, load_generator
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run

ROOT = Path(__file__).resolve().parents[1]
# A few dozen steps of an MLP GAN draw blurry digit-like strokes: enough for attributes to vary along directions.
MLP = dict(family="mlp", dataset="mnist-5k", width=0.25, latent_dim=16, batch_size=32, steps=60, sample_every=60,
           checkpoint_every=60, seed=1, precision="float32")
TINY = dict(MLP, steps=4, sample_every=4, checkpoint_every=4)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    for name, config in {
        "mlp": MLP,
        "conditional": dict(TINY, conditional=True),
        "styles": dict(TINY, family="stylegan", width=0.125, latent_dim=8, w_dim=8, mapping_layers=2, batch_size=16),
    }.items():
        train_run(store.create(RunConfig(**config, name=name)))
    return store


def loaded_named(store, name) -> LoadedGenerator:
    (run,) = [run for run in store.list() if run.config().name == name]
    return load_generator(run)


@pytest.fixture(scope="module")
def evaluator(cache_dir):
    return get_evaluator("mnist-5k", cache_dir, epochs=1)


@pytest.fixture(scope="module")
def digit():
    """A held-out mnist-5k digit, (28, 28, 1) uint8."""
    return reference_data("mnist-5k").heldout.images[0]


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.ndim == 3 else image).save(buffer, "PNG")
    return buffer.getvalue()


def drawing(side=224, dark_on_light=False) -> np.ndarray:
    """A '1' drawn as a canvas would give it: a thick slanted stroke off-centre in a large square."""
    image = Image.new("L", (side, side), 255 if dark_on_light else 0)
    ImageDraw.Draw(image).line([(40, 200), (80, 60)], fill=0 if dark_on_light else 255, width=18)
    return np.asarray(image)


def test_projection_lowers_the_pixel_and_feature_distance_on_a_tiny_trained_run(store, evaluator, digit):
    loaded = loaded_named(store, "mlp")
    progress = []
    found = projection.project(loaded, digit, steps=60, evaluator=evaluator, progress=lambda f, m: progress.append(f))
    assert found.features and found.space == "z" and found.latent.shape == (16,) and found.label is None
    assert found.after < found.before - 0.05, found.summary()
    assert progress[-1] == 1.0 and progress == sorted(progress)
    space = latent_space(loaded)  # the reconstruction is what the generator draws from the latent it reports
    assert np.abs(to_uint8(space.images(found.latent[None]))[0].astype(int) - found.reconstruction).max() <= 1
    longer = projection.project(loaded, digit, steps=120, evaluator=evaluator)
    assert longer.before == found.before and longer.after < found.after


def test_a_large_drawing_is_inverted_cropped_to_its_ink_and_centred_like_an_mnist_digit():
    image, note = projection.fit_image(drawing(dark_on_light=True)[None, ..., None], (28, 28, 1), "drawing.png")
    assert image.shape == (28, 28, 1) and image.dtype == np.uint8
    assert "inverted" in note and "centred in 28x28" in note
    ink = image[..., 0] > 50
    rows = np.flatnonzero(ink.any(axis=1))
    assert 18 <= rows[-1] - rows[0] + 1 <= 21  # the longer side fills 20 of 28 pixels
    weights = image[..., 0].astype(float)
    centre = (np.indices(weights.shape) * weights).reshape(2, -1).sum(axis=1) / weights.sum()
    np.testing.assert_allclose(centre, [13.5, 13.5], atol=1.0)
    same, note = projection.fit_image(np.zeros((1, 28, 28, 1), np.uint8), (28, 28, 1), "blank.png")
    assert note == "'blank.png' went in as it is." and not same.any()


def test_an_empty_drawing_a_batch_and_an_image_to_image_run_are_refused_with_one_sentence(store):
    loaded = loaded_named(store, "mlp")
    with pytest.raises(DataError, match="'drawing.png' has no ink to project: draw or upload a digit first."):
        projection.project_upload(loaded, png(np.zeros((224, 224), np.uint8)), "drawing.png")
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataError, match="'three.npz' holds 3 images; projection takes one."):
        projection.project_upload(loaded, buffer.getvalue(), "three.npz")
    with pytest.raises(DataError, match="not a readable PNG/JPEG"):  # the upload checks of Apply
        projection.project_upload(loaded, b"not a png", "digit.png")
    srgan = LoadedGenerator(None, RunConfig(family="srgan", dataset="mnist-5k"), 0, 0, ())
    with pytest.raises(RunError, match="need a generator that draws from noise; the srgan family maps images to images."):
        projection.project_upload(srgan, png(drawing()), "drawing.png")


def test_a_conditional_run_projects_with_the_class_given_or_the_evaluators_guess(store, evaluator, digit):
    loaded = loaded_named(store, "conditional")
    guessed = projection.project(loaded, digit, steps=5, evaluator=evaluator)
    assert guessed.label == int(np.argmax(evaluator.probabilities(digit[None])[0]))
    assert projection.project(loaded, digit, steps=5, label=7, evaluator=evaluator).label == 7
    with pytest.raises(RunError, match="label must be between 0 and 9; got 12."):
        projection.project(loaded, digit, steps=5, label=12)


def test_a_stylegan_run_is_projected_in_w(store, evaluator, digit):
    loaded = loaded_named(store, "styles")
    found = projection.project(loaded, digit, steps=20, evaluator=evaluator)
    assert found.space == "w" and found.latent.shape == (8,)
    assert found.after < found.before


def test_each_attribute_direction_moves_its_attribute_the_right_way_on_samples_it_was_not_fitted_on(store):
    """Found on 512 samples (seed 1); measured on 128 others (seed 99), each moved 2 steps back and 2 forward."""
    space = latent_space(loaded_named(store, "mlp"))
    found = directions.find_directions(space)
    by_attribute = {direction.attribute: direction for direction in found.values() if direction.attribute}
    assert set(by_attribute) == set(ATTRIBUTES)
    latents = space.random(128, 99)
    for attribute, direction in by_attribute.items():
        assert direction.per_unit > 0 and np.linalg.norm(direction.vector) == pytest.approx(1, abs=1e-6)
        step = 2 * direction.spread * direction.vector
        back, forward = (measure(to_uint8(space.images(latents + sign * step))) for sign in (-1, 1))
        change = forward[attribute] - back[attribute]
        assert np.nanmean(change) > 0, attribute
        assert np.nanmean(change > 0) > 0.7, f"{attribute}: only {np.nanmean(change > 0):.0%} of the samples moved the right way"
    principal = [direction for direction in found.values() if not direction.attribute]
    assert len(principal) == directions.COMPONENTS and all("% of the variance of the first layer" in d.name for d in principal)


def test_an_unconditional_runs_attribute_directions_are_orthogonal_to_the_evaluators_class_directions(store, evaluator):
    """The class logits the evaluator reads on the fitted samples, regressed on their latents: no attribute direction has a part along them."""
    space = latent_space(loaded_named(store, "mlp"))
    latents = space.random(directions.SAMPLES, directions.SEED)
    logits = np.log(np.clip(evaluator.probabilities(to_uint8(space.images(latents))), 1e-6, 1))
    design = np.concatenate([latents, np.ones((len(latents), 1))], axis=1)
    class_coefficients = np.linalg.lstsq(design, logits - logits.mean(axis=1, keepdims=True), rcond=None)[0][: space.dim]
    class_coefficients /= np.linalg.norm(class_coefficients, axis=0)
    held, free = (
        {d.attribute: d for d in directions.find_directions(space, evaluator=given).values() if d.attribute} for given in (evaluator, None)
    )
    assert set(held) == set(ATTRIBUTES) and {d.class_hold for d in held.values()} == {"evaluator"}
    for attribute, direction in held.items():
        assert np.linalg.norm(direction.vector) == pytest.approx(1, abs=1e-6) and direction.per_unit > 0
        np.testing.assert_allclose(direction.vector @ class_coefficients, 0, atol=1e-6, err_msg=attribute)
        assert np.abs(free[attribute].vector @ class_coefficients).max() > 0.05, attribute  # without the evaluator it had a class part
    assert {d.class_hold for d in free.values()} == {"none"}


def test_each_attribute_direction_leaves_the_other_attributes_fitted_values_unchanged(store):
    """Each attribute regressed on the fitted samples' latents: a direction has no part along the others' coefficients."""
    space = latent_space(loaded_named(store, "mlp"))
    latents = space.random(directions.SAMPLES, directions.SEED)
    measured = measure(to_uint8(space.images(latents)))
    design = np.concatenate([latents, np.ones((len(latents), 1))], axis=1)
    coefficients = {}
    for attribute in ATTRIBUTES:
        valid = np.isfinite(measured[attribute])
        fitted = np.linalg.lstsq(design[valid], measured[attribute][valid], rcond=None)[0][: space.dim]
        coefficients[attribute] = fitted / np.linalg.norm(fitted)
    found = {d.attribute: d for d in directions.find_directions(space).values() if d.attribute}
    assert set(found) == set(ATTRIBUTES)
    overlaps = [abs(coefficients[a] @ coefficients[b]) for a in ATTRIBUTES for b in ATTRIBUTES if a < b]
    assert max(overlaps) > 0.05  # the raw fits do overlap, so the projection has something to remove
    for attribute, direction in found.items():
        for other in set(ATTRIBUTES) - {attribute}:
            assert direction.vector @ coefficients[other] == pytest.approx(0, abs=1e-6), (attribute, other)
        assert direction.vector @ coefficients[attribute] > 0.3, attribute  # still mostly its own attribute


def test_without_a_classifier_or_with_the_class_directions_filling_the_space_the_directions_are_todays(store, evaluator):
    """An unlabelled dataset's evaluator (pixels only) and a latent space of 8 < 9 class directions leave the directions as they were."""
    space = latent_space(loaded_named(store, "mlp"))
    plain = directions.find_directions(space, samples=64)
    pixels = directions.find_directions(space, samples=64, evaluator=Evaluator(space.image_shape))
    assert {d.class_hold for d in pixels.values() if d.attribute} == {"none"}
    for name, direction in plain.items():
        np.testing.assert_array_equal(pixels[name].vector, direction.vector)
    small = latent_space(loaded_named(store, "styles"))
    latents = small.random(64, 0)
    design = np.concatenate([latents, np.ones((64, 1))], axis=1)
    hold, basis = directions.class_basis(small, design, to_uint8(small.images(latents)), evaluator)
    assert (small.dim, hold, basis.shape) == (8, "full", (8, 0))


def test_moves_add_up_and_before_after_measures_both_images(store):
    space = latent_space(loaded_named(store, "mlp"))
    found = list(directions.find_directions(space).values())
    latent = space.random(1, 5)[0]
    both = directions.moved(latent, {found[0]: 1.0, found[1]: -2.0})
    expected = latent + found[0].spread * found[0].vector - 2 * found[1].spread * found[1].vector
    np.testing.assert_allclose(both, expected, atol=1e-5)
    images, table = edits.before_after(space, latent, {found[0]: 2.0})
    assert images.shape == (2, 28, 28, 1)
    assert list(table["attribute"]) == list(ATTRIBUTES.values())
    np.testing.assert_allclose(table["change"], table["after"] - table["before"])
    with pytest.raises(RunError, match="the amount must be between -5 and 5 steps; got 9."):
        directions.moved(latent, {found[0]: 9.0})
    with pytest.raises(RunError, match="the amount must be between -5 and 5 steps; got -6."):
        edits.walk(space, latent, {found[0]: -6.0})


def test_an_attribute_slider_follows_the_local_gradient_and_moves_its_attribute_the_right_way(store, evaluator):
    """Each attribute walked 2 steps back and 2 forward from 12 samples the directions were not fitted on, the class held by the evaluator."""
    space = latent_space(loaded_named(store, "mlp"))
    found = {d.attribute: d for d in directions.find_directions(space, samples=128).values() if d.attribute}
    latents = space.random(12, 99)
    reports = []
    for attribute, direction in found.items():
        ends = [np.stack([edits.walk(space, z, {direction: sign * 2.0}, evaluator=evaluator, progress=lambda *a: reports.append(a))
                          for z in latents]) for sign in (-1, 1)]
        back, forward = (measure(to_uint8(space.images(end)))[attribute] for end in ends)
        change = forward - back
        assert np.nanmean(change) > 0 and np.nanmean(change > 0) > 0.7, (attribute, change)
        assert not np.allclose(ends[1] - latents, 2 * direction.spread * direction.vector, atol=1e-3)  # not the straight move
    assert reports[:4] == [(i / 4, f"Following the attributes' gradients: step {i + 1} of 4") for i in range(4)]
    repeated = edits.walk(space, latents[0], {found["slant"]: 1.5}, evaluator=evaluator)
    np.testing.assert_array_equal(repeated, edits.walk(space, latents[0], {found["slant"]: 1.5}, evaluator=evaluator))
    principal = next(d for d in directions.find_directions(space, samples=128).values() if not d.attribute)
    np.testing.assert_allclose(edits.walk(space, latents[0], {principal: 1.5}), directions.moved(latents[0], {principal: 1.5}), atol=1e-6)


def test_a_held_gradient_is_orthogonal_to_what_it_holds_and_gives_way_when_that_fills_the_space():
    rng = np.random.default_rng(0)
    gradients = {"thickness": rng.standard_normal(16), "slant": rng.standard_normal(16), "size": None, "class": rng.standard_normal((16, 10))}
    fallback = directions.Direction("Stroke thickness (px)", np.eye(16)[0], 1.0, attribute="thickness")
    vector = edits.held_gradient(gradients, fallback, 16)
    assert np.linalg.norm(vector) == pytest.approx(1)
    np.testing.assert_allclose(np.column_stack([gradients["slant"], gradients["class"]]).T @ vector, 0, atol=1e-9)
    assert vector @ gradients["thickness"] > 0
    small = {"thickness": rng.standard_normal(8), "slant": rng.standard_normal(8), "size": rng.standard_normal(8), "class": rng.standard_normal((8, 10))}
    held_off_attributes = edits.held_gradient(small, fallback, 8)  # 2 + 10 columns fill 8 dimensions: the class gives way
    np.testing.assert_allclose(np.column_stack([small["slant"], small["size"]]).T @ held_off_attributes, 0, atol=1e-9)
    assert edits.held_gradient({**gradients, "thickness": None}, fallback, 16) is fallback.vector  # too few probes with ink


def test_the_edit_note_says_what_holds_the_class(store, evaluator):
    mlp, conditional, styles = (latent_space(loaded_named(store, name)) for name in ("mlp", "conditional", "styles"))
    assert edits.hold_note(mlp, evaluator) == edits.HOLDS["evaluator"] == edits.hold_note(conditional, evaluator)  # 16 dims
    assert edits.hold_note(mlp, None) == edits.HOLDS["none"] and edits.hold_note(conditional, None) == edits.HOLDS["label"]
    assert edits.hold_note(styles, evaluator) == edits.HOLDS["full"]  # w of 8 dims: 9 class and 2 attribute gradients fill it
    assert edits.hold_note(mlp, Evaluator(mlp.image_shape)) == edits.HOLDS["none"]  # pixels only: no classes


def test_a_conditional_run_edits_the_style_with_its_class_fixed(store, evaluator):
    space = latent_space(loaded_named(store, "conditional"))
    found = directions.find_directions(space, samples=64)
    assert found and space.conditional and {d.class_hold for d in found.values() if d.attribute} == {"label"}
    attribute = next(d for d in found.values() if d.attribute)
    images, _ = edits.before_after(space, space.random(1, 0)[0], {attribute: 2.0}, label=3, evaluator=evaluator)
    assert images.shape == (2, 28, 28, 1)


def cli(*args, runs_dir, cache_dir):
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "GAN_CACHE_DIR": str(cache_dir), "GAN_EVALUATOR_EPOCHS": "1"}
    return subprocess.run([sys.executable, "-m", "gan_core", *args, "--runs-dir", str(runs_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_project_command_prints_the_distance_before_and_after_and_writes_the_pair(store, cache_dir, tmp_path, digit):
    (run,) = [run for run in store.list() if run.config().name == "mlp"]
    source, out = tmp_path / "digit.png", tmp_path / "recon.png"
    source.write_bytes(png(digit))
    result = cli("project", run.id, "--in", str(source), "--out", str(out), "--steps", "30",
                 runs_dir=store.root, cache_dir=cache_dir)
    assert result.returncode == 0, result.stderr
    assert "'digit.png' went in as it is. Distance (pixel + feature)" in result.stdout and f"Wrote {out}." in result.stdout
    before, after = (float(word) for word in result.stdout.split() if word.replace(".", "").isdigit() and "." in word)
    assert after < before
    assert Image.open(out).size == (4 * (2 * 30 + 2), 4 * 32)  # the digit beside its reconstruction, 4 times enlarged


def test_a_refused_image_leaves_no_output_file(store, tmp_path):
    blank, latent = tmp_path / "blank.png", tmp_path / "latent.npy"
    blank.write_bytes(png(np.zeros((100, 100), np.uint8)))
    with pytest.raises(DataError, match="'blank.png' has no ink to project"):
        projection.project_file(loaded_named(store, "mlp"), blank, latent)
    assert not latent.exists()
    with pytest.raises(RunError, match="--out must end in .png or .npy; got 'latent.jpg'."):
        projection.project_file(loaded_named(store, "mlp"), blank, tmp_path / "latent.jpg")
