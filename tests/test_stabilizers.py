"""Stabilizers (gan_core.families.stabilizers): each term against a hand computation on tiny tensors, the settings'
validation sentences, old configs loading with every stabilizer off, and a tiny run of each covered family with
every stabilizer on; lapgan's (one D per level, each fed an image and its condition), srgan's and cyclegan's (two
PatchGAN Ds, a history pool) steps by hand."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_core import families, losses
from gan_core.config import RunConfig, load_preset
from gan_core.errors import ConfigError
from gan_core.families.base import DataSpec, StepContext
from gan_core.families.blocks import r1_regularized_d_loss, real_logits_and_r1
from gan_core.families.cyclegan import DOMAINS, domain_train
from gan_core.families.lapgan import LEVELS, real_pyramid, upsampler
from gan_core.families.stabilizers import (
    DRAW_COLUMNS,
    augment,
    augment_draws,
    color,
    cutout,
    feature_matching_loss,
    feature_model,
    metrics_per_network,
    policy,
    translate,
)
from gan_core.store.runs import RunStore
from gan_core.training.loop import train_run

IMAGES = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1) / 100 + 0.01  # no pixel is 0


def test_translation_moves_each_image_by_its_drawn_shift_and_fills_with_zeros():
    # side 8: shifts in [-1, 1] = floor(u x 3) - 1; image 0 moves down 1 and left 1, image 1 up 1 and not sideways
    u_y, u_x = tf.constant([0.9, 0.1]), tf.constant([0.1, 0.5])
    out = np.asarray(translate(tf.constant(IMAGES), u_y, u_x))
    expected = np.zeros_like(IMAGES)
    for b, (dy, dx) in enumerate([(1, -1), (-1, 0)]):
        for i in range(8):
            for j in range(8):
                if 0 <= i - dy < 8 and 0 <= j - dx < 8:
                    expected[b, i, j] = IMAGES[b, i - dy, j - dx]
    np.testing.assert_array_equal(out, expected)


def test_cutout_zeroes_a_square_of_half_the_side_placed_by_the_draws():
    # side 8: a 4x4 square whose centre is floor(u x 9); u 0.5 -> rows 2..5, u 0 -> columns -2..1 (0..1 inside)
    out = np.asarray(cutout(tf.constant(IMAGES), tf.constant([0.5, 0.99]), tf.constant([0.0, 0.5])))
    expected = IMAGES.copy()
    expected[0, 2:6, 0:2] = 0
    expected[1, 6:8, 2:6] = 0  # centre 8: rows 6..9, 6..7 inside
    np.testing.assert_array_equal(out, expected)


def test_color_applies_brightness_saturation_and_contrast_as_the_paper_does():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 3, 3)).astype(np.float32)
    b, s, c = np.array([0.2, 0.9], np.float32), np.array([0.1, 0.7], np.float32), np.array([0.3, 0.8], np.float32)
    out = np.asarray(color(tf.constant(x), tf.constant(b), tf.constant(s), tf.constant(c)))
    expected = x + (b - 0.5)[:, None, None, None]
    mean = expected.mean(axis=3, keepdims=True)
    expected = (expected - mean) * (2 * s)[:, None, None, None] + mean
    mean = expected.mean(axis=(1, 2, 3), keepdims=True)
    expected = (expected - mean) * (c + 0.5)[:, None, None, None] + mean
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_a_policy_applies_its_operations_in_order_and_skips_color_on_one_channel():
    u = tf.constant(np.random.default_rng(1).uniform(0, 1, (2, len(DRAW_COLUMNS))).astype(np.float32))
    x = tf.constant(IMAGES)
    both = translate(x, u[:, 0], u[:, 1])
    np.testing.assert_array_equal(augment(x, ("translation", "cutout"), u), cutout(both, u[:, 2], u[:, 3]))
    np.testing.assert_array_equal(augment(x, ("color",), u), IMAGES)
    rgb = tf.constant(np.random.default_rng(2).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32))
    np.testing.assert_array_equal(augment(rgb, ("color",), u), color(rgb, u[:, 4], u[:, 5], u[:, 6]))


def test_augmentation_passes_gradients_to_the_images():
    x = tf.constant(IMAGES)
    u = tf.fill([2, len(DRAW_COLUMNS)], 0.3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(augment(x, ("translation", "cutout"), u))
    gradient = np.asarray(tape.gradient(total, x))
    assert set(np.unique(gradient)) <= {0.0, 1.0} and 0 < gradient.sum() < IMAGES.size


def test_draws_come_from_the_runs_rng_one_row_per_image_and_none_when_off():
    config = RunConfig(diffaugment="translation, cutout,translation")
    assert policy(config) == ("translation", "cutout")
    first = augment_draws(config, tf.random.Generator.from_seed(5), 6)
    again = augment_draws(config, tf.random.Generator.from_seed(5), 6)
    assert sorted(first) == ["augment_fake", "augment_real"] and first["augment_real"].shape == (6, len(DRAW_COLUMNS))
    np.testing.assert_array_equal(first["augment_fake"], again["augment_fake"])
    assert not np.array_equal(first["augment_real"], first["augment_fake"])
    rng = tf.random.Generator.from_seed(5)
    assert augment_draws(RunConfig(), rng, 6) == {}
    np.testing.assert_array_equal(rng.state, tf.random.Generator.from_seed(5).state)  # nothing drawn when off


def test_feature_matching_is_the_mean_squared_difference_of_the_batch_mean_features():
    real = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]], np.float32)  # means 2, 1, 0
    fake = np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 3.0], [0.0, 1.0, 2.0]], np.float32)  # means 0, 1, 2
    assert float(feature_matching_loss(real, fake)) == pytest.approx((4 + 0 + 4) / 3)
    fake_t = tf.constant(fake)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(fake_t)
        real_t = tf.constant(real)
        tape.watch(real_t)
        loss = feature_matching_loss(real_t, fake_t)
    assert tape.gradient(loss, real_t) is None  # the real side is a target, not trained through
    np.testing.assert_allclose(tape.gradient(loss, fake_t), np.tile([[-4, 0, 4]], (3, 1)) / 9, rtol=1e-6)


def test_the_feature_view_shares_ds_layers_and_reads_the_input_of_its_last_layer():
    family = families.get("dcgan")
    config = RunConfig(width=0.25, dropout=0.0, spectral_norm=True)
    D = family.discriminator(config, DataSpec((28, 28, 1), 10))
    names = [w.path for w in D.weights]
    view = feature_model(D)
    assert [w.path for w in D.weights] == names and len(view.weights) == len(D.weights)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
    logits, features = view(x, training=False)
    np.testing.assert_allclose(logits, D(x, training=False), rtol=1e-5)
    flatten = keras.Model(D.input, D.get_layer("flatten").output)
    np.testing.assert_allclose(features, flatten(x, training=False), rtol=1e-5)


def _linear_critic(weights: np.ndarray) -> keras.Model:
    image = keras.Input((2, 2, 1))
    dense = keras.layers.Dense(1)
    model = keras.Model(image, dense(keras.layers.Flatten()(image)))
    dense.set_weights([weights.reshape(4, 1), np.array([0.5], np.float32)])
    return model


def test_r1_is_half_the_weight_times_the_squared_gradient_norm_of_a_linear_critic():
    w = np.array([1.0, -2.0, 0.5, 3.0], np.float32)  # D(x) = w . x + 0.5: the gradient is w for every image
    critic = _linear_critic(w)
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (5, 2, 2, 1)).astype(np.float32))
    fake = tf.constant(np.random.default_rng(1).uniform(-1, 1, (5, 2, 2, 1)).astype(np.float32))
    logits, r1 = real_logits_and_r1(critic, real, 4.0)
    assert float(r1) == pytest.approx(float(np.sum(w**2)))  # 14.25
    np.testing.assert_allclose(logits[:, 0], real.numpy().reshape(5, 4) @ w + 0.5, rtol=1e-5)
    fake_logits = critic(fake)
    d_loss, _, _ = r1_regularized_d_loss(losses.get("bce"), critic, real, fake, fake_logits, 4.0, 10.0, {})
    plain = losses.get("bce").d_loss(logits, fake_logits)
    assert float(d_loss) == pytest.approx(float(plain) + 4.0 / 2 * 14.25, rel=1e-5)
    assert float(real_logits_and_r1(critic, real, 0.0)[1]) == 0.0


def test_the_adversarial_d_loss_adds_r1_and_g_adds_feature_matching():
    """One dcgan joint step by hand: D's loss is bce + r1_weight / 2 x R1 on what D saw, G's the bce + weight x FM."""
    config = RunConfig(width=0.25, dropout=0.0, batch_norm=False, batch_size=4, r1_weight=3.0, feature_matching=2.0,
                       diffaugment="translation,cutout", precision="float32")
    family = families.get("dcgan")
    spec = DataSpec((28, 28, 1), 10)
    parts = family.build(config, spec, False)
    draws = family.draws(config, tf.random.Generator.from_seed(1), 4, spec)
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32))
    G, D = parts.networks["generator"], parts.networks["discriminator"]
    real = augment(images, ("translation", "cutout"), draws["augment_real"])
    fake = augment(G(draws["z"], training=True), ("translation", "cutout"), draws["augment_fake"])
    with tf.GradientTape() as tape:
        tape.watch(real)
        real_logits = D(real)
        total = tf.reduce_sum(real_logits)
    gradient = tape.gradient(total, real).numpy()
    r1 = np.mean(np.sum(gradient**2, axis=(1, 2, 3)))
    view = feature_model(D)
    (fake_logits, fake_f), (_, real_f) = view(fake), view(real)
    fm = np.mean((real_f.numpy().mean(0) - fake_f.numpy().mean(0)) ** 2)
    bce = losses.get("bce")
    ctx = StepContext(tf.distribute.get_strategy())
    scalars = family.train_step(parts, config, images, tf.zeros([4], tf.int32), draws, ctx)
    assert float(scalars["r1_penalty"]) == pytest.approx(r1, rel=1e-4)
    assert float(scalars["feature_matching"]) == pytest.approx(fm, rel=1e-4)
    assert float(scalars["d_loss"]) == pytest.approx(float(bce.d_loss(real_logits, fake_logits)) + 1.5 * r1, rel=1e-4)
    assert float(scalars["g_loss"]) == pytest.approx(float(bce.g_loss(fake_logits)) + 2.0 * fm, rel=1e-4)


def _r1_and_features(D, real, condition=None):
    """R1 of D on `real` (its condition bound) and D's logits and last hidden features on it, by hand."""
    inputs = (lambda x: x) if condition is None else (lambda x: [x, condition])
    with tf.GradientTape() as tape:
        tape.watch(real)
        total = tf.reduce_sum(D(inputs(real), training=True))
    r1 = np.mean(np.sum(tape.gradient(total, real).numpy() ** 2, axis=(1, 2, 3)))
    logits, features = feature_model(D)(inputs(real), training=True)
    return r1, logits, features.numpy()


def _matching(real_features, fake_features):
    return np.mean((real_features.mean(0) - fake_features.mean(0)) ** 2)


def test_each_lapgan_level_augments_its_image_and_condition_alike_and_adds_r1_and_feature_matching():
    """One lapgan step by hand: each level's D sees the augmented image (or residual) beside its condition augmented
    by the same draws, pays r1_weight / 2 x R1 on the augmented real, and its G adds weight x FM."""
    config = RunConfig(family="lapgan", width=0.125, latent_dim=8, noise_dim=4, dropout=0.0, batch_size=4, r1_weight=3.0,
                       feature_matching=2.0, diffaugment="translation,cutout", precision="float32")
    family = families.get("lapgan")
    spec = DataSpec((28, 28, 1), 10)
    parts = family.build(config, spec, False)
    draws = family.draws(config, tf.random.Generator.from_seed(1), 4, spec)
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32))
    ops, pyramid, bce, expected = ("translation", "cutout"), real_pyramid(images), losses.get("bce"), {}
    for k, level in enumerate(LEVELS):
        G, D = parts.networks[f"g_{level}"], parts.networks[f"d_{level}"]
        u_real, u_fake = draws[f"augment_real_{level}"], draws[f"augment_fake_{level}"]
        if k == 0:
            real, fake, seen_real, seen_fake = pyramid[0], G(draws["z"], training=True), None, None
        else:
            condition = upsampler()(pyramid[k - 1])
            real, fake = pyramid[k] - condition, G([condition, draws[f"noise_{level}"]], training=True)
            seen_real, seen_fake = augment(condition, ops, u_real), augment(condition, ops, u_fake)
        r1, real_logits, real_f = _r1_and_features(D, augment(real, ops, u_real), seen_real)
        _, fake_logits, fake_f = _r1_and_features(D, augment(fake, ops, u_fake), seen_fake)
        fm = _matching(real_f, fake_f)
        d_loss, g_loss = float(bce.d_loss(real_logits, fake_logits)) + 1.5 * r1, float(bce.g_loss(fake_logits)) + 2.0 * fm
        expected[level] = dict(r1=r1, fm=fm, d=d_loss, g=g_loss)
    scalars = family.train_step(parts, config, images, tf.zeros([4], tf.int32), draws, StepContext(tf.distribute.get_strategy()))
    for level, want in expected.items():
        assert float(scalars[f"r1_penalty_{level}"]) == pytest.approx(want["r1"], rel=1e-4), level
        assert float(scalars[f"feature_matching_{level}"]) == pytest.approx(want["fm"], rel=1e-4), level
        assert float(scalars[f"d_{level}"]) == pytest.approx(want["d"], rel=1e-4), level
        assert float(scalars[f"g_{level}"]) == pytest.approx(want["g"], rel=1e-4), level
    assert [m.name for m in family.metrics][-6:] == [m.name for m in metrics_per_network(LEVELS)] == [
        f"{name}_{level}" for name in ("r1_penalty", "feature_matching") for level in LEVELS
    ]


@pytest.mark.parametrize("warmup_steps", [0, 5])
def test_srgan_augments_originals_and_restorations_adds_r1_and_after_the_warm_up_feature_matching(warmup_steps):
    """One srgan step by hand: D sees the augmented originals and restorations (R1 on the former); G's loss is the pixel
    MSE plus, once the warm-up is over, the weighted adversarial and feature-matching terms."""
    config = RunConfig(family="srgan", degradation="x2", width=0.125, blocks=1, batch_size=4, feature_weight=0.0,
                       adversarial_weight=0.5, warmup_steps=warmup_steps, r1_weight=3.0, feature_matching=2.0,
                       diffaugment="translation,cutout", precision="float32")
    family = families.get("srgan")
    spec = DataSpec((28, 28, 1), 10)
    parts = family.build(config, spec, False)
    draws = family.draws(config, tf.random.Generator.from_seed(1), 4, spec)
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32))
    G, D = parts.networks["generator"], parts.networks["discriminator"]
    restored = G(tf.nn.avg_pool2d(images, 2, 2, "VALID"), training=True)
    ops = ("translation", "cutout")
    r1, real_logits, real_f = _r1_and_features(D, augment(images, ops, draws["augment_real"]))
    _, fake_logits, fake_f = _r1_and_features(D, augment(restored, ops, draws["augment_fake"]))
    fm, bce, on = _matching(real_f, fake_f), losses.get("bce"), float(warmup_steps == 0)
    pixel = float(tf.reduce_mean(tf.square(restored - images)))
    scalars = family.train_step(parts, config, images, tf.zeros([4], tf.int32), draws, StepContext(tf.distribute.get_strategy()))
    assert float(scalars["r1_penalty"]) == pytest.approx(r1, rel=1e-4)
    assert float(scalars["feature_matching"]) == pytest.approx(fm, rel=1e-4)
    assert float(scalars["d_loss"]) == pytest.approx(float(bce.d_loss(real_logits, fake_logits)) + 1.5 * r1, rel=1e-4)
    assert float(scalars["g_loss"]) == pytest.approx(pixel + on * (0.5 * float(bce.g_loss(fake_logits)) + 2.0 * fm), rel=1e-4)


CYCLEGAN_STABILIZERS = {
    "r1": dict(r1_weight=3.0),
    "diffaugment": dict(diffaugment="translation,cutout"),
    "feature_matching": dict(feature_matching=2.0),
    "all": dict(r1_weight=3.0, diffaugment="translation,cutout", feature_matching=2.0),
}


@pytest.mark.parametrize("stabilizer", CYCLEGAN_STABILIZERS)
def test_cyclegan_augments_real_and_pooled_images_adds_r1_on_real_and_matches_features_of_the_current_fakes(stabilizer):
    """One cyclegan step by hand, each stabilizer alone and all three: each domain's D sees its real images augmented by
    the real draws and the pool's images (here still filling: the current fakes) by the fake draws, pays r1_weight / 2 x
    R1 on the augmented reals; G's loss is the least-squares term of both Ds on the augmented current fakes plus weight x
    both Ds' feature-matching terms (cycle and identity weights 0, checked elsewhere)."""
    values = CYCLEGAN_STABILIZERS[stabilizer]
    config = RunConfig(family="cyclegan", domain_b="mnist-5k-thick", width=0.125, blocks=1, pool_size=4, batch_size=4,
                       cycle_weight=0.0, identity_weight=0.0, precision="float32", **values)
    family = families.get("cyclegan")
    spec = DataSpec((28, 28, 1), 10)
    parts = family.build(config, spec, False)
    draws = family.draws(config, tf.random.Generator.from_seed(1), 4, spec)
    assert ("augment_real_a" in draws) == ("diffaugment" in values)
    ops = ("translation", "cutout") if "diffaugment" in values else ()
    r1_weight, fm_weight = values.get("r1_weight", 0.0), values.get("feature_matching", 0.0)
    real = {
        "a": tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)),
        "b": tf.constant(domain_train("mnist-5k-thick").images[draws["b_index"].numpy()].astype(np.float32) / 127.5 - 1.0),
    }
    fake = {"b": parts.networks["g_ab"](real["a"]), "a": parts.networks["g_ba"](real["b"])}
    lsgan, expected, g_loss, d_loss = losses.get("lsgan"), {}, 0.0, 0.0
    for domain in DOMAINS:
        D = parts.networks[f"d_{domain}"]
        u_real, u_fake = (draws[f"augment_{role}_{domain}"] for role in ("real", "fake")) if ops else (None, None)
        r1, real_logits, real_f = _r1_and_features(D, augment(real[domain], ops, u_real) if ops else real[domain])
        _, fake_logits, fake_f = _r1_and_features(D, augment(fake[domain], ops, u_fake) if ops else fake[domain])
        expected[f"r1_penalty_{domain}"] = r1 if r1_weight else 0.0
        expected[f"feature_matching_{domain}"] = _matching(real_f, fake_f) if fm_weight else 0.0
        d_loss += float(lsgan.d_loss(real_logits, fake_logits)) + r1_weight / 2 * expected[f"r1_penalty_{domain}"]
        g_loss += float(lsgan.g_loss(fake_logits)) + fm_weight * expected[f"feature_matching_{domain}"]
    scalars = family.train_step(parts, config, real["a"], tf.zeros([4], tf.int32), draws, StepContext(tf.distribute.get_strategy()))
    for name, want in expected.items():
        assert float(scalars[name]) == pytest.approx(want, rel=1e-4, abs=1e-7), name
    assert float(scalars["d_loss"]) == pytest.approx(d_loss, rel=1e-4)
    assert float(scalars["g_loss"]) == pytest.approx(g_loss, rel=1e-4)
    assert max(expected.values()) > 0 or stabilizer == "diffaugment"


def test_settings_are_explained_in_one_sentence_and_old_configs_load_with_every_stabilizer_off():
    with pytest.raises(ConfigError, match=r"^diffaugment must be a comma-separated list of translation, cutout and color, "
                                          r"or empty for none; got 'translation,colour'\.$"):
        RunConfig(diffaugment="translation,colour")
    with pytest.raises(ConfigError, match=r"^r1_weight must be a number between 0 and 100; got -1\.$"):
        RunConfig(r1_weight=-1)
    # progan has no feature_matching: its staged D has no one feature layer
    with pytest.raises(ConfigError, match=r"^Unknown configuration key 'feature_matching'\."):
        RunConfig(family="progan", feature_matching=1.0)
    assert RunConfig(family="progan", r1_weight=0.5, diffaugment="cutout").r1_weight == 0.5
    for family in ("lapgan", "srgan", "cyclegan"):
        with pytest.raises(ConfigError, match=r"^feature_matching must be a number between 0 and 100; got -0\.5\.$"):
            RunConfig(family=family, feature_matching=-0.5)
        with pytest.raises(ConfigError, match=r"^diffaugment must be a comma-separated list .*; got 'flip'\.$"):
            RunConfig(family=family, diffaugment="flip")
    for name in ("dcgan", "wgan-gp", "cgan", "mlp-gan", "lapgan", "srgan", "restore", "cyclegan"):
        config = load_preset(name)
        assert (config.feature_matching, config.r1_weight, config.diffaugment) == (0.0, 0.0, "")
    assert load_preset("stylegan").r1_weight == RunConfig(family="stylegan").r1_weight  # its R1 keeps its name and value
    assert RunConfig(diffaugment=" translation , color ").diffaugment == " translation , color "


FAMILY_RUNS = {  # cgan and wgan-gp are the dcgan family; the bce path of dcgan is checked by hand above
    "cgan-wgan-gp": dict(family="dcgan", width=0.125, conditional=True, loss="wgan-gp", d_steps=2, feature_matching=1.0),
    "mlp": dict(family="mlp", width=0.125, feature_matching=1.0),
    "stylegan": dict(family="stylegan", width=0.125, latent_dim=8, w_dim=8, mapping_layers=1, feature_matching=1.0),
    "progan": dict(family="progan", channels="8,8,8,8"),
    "lapgan": dict(family="lapgan", width=0.125, latent_dim=8, noise_dim=4, feature_matching=1.0),
    "srgan": dict(family="srgan", width=0.125, blocks=1, feature_weight=0.0, warmup_steps=1, feature_matching=1.0),
    "cyclegan": dict(family="cyclegan", width=0.125, blocks=1, pool_size=4, feature_matching=1.0),
}


@pytest.mark.parametrize("name", FAMILY_RUNS)
def test_a_tiny_run_with_every_stabilizer_on_trains_and_records_them(name, tmp_path):
    values = dict(dataset="mnist-5k", batch_size=4, steps=2, sample_every=2, checkpoint_every=2, seed=2, precision="float32",
                  tensorboard=False, r1_weight=2.0, diffaugment="translation,cutout,color")
    values |= FAMILY_RUNS[name]
    run = RunStore(tmp_path).create(RunConfig(**values))
    assert train_run(run)["state"] == "finished"
    rows = run.history_rows()
    assert len(rows) == 2 and all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
    for name in ("r1_penalty", "feature_matching") if "feature_matching" in values else ("r1_penalty",):
        columns = [m.name for m in run.metrics() if m.name.startswith(name)]  # lapgan: one per level, cyclegan: per domain
        assert columns and all(r[column] > 0 for r in rows for column in columns), name


def test_a_new_run_charts_a_stabilizers_term_only_when_its_weight_is_above_zero():
    """Off, a stabilizer gets no column (its chart would be a line of zeros); on, one per discriminator."""

    def regularizers(**values) -> list[str]:
        config = RunConfig(dataset="mnist-5k", **values)
        return [m.name for m in families.get(config.family).run_metrics(config) if m.group == "Regularizers"]

    assert regularizers(family="dcgan") == []
    assert regularizers(family="dcgan", r1_weight=1.0) == ["r1_penalty"]
    assert regularizers(family="dcgan", feature_matching=0.5, diffaugment="cutout") == ["feature_matching"]
    assert regularizers(family="lapgan", feature_matching=1.0) == [f"feature_matching_{level}" for level in LEVELS]
    assert regularizers(family="cyclegan", r1_weight=1.0) == [f"r1_penalty_{domain}" for domain in DOMAINS]
