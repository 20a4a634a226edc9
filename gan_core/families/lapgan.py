"""LAPGAN: a Laplacian pyramid of GANs (Denton et al., 2015), coarse to fine.

A small GAN draws the coarsest image (7x7 for MNIST: a quarter of each side). Each finer level
(14x14, then 28x28) has a conditional generator that draws the *residual* between the upsampled
coarser image and the finer image, and a discriminator that judges that residual given the
upsampled coarser image. Every level trains on real pyramids: level k's condition is the
upsampled real image of level k-1, so the three GANs learn side by side in one train step.

The stabilizers (`families/stabilizers.py`) apply to each level's D with the level's own draws:
DiffAugment augments what D sees, the image (or residual) and its condition alike (one transform for
the pair, so they stay aligned: a real pair with the real draws, a fake pair with the fake draws);
R1 is the gradient with respect to the augmented image or residual alone; feature matching reads each
D's last hidden features. wgan-gp's penalty stays on the un-augmented pairs: the real and the fake
pair's conditions are augmented differently, so there is no one condition to interpolate with.

With `ema_decay` above 0, an exponential moving average of each generator (its decay warming up with the
step count, as dcgan's) draws the samples and the exported generator; 0, the default, keeps old runs' checkpoints.

Sampling runs the whole pyramid. The sampler is one Keras model with a single noise input made of
the coarse GAN's `latent_dim` values followed by `noise_dim` values for each finer level, so the
Generate page's grids, interpolation and latent walk work on it as on any generator, and redrawing
only the last `noise_dim` values redraws only the finest level's detail.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gan_core import losses
from gan_core.config import RunConfig, setting
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.families.adversarial import ema_update, make_optimizer, run_generator, shrunk
from gan_core.families.base import DataSpec, GanFamily, Parts, suffixed, unsuffixed
from gan_core.families.blocks import real_logits_and_r1
from gan_core.families.rows import FAKE, INTERPOLATES, REAL, dropout_draw, dropout_layer, with_row_dropout
from gan_core.families.stabilizers import (
    StabilizerSettings,
    augmented,
    discriminator_draws,
    feature_matching_term,
    feature_model,
    logits_of,
    metrics_per_network,
)
from gan_core.history_metrics import Metric
from gan_core.lazy_tf import keras, layers, tf

LEVELS = ("coarse", "middle", "fine")  # the coarsest image is 1/4 of each side, then 1/2, then full size
SAMPLE_COUNT, SAMPLE_COLUMNS = 64, 8  # the sample grid: 8 rows of 8


@dataclasses.dataclass
class LapganSettings(StabilizerSettings):
    """The settings of a three-level Laplacian pyramid of GANs."""

    latent_dim: int = setting(64, "Size of the noise vector of the coarsest GAN.", "architecture", "Latent dimension (coarse GAN)", min=1, max=1024)
    noise_dim: int = setting(
        16, "Size of the noise vector each finer level draws its detail from.", "architecture", "Noise per finer level", min=1, max=256
    )
    width: float = setting(0.5, "Channel multiplier of every network (1.0 = 64 base channels).", "architecture", "Width multiplier", min=0.125, max=4.0)
    dropout: float = setting(0.3, "Dropout rate in the discriminators.", "architecture", "Dropout (discriminators)", min=0.0, max=0.9)
    loss: str = setting("bce", "GAN objective of every level.", "loss", "Loss", choices=losses.LOSSES)
    label_smoothing: float = setting(
        0.0, "One-sided label smoothing: real targets become 1 - value.", "regularizers", "Label smoothing", min=0.0, max=0.45
    )
    gp_weight: float = setting(10.0, "Gradient-penalty weight (wgan-gp only).", "regularizers", "Gradient-penalty weight", min=0.0, max=1000.0)
    ema_decay: float = setting(
        0.0, "EMA of the three generators' weights for samples and export; 0 turns it off.", "regularizers", "Generator EMA decay",
        min=0.0, max=0.9999,
    )
    g_lr: float = setting(2e-4, "Learning rate of the generators (Adam).", "optimizer", "G learning rate", min=1e-7, max=1000.0)
    d_lr: float = setting(2e-4, "Learning rate of the discriminators (Adam).", "optimizer", "D learning rate", min=1e-7, max=1000.0)
    beta1: float = setting(0.5, "Adam beta 1 of every network.", "optimizer", "Adam beta 1", min=0.0, max=0.999)
    beta2: float = setting(0.999, "Adam beta 2 of every network.", "optimizer", "Adam beta 2", min=0.0, max=0.9999)

    def validate(self) -> None:
        losses.check_penalty_weight(self.loss, self.gp_weight)


# ---- the pyramid ------------------------------------------------------------------------------
def downsample(images: tf.Tensor) -> tf.Tensor:
    """Half of each side: the mean of each 2x2 block."""
    return tf.nn.avg_pool2d(tf.cast(images, tf.float32), ksize=2, strides=2, padding="VALID")


def upsampler(name: str = "upsample") -> keras.layers.Layer:
    """Twice each side, bilinear, in float32: the one upsampling of training and sampling."""
    return layers.UpSampling2D(2, interpolation="bilinear", dtype="float32", name=name)


def real_pyramid(images: tf.Tensor) -> list[tf.Tensor]:
    """The images at each level, coarsest first (1/4, 1/2 and the full size of each side)."""
    fine = tf.cast(images, tf.float32)
    middle = downsample(fine)
    return [downsample(middle), middle, fine]


def compose(z: tf.Tensor, generators: list[keras.Model], latent_dim: int, noise_dim: int) -> list[tf.Tensor]:
    """Each level's image from one noise vector, coarsest first: the coarse GAN's image, then upsampled + residual.

    Works on symbolic tensors (to build the sampler) and on real ones (the pyramid view).
    """
    coarse_generator, *level_generators = generators
    images = [coarse_generator(z[:, :latent_dim])]
    for level, generator in enumerate(level_generators):
        start = latent_dim + level * noise_dim
        condition = upsampler(f"upsample_{level + 1}")(images[-1])
        residual = generator([condition, z[:, start : start + noise_dim]])
        images.append(keras.ops.clip(layers.Add(dtype="float32")([condition, residual]), -1.0, 1.0))
    return images


# ---- networks ---------------------------------------------------------------------------------
def _channels(width: float) -> int:
    return max(8, int(round(64 * width)))


def coarse_generator(latent_dim: int, shape: tuple[int, int, int], width: float, sync_batch_norm: bool = False) -> keras.Model:
    """z -> the coarsest image (tanh); `sync_batch_norm`: batch statistics over the global batch of all replicas."""
    height, wide, channels = shape
    c = _channels(width)
    z = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(height * wide * c, use_bias=False)(z)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization(synchronized=sync_batch_norm)(x))
    x = layers.Reshape((height, wide, c))(x)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization(synchronized=sync_batch_norm)(layers.Conv2D(c, 3, padding="same", use_bias=False)(x)))
    image = layers.Conv2D(channels, 3, padding="same", activation="tanh", dtype="float32")(x)
    return keras.Model(z, image, name="g_coarse")


def residual_generator(noise_dim: int, shape: tuple[int, int, int], width: float, name: str, sync_batch_norm: bool = False) -> keras.Model:
    """(upsampled coarser image, noise) -> the residual that makes it the finer image (`sync_batch_norm` as above)."""
    height, wide, channels = shape
    c = _channels(width)
    condition = keras.Input(shape=shape, name="condition")
    noise = keras.Input(shape=(noise_dim,), name="noise")
    noise_map = layers.Reshape((height, wide, 1))(layers.Dense(height * wide)(noise))
    x = layers.Concatenate()([condition, noise_map])
    for _ in range(2):
        x = layers.ReLU()(layers.BatchNormalization(synchronized=sync_batch_norm)(layers.Conv2D(c, 3, padding="same", use_bias=False)(x)))
    residual = layers.Conv2D(channels, 3, padding="same", dtype="float32")(x)
    return keras.Model([condition, noise], residual, name=name)


def discriminator(shape: tuple[int, int, int], width: float, dropout: float, conditioned: bool, name: str, row_dropout: bool = False) -> keras.Model:
    """image (and, above the coarsest level, its upsampled coarser image) -> logit.

    `row_dropout`: dropout as `rows.RowDropout` (training) instead of Keras' Dropout (exported files).
    """
    c = _channels(width)
    image = keras.Input(shape=shape, name="image")
    inputs = [image, keras.Input(shape=shape, name="condition")] if conditioned else [image]
    x = layers.Concatenate()(inputs) if conditioned else image
    x = layers.LeakyReLU(0.2)(layers.Conv2D(c, 3, strides=2 if conditioned else 1, padding="same")(x))
    x = layers.LeakyReLU(0.2)(layers.Conv2D(2 * c, 3, strides=2, padding="same")(x))
    x = dropout_layer(dropout, f"{name}_dropout", 0, row_dropout)(layers.Flatten()(x))
    logit = layers.Dense(1, dtype="float32")(x)
    return keras.Model(inputs if conditioned else image, logit, name=name)


def level_shapes(image_shape: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """The image shape at each level, coarsest first."""
    height, width, channels = image_shape
    return [(height // 4, width // 4, channels), (height // 2, width // 2, channels), (height, width, channels)]


# ---- the family -------------------------------------------------------------------------------
class LAPGAN(GanFamily):
    """A coarse GAN and two residual GANs, one per finer level of the Laplacian pyramid."""

    name = "lapgan"
    settings = LapganSettings
    # The finest level's losses are the headline (progress line, runs table, Compare): it draws the final detail.
    metrics = (
        *(Metric(f"g_{level}", f"G loss, {level}", "Generator losses", short="Gf" * (level == "fine"), loss=True) for level in LEVELS),
        *(Metric(f"d_{level}", f"D loss, {level}", "Discriminator losses", short="Df" * (level == "fine"), loss=True) for level in LEVELS),
        *(Metric(f"d_fake_{level}", f"D(G(z)), {level}", "D outputs on fakes") for level in LEVELS),
        *metrics_per_network(LEVELS),
    )
    divergence_advice = "Try lower learning rates, label smoothing, or the wgan-gp loss."
    stage_view = "Pyramid"

    def check_data(self, config: RunConfig, data: ImageSet) -> None:
        height, width, _ = data.image_shape
        if height % 4 or width % 4:
            raise ConfigError(f"The lapgan family needs image sides divisible by 4 (two halvings); '{data.source}' has {height}x{width} images.")

    # ---- networks ---------------------------------------------------------------------------
    def generators(self, config: RunConfig, spec: DataSpec, sync_batch_norm: bool = False) -> list[keras.Model]:
        """The coarse generator, then one residual generator per finer level."""
        shapes = level_shapes(spec.image_shape)
        return [
            coarse_generator(config.latent_dim, shapes[0], config.width, sync_batch_norm),
            *(
                residual_generator(config.noise_dim, shape, config.width, f"g_{level}", sync_batch_norm)
                for level, shape in zip(LEVELS[1:], shapes[1:])
            ),
        ]

    def pyramid_sampler(self, config: RunConfig, generators: list[keras.Model]) -> keras.Model:
        """One model: the whole noise vector in, the finest image out."""
        z = keras.Input(shape=(config.latent_dim + (len(LEVELS) - 1) * config.noise_dim,), name="z")
        return keras.Model(z, compose(z, generators, config.latent_dim, config.noise_dim)[-1], name="generator")

    def discriminators(self, config: RunConfig, spec: DataSpec, row_dropout: bool = False) -> list[keras.Model]:
        return [
            discriminator(shape, config.width, config.dropout, conditioned=level != LEVELS[0], name=f"d_{level}", row_dropout=row_dropout)
            for level, shape in zip(LEVELS, level_shapes(spec.image_shape))
        ]

    # ---- training ---------------------------------------------------------------------------
    def build(self, config, spec, sync_batch_norm):
        """The three generators and discriminators, and the pyramid sampler ("generator"): of the EMA copies when on."""
        policy = keras.mixed_precision.global_policy().name
        generators = self.generators(config, spec, sync_batch_norm)
        discriminators = self.discriminators(config, spec, row_dropout=True)
        networks = {**{g.name: g for g in generators}, **{d.name: d for d in discriminators}}
        sampled = generators
        if config.ema_decay > 0:
            sampled = self.generators(config, spec)
            for ema, generator in zip(sampled, generators):
                ema.set_weights(generator.get_weights())
                networks[f"ema_{generator.name}"] = ema
        networks["generator"] = self.pyramid_sampler(config, sampled)
        optimizers = {}
        for nets, lr in ((generators, config.g_lr), (discriminators, config.d_lr)):
            for net in nets:
                optimizers[f"{net.name}_optimizer"] = make_optimizer(lr, config.beta1, config.beta2, policy)
                optimizers[f"{net.name}_optimizer"].build(net.trainable_variables)
        fixed = {f"{d.name}_features": feature_model(d) for d in discriminators} if config.feature_matching > 0 else {}
        return Parts(networks, optimizers, "generator", fixed=fixed)

    def draws(self, config, rng, rows, spec):
        return {
            "z": rng.normal([rows, config.latent_dim]),
            **{f"noise_{level}": rng.normal([rows, config.noise_dim]) for level in LEVELS[1:]},
            **{key: value for level in LEVELS for key, value in suffixed(discriminator_draws(config, rng, rows), level).items()},
            **({"dropout": dropout_draw(rng, rows)} if config.dropout > 0 else {}),
        }

    def train_step(self, parts, config, images, labels, draws, ctx):
        pyramid = real_pyramid(images)
        metrics = {}
        for k, level in enumerate(LEVELS):
            if k == 0:
                condition, real, noise = None, pyramid[0], draws["z"]
            else:
                condition = upsampler()(pyramid[k - 1])
                real, noise = pyramid[k] - condition, draws[f"noise_{level}"]
            level_draws = unsuffixed(draws, level)
            masks = (draws.get("dropout"), config.batch_size, len(LEVELS) * k)
            metrics.update(self._level_update(parts, config, ctx, level, condition, real, noise, level_draws, masks))
        return {metric.name: metrics[metric.name] for metric in self.metrics}

    def after_step(self, parts, config):
        if config.ema_decay > 0:
            pairs = [(parts.networks[f"ema_g_{level}"], parts.networks[f"g_{level}"]) for level in LEVELS]
            ema_update(pairs, parts.optimizers["g_coarse_optimizer"].iterations, config.ema_decay)

    def _level_update(self, parts, config, ctx, level, condition, real, noise, draws, masks):
        """One joint G and D update of one level; real is the image (coarsest) or the true residual (finer).

        `draws`: the level's penalty and augmentation draws; `masks`: (the step's dropout draw, the global batch's rows,
        the level's first call).
        """
        G, D = parts.networks[f"g_{level}"], parts.networks[f"d_{level}"]
        draw, total, first = masks
        g_opt, d_opt = parts.optimizers[f"g_{level}_optimizer"], parts.optimizers[f"d_{level}_optimizer"]
        objective = losses.get(config.loss)
        critic = parts.fixed.get(f"d_{level}_features", D)

        def judge(role, call):
            """D (or its feature view) as a function of the augmented image alone, the condition augmented alike and bound."""
            seen = None if condition is None else augmented(config, condition, draws, role)
            network = with_row_dropout(critic, draw, total, first + call)
            return lambda x, training=True: network(x if seen is None else [x, seen], training=training)

        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = G(noise if condition is None else [condition, noise], training=True)
            real_out, r1 = real_logits_and_r1(judge("real", REAL), augmented(config, real, draws, "real"), config.r1_weight)
            fake_out = judge("fake", FAKE)(augmented(config, fake, draws, "fake"))
            real_logits, fake_logits = logits_of(real_out), logits_of(fake_out)
            g_loss = objective.g_loss(fake_logits)
            matching = feature_matching_term(config, real_out, fake_out)
            if config.feature_matching > 0:
                g_loss = g_loss + config.feature_matching * matching
            d_loss = objective.d_loss(real_logits, fake_logits, config.label_smoothing)
            if config.r1_weight > 0:
                d_loss = d_loss + config.r1_weight / 2 * r1
            penalty = objective.penalty(with_row_dropout(D, draw, total, first + INTERPOLATES), real, fake, condition, config.gp_weight, draws)
            if penalty is not None:
                d_loss = d_loss + penalty
            g_scaled, d_scaled = ctx.scaled(g_opt, g_loss), ctx.scaled(d_opt, d_loss)
        ctx.apply(g_opt, g_tape, g_scaled, G.trainable_variables)
        ctx.apply(d_opt, d_tape, d_scaled, D.trainable_variables)
        return {
            f"g_{level}": tf.cast(g_loss, tf.float32),
            f"d_{level}": tf.cast(d_loss, tf.float32),
            f"d_fake_{level}": objective.probability(fake_logits),
            f"r1_penalty_{level}": tf.cast(r1, tf.float32),
            f"feature_matching_{level}": matching,
        }

    # ---- sampling ---------------------------------------------------------------------------
    def sampler(self, config, spec):
        return "generator", self.pyramid_sampler(config, self.generators(config, spec))

    def exports(self, config, spec):
        return {
            "generator": self.sampler(config, spec),
            **{d.name: (d.name, d) for d in self.discriminators(config, spec)},
        }

    def generate(self, model, config, num_classes, n, seed, label=None, truncation=1.0, networks=None):
        z = np.random.default_rng(seed).standard_normal((n, model.inputs[0].shape[-1]), dtype=np.float32)
        return run_generator(model, shrunk(z, truncation)), None

    def sample_grid(self, model, config, num_classes, networks=None):
        z = np.random.default_rng(config.seed).standard_normal((SAMPLE_COUNT, model.inputs[0].shape[-1]), dtype=np.float32)
        return run_generator(model, z), SAMPLE_COLUMNS

    def stages(self, model, config, z):
        return [(f"{image.shape[1]}x{image.shape[2]}", image) for image in pyramid_images(model, config, z)]

    def detail_noise(self, config):
        return slice(config.latent_dim + (len(LEVELS) - 2) * config.noise_dim, config.latent_dim + (len(LEVELS) - 1) * config.noise_dim)


def pyramid_images(sampler: keras.Model, config: RunConfig, z: np.ndarray) -> list[np.ndarray]:
    """Each level of the samples of a LAPGAN sampler (coarsest first), in [-1, 1]."""
    generators = [sampler.get_layer(f"g_{level}") for level in LEVELS]
    return [np.asarray(level, np.float32) for level in compose(tf.constant(z), generators, config.latent_dim, config.noise_dim)]
