"""The cyclegan family: network shapes, the history pool, cycle, identity and semantic losses, a trained tiny run with
its triplets and scores, a worker killed by SIGKILL that resumes with all four networks restored, a run with the
semantic loss that resumes with its classifiers restored, a run with every stabilizer on that resumes, the losses of a
run with them off as they were before they existed, and both generators as plain-Keras image-in image-out models."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_core import families
from gan_core.config import RunConfig, load_preset
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.evaluation.columns import column_scores
from gan_core.families.base import DataSpec, StepContext
from gan_core.families.cyclegan import (
    CLASSIFIERS,
    build_classifier,
    build_discriminator,
    build_generator,
    cross_entropy,
    pool_query,
)
from gan_core.families.stabilizers import augment
from gan_core.generation import model_io, pairs
from gan_core.generation.sampling import checkpoint_steps, load_generator, sample
from gan_core.store.runs import RunStore, atomic_write_text
from gan_core.training.loop import Trainer, train_run
from tests.killed_worker import kill_and_compare

TINY = dict(
    family="cyclegan", dataset="mnist-5k", domain_b="mnist-5k-thick", width=0.125, blocks=1, pool_size=4,
    batch_size=4, steps=4, sample_every=2, checkpoint_every=2, seed=5, precision="float32",
)
SPEC = DataSpec((28, 28, 1), 10)
TRIPLETS = ["A", "A->B", "A->B->A", "B", "B->A", "B->A->B"]
STABILIZER_COLUMNS = ["r1_penalty_a", "r1_penalty_b", "feature_matching_a", "feature_matching_b"]
# TINY's history on main before the stabilizers (commit 4f7a075), steps 1-4: with every stabilizer off a run trains the
# same (bit for bit on the machine that recorded them; held to the legacy runs' tolerance for other CPUs).
BEFORE_STABILIZERS = {
    "g_loss": [30.6104431, 30.6420555, 30.5830994, 30.0499001],
    "d_loss": [2.32579875, 2.26123071, 2.07440376, 2.07835126],
    "cycle_loss": [1.92457771, 1.93026876, 1.92692065, 1.89707756],
    "identity_loss": [1.94445503, 1.94938517, 1.94739699, 1.90250993],
    "g_adversarial": [1.64239085, 1.59244084, 1.57690775, 1.5665741],
    "d_b_fake": [-0.0476632603, -0.0328681767, -0.0791251659, -0.057697136],
    "d_a_fake": [-0.029041497, -0.044209227, 0.0296104997, 0.0586682931],
}


def batch(n: int, value: float) -> tf.Tensor:
    return tf.fill([n, 2, 2, 1], value)


def test_the_networks_keep_the_image_shape_and_the_discriminator_scores_7x7_patches():
    assert build_generator((28, 28, 1), 2, 0.25, "g").output_shape == (None, 28, 28, 1)
    assert build_discriminator((28, 28, 1), 0.25, "d").output_shape == (None, 7, 7, 1)
    assert build_generator((32, 32, 3), 1, 0.125, "g").output_shape == (None, 32, 32, 3)


def test_the_pool_stores_while_filling_then_swaps_half_and_a_slot_only_once():
    pool, count = tf.Variable(tf.zeros([3, 2, 2, 1])), tf.Variable(0)
    chance, slots = tf.constant([0.9, 0.9]), tf.constant([0, 1])
    shown = pool_query(pool, count, batch(2, 1.0), chance, slots)  # filling: D sees the new images, stored in slots 0 and 1
    np.testing.assert_array_equal(shown, batch(2, 1.0))
    np.testing.assert_array_equal(pool[:, 0, 0, 0], [1.0, 1.0, 0.0])
    shown = pool_query(pool, count, batch(2, 2.0), chance, slots)  # the third image fills slot 2; the fourth passes through
    np.testing.assert_array_equal(shown, batch(2, 2.0))
    np.testing.assert_array_equal(pool[:, 0, 0, 0], [1.0, 1.0, 2.0])
    assert int(count) == 3
    # full: image 0 (chance 0.9, slot 2) swaps; image 1 (chance 0.1) passes; image 2 picks slot 2 again and passes
    shown = pool_query(pool, count, tf.constant([3.0, 4.0, 5.0])[:, None, None, None] * tf.ones([3, 2, 2, 1]),
                       tf.constant([0.9, 0.1, 0.9]), tf.constant([2, 0, 2]))
    np.testing.assert_array_equal(shown[:, 0, 0, 0], [2.0, 4.0, 5.0])
    np.testing.assert_array_equal(pool[:, 0, 0, 0], [1.0, 1.0, 3.0])


def step_with_identity_generators(config: RunConfig, images: tf.Tensor | None = None) -> tuple[dict, dict]:
    """One train step of `config` (on `images`, or random ones) with both generators the identity, with the draws of seed 1
    and labels 0, 3, 7, 9; its metrics, and the parts it trained."""
    family = families.get("cyclegan")
    parts = family.build(config, SPEC, False)
    for key in ("g_ab", "g_ba"):  # a 1x1 convolution with weight 1 and bias 0: the identity, with variables to train
        image = keras.Input((28, 28, 1))
        parts.networks[key] = keras.Model(image, keras.layers.Conv2D(1, 1, kernel_initializer="ones")(image))
    parts.optimizers["g_optimizer"] = keras.optimizers.Adam()
    parts.optimizers["g_optimizer"].build(parts.networks["g_ab"].trainable_variables + parts.networks["g_ba"].trainable_variables)
    images = tf.random.uniform([4, 28, 28, 1], -1, 1, seed=1) if images is None else images
    draws = family.draws(config, tf.random.Generator.from_seed(1), 4, SPEC)
    labels = tf.constant([0, 3, 7, 9], tf.int32)
    return family.train_step(parts, config, images, labels, draws, StepContext(tf.distribute.get_strategy())), parts


def test_cycle_and_identity_losses_are_zero_for_identity_generators_and_weighted_into_g_loss():
    """With both generators the identity, cycle and identity L1 are 0, so G's loss is its adversarial term alone."""
    metrics, parts = step_with_identity_generators(RunConfig(**TINY))
    assert float(metrics["cycle_loss"]) == 0.0 and float(metrics["identity_loss"]) == 0.0
    assert float(metrics["g_loss"]) == pytest.approx(float(metrics["g_adversarial"]), rel=1e-6)
    assert "semantic_loss" not in metrics and not set(CLASSIFIERS) & set(parts.networks) and "f_optimizer" not in parts.optimizers


def test_without_the_identity_loss_the_step_records_none_and_g_loss_is_adversarial_plus_cycle():
    """identity_weight 0 skips the identity passes: no identity metric in the step or the run's columns, and G's loss is
    its adversarial term plus cycle_weight x the cycle L1 (random networks, so a missed identity term would show)."""
    config = RunConfig(**TINY | {"identity_weight": 0.0})
    family = families.get("cyclegan")
    assert "identity_loss" not in [m.name for m in family.run_metrics(config)]
    assert "identity_loss" in [m.name for m in family.run_metrics(RunConfig(**TINY))]
    parts = family.build(config, SPEC, False)
    images = tf.random.uniform([4, 28, 28, 1], -1, 1, seed=1)
    draws = family.draws(config, tf.random.Generator.from_seed(1), 4, SPEC)
    metrics = family.train_step(parts, config, images, tf.constant([0, 3, 7, 9]), draws, StepContext(tf.distribute.get_strategy()))
    assert "identity_loss" not in metrics and float(metrics["cycle_loss"]) > 0.1
    expected = float(metrics["g_adversarial"]) + config.cycle_weight * float(metrics["cycle_loss"])
    assert float(metrics["g_loss"]) == pytest.approx(expected, rel=1e-6)


def test_the_semantic_loss_is_weighted_into_g_loss_and_the_classifiers_learn_their_own_domain():
    """semantic_weight 2: G's loss is its adversarial term plus 2 x the classifiers' cross-entropy of the translations
    (identity generators: no cycle or identity term), and one update of f_A and f_B moves them, not the evaluators."""
    config = RunConfig(**TINY | {"domain_b": "sklearn-digits", "semantic_weight": 2.0})
    family = families.get("cyclegan")
    assert [m.name for m in family.run_metrics(config)][-5:] == [
        "semantic_loss", "f_a_accuracy", "f_b_accuracy", "f_b_reads_a_to_b", "f_a_reads_b_to_a",
    ]
    before = family.build(config, SPEC, False)
    metrics, parts = step_with_identity_generators(config)
    semantic = float(metrics["semantic_loss"])
    assert semantic > 0 and float(metrics["g_loss"]) == pytest.approx(float(metrics["g_adversarial"]) + 2.0 * semantic, rel=1e-5)
    assert all(0.0 <= float(metrics[name]) <= 1.0 for name in ("f_a_accuracy", "f_b_accuracy", "f_b_reads_a_to_b", "f_a_reads_b_to_a"))
    assert int(parts.optimizers["f_optimizer"].iterations) == 1
    for key in CLASSIFIERS:  # built with the same seed: only the step's update tells them apart
        assert parts.networks[key].output_shape == (None, 10)
        assert not np.allclose(parts.networks[key].get_weights()[0], before.networks[key].get_weights()[0])


def test_with_semantic_augment_the_classifiers_read_every_digit_through_its_own_random_transform():
    """semantic_augment: the draws gain one transform per image and domain (after the others, which stay as they were), and
    G's semantic loss is the cross-entropy of the classifiers on the augmented translations, computed here by hand."""
    plain = RunConfig(**TINY | {"domain_b": "sklearn-digits", "semantic_weight": 2.0})
    config = plain.replace(semantic_augment="translation,cutout")
    family = families.get("cyclegan")
    before, draws = (family.draws(c, tf.random.Generator.from_seed(1), 4, SPEC) for c in (plain, config))
    assert set(draws) - set(before) == {"semantic_a", "semantic_b"} and not set(before) - set(draws)
    assert all(np.array_equal(draws[name], before[name]) for name in before)
    images = tf.constant(np.random.default_rng(4).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32))
    metrics, parts = step_with_identity_generators(config, images)
    f_a, f_b = parts.networks["f_a"], parts.networks["f_b"]  # G's loss read the classifiers as they are after their update
    real_b = tf.cast(tf.gather(parts.fixed["images_b"], draws["b_index"]), tf.float32) / 127.5 - 1.0
    labels_a, labels_b = tf.constant([0, 3, 7, 9]), tf.gather(parts.fixed["labels_b"], draws["b_index"])
    ops = ("translation", "cutout")
    by_hand = cross_entropy(labels_a, f_b(augment(images, ops, draws["semantic_b"]))) + cross_entropy(
        labels_b, f_a(augment(real_b, ops, draws["semantic_a"]))
    )
    unaugmented = cross_entropy(labels_a, f_b(images)) + cross_entropy(labels_b, f_a(real_b))
    assert float(metrics["semantic_loss"]) == pytest.approx(float(by_hand), rel=1e-5)
    assert abs(float(unaugmented) - float(by_hand)) > 1e-3


def test_the_classifier_reads_an_image_as_class_logits():
    assert build_classifier((28, 28, 1), 10, 0.125, "f").output_shape == (None, 10)


def test_settings_and_data_are_checked_in_one_sentence():
    with pytest.raises(ConfigError, match=r"^domain_b must name a dataset"):
        RunConfig(**TINY | {"domain_b": " "})
    family = families.get("cyclegan")
    odd = ImageSet(np.zeros((4, 30, 30, 1), np.uint8), None, (), "odd.npz")
    with pytest.raises(ConfigError, match=r"^cyclegan needs image sides divisible by 4; 'odd.npz' has 30x30 images\.$"):
        family.check_data(RunConfig(**TINY), odd)
    big = ImageSet(np.zeros((4, 32, 32, 1), np.uint8), None, (), "big.npz")
    with pytest.raises(ConfigError, match=r"^domain_b 'mnist-5k-thick' has 28x28x1 images but domain A 'big.npz' has 32x32x1: "):
        family.check_data(RunConfig(**TINY), big)
    unlabelled = ImageSet(np.zeros((4, 28, 28, 1), np.uint8), None, (), "plain.npz")
    family.check_data(RunConfig(**TINY), unlabelled)  # without the semantic loss, domain A needs no labels
    with pytest.raises(ConfigError, match=r"^semantic_weight 0\.5 needs class labels in both domains, but 'plain\.npz' has none: set it to 0\.$"):
        family.check_data(RunConfig(**TINY | {"semantic_weight": 0.5}), unlabelled)


def test_the_preset_loads_with_the_semantic_loss_on_and_a_config_without_the_setting_keeps_it_off():
    config = load_preset("cyclegan")
    assert (config.family, config.dataset, config.domain_b, config.loss) == ("cyclegan", "mnist-5k", "mnist-5k-thick", "lsgan")
    # identity 0 and the classifiers' augmentation since 2026-12-06 (docs/QUALITY.md)
    assert (config.semantic_weight, config.identity_weight, config.semantic_augment) == (0.3, 0.0, "translation,cutout")
    old = RunConfig(**TINY)  # config.json of runs made before the settings: they train as they did
    assert (old.semantic_weight, old.semantic_augment) == (0.0, "")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = RunStore(tmp_path_factory.mktemp("cyclegan") / "runs").create(RunConfig(**TINY))
    status = train_run(run)
    assert status["state"] == "finished", status
    return run


def test_a_tiny_run_trains_checkpoints_and_draws_its_triplets(tiny_run):
    assert checkpoint_steps(tiny_run) == [2, 4]
    assert [m.name for m in tiny_run.metrics()] == [
        "g_loss", "d_loss", "cycle_loss", "identity_loss", "g_adversarial", "d_b_fake", "d_a_fake",
    ]
    rows = tiny_run.history_rows()
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r[name])) and float(r[name]) > 0 for r in rows for name in ("g_loss", "d_loss", "cycle_loss", "identity_loss"))
    grid = sorted(tiny_run.samples_dir.glob("*.png"))[-1]
    assert grid.name == "step_000004.png"
    loaded = load_generator(tiny_run)
    assert set(loaded.partners) == {"g_ba"}
    images, names, scores = pairs.pair_rows(loaded, 3, seed=1)
    assert names == TRIPLETS and images.shape == (18, 28, 28, 1)
    assert [(row["column"], row["against"]) for row in scores] == [("A->B->A", "A"), ("B->A->B", "B")]
    translated, labels = sample(loaded, 5, seed=2)
    assert translated.shape == (5, 28, 28, 1) and labels is None


def test_with_every_stabilizer_off_a_run_trains_as_it_did_before_they_existed(tiny_run):
    rows = tiny_run.history_rows()
    for name, values in BEFORE_STABILIZERS.items():
        np.testing.assert_allclose([row[name] for row in rows], values, rtol=1e-3, atol=1e-4, err_msg=name)  # as the legacy runs
    assert not set(STABILIZER_COLUMNS) & set(rows[0]), "a stabilizer that is off gets no column"


def test_a_run_with_every_stabilizer_on_resumes_from_its_checkpoint_with_everything_restored(tmp_path):
    """The feature views own no weights, so the checkpoint holds the same objects with the stabilizers on; resumed, the run
    continues with both pools and charts every stabilizer's term."""
    config = RunConfig(**TINY | {"r1_weight": 1.0, "diffaugment": "translation,cutout", "feature_matching": 1.0, "steps": 3})
    run = RunStore(tmp_path / "runs").create(config.replace(steps=2))
    assert train_run(run)["state"] == "finished"
    atomic_write_text(run.config_path, config.to_json())
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and "Resumed from step 2" in status["message"]
    rows = run.history_rows()
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert all(np.isfinite(row[name]) and row[name] > 0 for row in rows for name in STABILIZER_COLUMNS)
    restored = Trainer(run)
    restored.checkpoint.restore(restored.manager.latest_checkpoint).assert_existing_objects_matched()
    assert set(restored.parts.checkpoint_items()) == {
        "g_ab", "g_ba", "d_a", "d_b", "g_optimizer", "d_optimizer", "pool_a", "pool_b", "pool_a_count", "pool_b_count",
    }
    assert int(restored.parts.state["pool_a_count"]) == 4 and int(restored.parts.optimizers["d_optimizer"].iterations) == 3


def test_class_kept_is_read_by_each_columns_own_evaluator(tiny_run):
    loaded = load_generator(tiny_run)
    columns = families.get("cyclegan").pairs(loaded.model, loaded.config, 20, 0, loaded.partners)
    readers = {}

    class Reader:  # reads class 3 for every image: the share kept is the share of label 3
        num_classes = 10

        def probabilities(self, images):
            return np.eye(10)[np.full(len(images), 3)]

    def reader(dataset):
        readers.setdefault(dataset, 0)
        readers[dataset] += 1
        return Reader()

    scores = {row["column"]: row for row in column_scores(columns, reader)}
    assert set(scores) == set(TRIPLETS) and readers == {"mnist-5k": 3, "mnist-5k-thick": 3}
    for name in TRIPLETS:
        assert scores[name]["Class kept (%)"] == pytest.approx(100 * np.mean(columns[name].labels == 3))
    assert scores["A->B"]["read by"] == "mnist-5k-thick evaluator" and scores["B->A"]["read by"] == "mnist-5k evaluator"


def test_both_generators_download_as_plain_keras_image_in_image_out(tiny_run, tmp_path):
    downloads = {d.label: d for d in model_io.run_downloads(tiny_run, None)}
    assert {"Generator a to b (.keras)", "Generator b to a (.keras)", "Discriminator a (.keras)", "Discriminator b (.keras)"} <= set(downloads)
    loaded = load_generator(tiny_run)
    digits = np.random.default_rng(0).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
    for label, network in (("Generator a to b (.keras)", loaded.model), ("Generator b to a (.keras)", loaded.partners["g_ba"])):
        path = tmp_path / downloads[label].file_name
        path.write_bytes(downloads[label].data)
        plain = keras.saving.load_model(path)
        np.testing.assert_allclose(np.asarray(plain(digits)), np.asarray(network(digits)), atol=1e-5)
    assert not np.allclose(np.asarray(loaded.model(digits)), np.asarray(loaded.partners["g_ba"](digits)))


def test_a_killed_worker_resumes_with_all_four_networks_both_pools_and_the_optimizers_restored(job_store):
    """SIGKILL mid-run: the newest checkpoint holds what an unbroken run of as many steps holds, and the run resumes from it."""
    config = RunConfig(**TINY | {"steps": 5000, "checkpoint_every": 3, "sample_every": 1000})
    run, newest, items = kill_and_compare(job_store, config)
    assert {"g_ab", "g_ba", "d_a", "d_b", "g_optimizer", "d_optimizer", "pool_a", "pool_b", "pool_a_count", "pool_b_count"} <= set(items)
    assert int(items["pool_a_count"]) == 4

    atomic_write_text(run.config_path, config.replace(steps=newest + 3).to_json())
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and f"Resumed from step {newest}" in status["message"]
    assert [int(r["step"]) for r in run.history_rows()] == list(range(1, newest + 4))


def test_a_run_with_the_semantic_loss_checkpoints_its_classifiers_and_resumes_with_them(tmp_path):
    """The classifiers and their optimizer are in the checkpoint; resumed, the run continues them (4 updates by step 4,
    not 2 from fresh ones) and charts their accuracies; the downloads stay the generators and discriminators."""
    config = RunConfig(**TINY | {"domain_b": "sklearn-digits", "semantic_weight": 1.0, "pool_size": 0})
    run = RunStore(tmp_path / "runs").create(config.replace(steps=2))
    assert train_run(run)["state"] == "finished"
    assert checkpoint_iterations(run) == 2
    atomic_write_text(run.config_path, config.to_json())
    status = train_run(run, resume=True)
    assert status["state"] == "finished" and "Resumed from step 2" in status["message"]
    assert [int(r["step"]) for r in run.history_rows()] == [1, 2, 3, 4]
    names = [m.name for m in run.metrics()]
    assert names[-5:] == ["semantic_loss", "f_a_accuracy", "f_b_accuracy", "f_b_reads_a_to_b", "f_a_reads_b_to_a"]
    assert all(np.isfinite(float(row[name])) for row in run.history_rows() for name in names)
    assert checkpoint_iterations(run) == 4
    downloads = {d.label for d in model_io.run_downloads(run, None)}
    assert "Generator a to b (.keras)" in downloads and not any("lassifier" in label for label in downloads)


def checkpoint_iterations(run) -> int:
    """The classifiers' optimizer's update count in the newest checkpoint, restored with every object (f_A and f_B too) matched."""
    restored = Trainer(run)
    restored.checkpoint.restore(restored.manager.latest_checkpoint).assert_existing_objects_matched()
    assert {"f_a", "f_b", "f_optimizer"} <= set(restored.parts.checkpoint_items())
    return int(restored.parts.optimizers["f_optimizer"].iterations)
