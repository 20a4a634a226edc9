"""SRGAN: super-resolution and restoration with a GAN (Ledig et al., 2017), on pairs made on the fly.

Every training image is degraded in the step itself — downscaled by 2 or 4, blurred, made noisy
or made blocky (the `degradation` setting) — and the generator learns to undo it: residual
blocks, then sub-pixel (pixel-shuffle) upsampling for super-resolution. Its loss is a content
loss (pixel MSE, plus the MSE between the project's evaluator features of its output and of the
original, standing in for the VGG features of the paper, which cannot be downloaded offline)
and, after `warmup_steps` of content loss alone (the paper's SRResNet start), an adversarial term
of weight `adversarial_weight` from a discriminator that tells originals from restored images.
The stabilizers (`families/stabilizers.py`) work as in the noise-to-image families: DiffAugment
augments the originals and the restored images D sees (R1 is on the augmented originals); the
content loss is on the restored images as they are. Feature matching, like the adversarial term,
joins G's loss only after the warm-up.

The sampler maps a degraded image to a restored one. Generate shows pairs of held-out digits
(low-res | bicubic | SRGAN | original, or degraded | restored | original) with PSNR and SSIM; the
baseline to beat is bicubic upsampling for super-resolution and the degraded input itself for
restoration.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from gan_core import losses
from gan_core.config import RunConfig, setting
from gan_core.data.images import interleaved, scaled_to
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.families.adversarial import make_optimizer, run_generator
from gan_core.families.base import Column, DataSpec, GanFamily, Parts
from gan_core.families.blocks import real_logits_and_r1
from gan_core.families.stabilizers import (
    STABILIZER_METRICS,
    StabilizerSettings,
    augment_draws,
    augmented,
    feature_matching_term,
    feature_model,
    logits_of,
)
from gan_core.history_metrics import Metric
from gan_core.lazy_tf import keras, layers, tf

DEGRADATIONS = ("x2", "x4", "blur", "noise", "blocks")
SCALES = {"x2": 2, "x4": 4}
BLUR_SIZE, BLUR_SIGMA = 5, 1.2
BLOCK, LEVELS = 2, 4  # "blocks": the mean of each 2x2 block, quantized to 4 grey levels
SAMPLE_ROWS = 8
PSNR_CAP = 100.0


@dataclasses.dataclass
class SrganSettings(StabilizerSettings):
    """The settings of a super-resolution or restoration GAN."""

    degradation: str = setting(
        "x4", "What the generator learns to undo: downscaling by 2 or 4 (super-resolution), Gaussian blur, "
        "Gaussian noise, or blocks (2x2 means quantized to 4 grey levels).", "architecture", "Degradation", choices=DEGRADATIONS,
    )
    noise_std: float = setting(0.3, "Standard deviation of the added noise, on the [-1, 1] pixel scale (noise only).", "architecture", "Noise level", min=0.0, max=2.0)
    blocks: int = setting(4, "Residual blocks in the generator.", "architecture", "Residual blocks", min=1, max=16)
    width: float = setting(0.5, "Channel multiplier of both networks (1.0 = 64 channels).", "architecture", "Width multiplier", min=0.125, max=4.0)
    loss: str = setting("bce", "Adversarial objective.", "loss", "Loss", choices=losses.LOSSES)
    feature_weight: float = setting(
        0.01, "Weight of the evaluator-feature MSE in the content loss (0 = pixels only; needs a labelled dataset).",
        "loss", "Feature loss weight", min=0.0, max=100.0,
    )
    adversarial_weight: float = setting(1e-3, "Weight of the adversarial term in G's loss.", "loss", "Adversarial weight", min=0.0, max=10.0)
    warmup_steps: int = setting(500, "Steps of content loss alone before the adversarial term starts.", "loss", "Content-only warm-up steps", min=0, max=1_000_000)
    gp_weight: float = setting(10.0, "Gradient-penalty weight (wgan-gp only).", "regularizers", "Gradient-penalty weight", min=0.0, max=1000.0)
    g_lr: float = setting(2e-4, "Generator learning rate (Adam).", "optimizer", "G learning rate", min=1e-7, max=1000.0)
    d_lr: float = setting(2e-4, "Discriminator learning rate (Adam).", "optimizer", "D learning rate", min=1e-7, max=1000.0)
    beta1: float = setting(0.9, "Adam beta 1 of both networks.", "optimizer", "Adam beta 1", min=0.0, max=0.999)
    beta2: float = setting(0.999, "Adam beta 2 of both networks.", "optimizer", "Adam beta 2", min=0.0, max=0.9999)

    def validate(self) -> None:
        losses.check_penalty_weight(self.loss, self.gp_weight)


# ---- degradations (TensorFlow, on images in [-1, 1]) --------------------------------------------
def _blur_kernel(channels: int) -> tf.Tensor:
    x = np.arange(BLUR_SIZE) - (BLUR_SIZE - 1) / 2
    g = np.exp(-(x**2) / (2 * BLUR_SIGMA**2))
    k = np.outer(g, g) / np.outer(g, g).sum()
    return tf.constant(np.tile(k[:, :, None, None], (1, 1, channels, 1)), tf.float32)


def degrade(images: tf.Tensor, degradation: str, noise: tf.Tensor | None = None, noise_std: float = 0.0) -> tf.Tensor:
    """The degraded version of float images in [-1, 1]; `noise` is a standard normal tensor shaped like them (noise only)."""
    x = tf.cast(images, tf.float32)
    if degradation in SCALES:
        return tf.nn.avg_pool2d(x, SCALES[degradation], SCALES[degradation], "VALID")
    if degradation == "blur":
        pad = BLUR_SIZE // 2
        padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
        return tf.nn.depthwise_conv2d(padded, _blur_kernel(x.shape[-1]), [1, 1, 1, 1], "VALID")
    if degradation == "noise":
        return tf.clip_by_value(x + noise_std * tf.cast(noise, tf.float32), -1.0, 1.0)
    if degradation == "blocks":
        means = tf.nn.avg_pool2d(x, BLOCK, BLOCK, "VALID")
        quantized = tf.round((means + 1.0) / 2.0 * (LEVELS - 1)) / (LEVELS - 1) * 2.0 - 1.0
        return tf.repeat(tf.repeat(quantized, BLOCK, axis=1), BLOCK, axis=2)
    raise ConfigError(f"degradation must be one of {', '.join(DEGRADATIONS)}; got {degradation!r}.")


def baseline(degraded: tf.Tensor, config: RunConfig, shape: tuple[int, int, int]) -> tf.Tensor:
    """What the generator must beat: bicubic upsampling for super-resolution, the degraded image itself otherwise."""
    if config.degradation not in SCALES:
        return tf.cast(degraded, tf.float32)
    return tf.clip_by_value(tf.image.resize(tf.cast(degraded, tf.float32), shape[:2], method="bicubic"), -1.0, 1.0)


def batch_psnr(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Mean PSNR in dB of two batches in [-1, 1] (peak-to-peak 2), capped for identical images."""
    mse = tf.reduce_mean(tf.square(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)), axis=[1, 2, 3])
    return tf.reduce_mean(tf.minimum(10.0 * tf.math.log(4.0 / tf.maximum(mse, 1e-12)) / tf.math.log(10.0), PSNR_CAP))


# ---- networks -------------------------------------------------------------------------------
def _channels(width: float) -> int:
    return max(8, int(round(64 * width)))


def pixel_shuffle(x: keras.KerasTensor, channels: int) -> keras.KerasTensor:
    """Sub-pixel upsampling by 2 (depth to space) from built-in layers: (H, W, 4c) -> (2H, 2W, c)."""
    height, width = x.shape[1], x.shape[2]
    x = layers.Reshape((height, width, 2, 2, channels))(x)
    x = layers.Permute((1, 3, 2, 4, 5))(x)
    return layers.Reshape((2 * height, 2 * width, channels))(x)


def build_generator(input_shape: tuple[int, int, int], scale: int, blocks: int, width: float, sync_batch_norm: bool = False) -> keras.Model:
    """Degraded image -> restored image (tanh): SRGAN's residual blocks, then one pixel shuffle per factor of 2.

    `sync_batch_norm`: batch statistics over the global batch of all replicas (for training on several).
    """
    c = _channels(width)
    bn = functools.partial(layers.BatchNormalization, synchronized=sync_batch_norm)
    degraded = keras.Input(shape=input_shape, name="degraded")
    x = skip = layers.PReLU(shared_axes=[1, 2])(layers.Conv2D(c, 3, padding="same")(degraded))
    for _ in range(blocks):
        y = layers.PReLU(shared_axes=[1, 2])(bn()(layers.Conv2D(c, 3, padding="same")(x)))
        y = bn()(layers.Conv2D(c, 3, padding="same")(y))
        x = layers.Add()([x, y])
    x = layers.Add()([skip, bn()(layers.Conv2D(c, 3, padding="same")(x))])
    for _ in range(int(np.log2(scale))):
        x = layers.PReLU(shared_axes=[1, 2])(pixel_shuffle(layers.Conv2D(4 * c, 3, padding="same")(x), c))
    restored = layers.Conv2D(input_shape[-1], 3, padding="same", activation="tanh", dtype="float32")(x)
    return keras.Model(degraded, restored, name="generator")


def build_discriminator(shape: tuple[int, int, int], width: float, sync_batch_norm: bool = False) -> keras.Model:
    """Image -> logit that it is an original rather than a restored one (`sync_batch_norm` as in `build_generator`)."""
    c = _channels(width)
    image = keras.Input(shape=shape, name="image")
    x = layers.LeakyReLU(0.2)(layers.Conv2D(c, 3, padding="same")(image))
    for filters in (c, 2 * c):
        normalized = layers.BatchNormalization(synchronized=sync_batch_norm)(layers.Conv2D(filters, 3, strides=2, padding="same")(x))
        x = layers.LeakyReLU(0.2)(normalized)
    logit = layers.Dense(1, dtype="float32")(layers.Flatten()(x))
    return keras.Model(image, logit, name="discriminator")


def feature_network(dataset: str) -> keras.Model:
    """The evaluator classifier's penultimate features of uint8-valued images (its training data is the run's dataset)."""
    from gan_core.evaluation.evaluator import FEATURE_LAYER, get_evaluator

    model = get_evaluator(dataset).model
    features = keras.Model(model.input, model.get_layer(FEATURE_LAYER).output, name="evaluator_features")
    features.trainable = False
    return features


# ---- the family ---------------------------------------------------------------------------------
class SRGAN(GanFamily):
    """A generator that restores degraded images against a discriminator of originals."""

    name = "srgan"
    settings = SrganSettings
    image_to_image = True
    compares_distributions = False
    metrics = (
        Metric("g_loss", "G loss (total)", "Losses", short="G", loss=True),
        Metric("d_loss", "D loss", "Losses", short="D", loss=True),
        Metric("pixel_mse", "Pixel MSE", "Content loss", loss=True),
        Metric("feature_mse", "Evaluator-feature MSE", "Content loss", loss=True),
        Metric("g_adversarial", "G adversarial term", "Adversarial"),
        Metric("d_fake", "D(restored)", "Adversarial"),
        Metric("psnr", "PSNR of G (dB)", "PSNR", short="PSNR"),
        Metric("psnr_baseline", "PSNR of the baseline (dB)", "PSNR"),
        *STABILIZER_METRICS,
    )
    divergence_advice = "Try lower learning rates, a smaller adversarial weight or a longer warm-up."

    def check_data(self, config: RunConfig, data: ImageSet) -> None:
        factor = SCALES.get(config.degradation, BLOCK if config.degradation == "blocks" else 1)
        height, width, _ = data.image_shape
        if height % factor or width % factor:
            raise ConfigError(
                f"degradation={config.degradation} needs image sides divisible by {factor}; '{data.source}' has {height}x{width} images."
            )
        if config.feature_weight > 0 and data.num_classes < 2:
            raise ConfigError(
                f"feature_weight above 0 needs a labelled dataset (the evaluator's classifier gives the features); "
                f"'{data.source}' has no labels: set feature_weight=0."
            )

    @staticmethod
    def input_shape(config: RunConfig, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        scale = SCALES.get(config.degradation, 1)
        return (shape[0] // scale, shape[1] // scale, shape[2])

    def generator(self, config: RunConfig, spec: DataSpec, sync_batch_norm: bool = False) -> keras.Model:
        shape, scale = self.input_shape(config, spec.image_shape), SCALES.get(config.degradation, 1)
        return build_generator(shape, scale, config.blocks, config.width, sync_batch_norm)

    # ---- training ---------------------------------------------------------------------------
    def build(self, config, spec, sync_batch_norm):
        policy = keras.mixed_precision.global_policy().name
        networks = {
            "generator": self.generator(config, spec, sync_batch_norm),
            "discriminator": build_discriminator(spec.image_shape, config.width, sync_batch_norm),
        }
        optimizers = {
            "g_optimizer": make_optimizer(config.g_lr, config.beta1, config.beta2, policy),
            "d_optimizer": make_optimizer(config.d_lr, config.beta1, config.beta2, policy),
        }
        optimizers["g_optimizer"].build(networks["generator"].trainable_variables)
        optimizers["d_optimizer"].build(networks["discriminator"].trainable_variables)
        fixed = {"features": feature_network(config.dataset)} if config.feature_weight > 0 else {}
        if config.feature_matching > 0:
            fixed["discriminator_features"] = feature_model(networks["discriminator"])
        return Parts(networks, optimizers, "generator", fixed=fixed)

    def draws(self, config, rng, rows, spec):
        noise = {"noise": rng.normal([rows, *spec.image_shape])} if config.degradation == "noise" else {}
        return {**noise, **augment_draws(config, rng, rows), **losses.get(config.loss).penalty_draws(rng, rows)}

    def train_step(self, parts, config, images, labels, draws, ctx):
        G, D = parts.networks["generator"], parts.networks["discriminator"]
        g_opt, d_opt = parts.optimizers["g_optimizer"], parts.optimizers["d_optimizer"]
        objective = losses.get(config.loss)
        original = tf.cast(images, tf.float32)
        degraded = degrade(original, config.degradation, draws.get("noise"), config.noise_std)
        adversarial_on = tf.cast(g_opt.iterations >= config.warmup_steps, tf.float32)
        critic = parts.fixed.get("discriminator_features", D)
        real = augmented(config, original, draws, "real")
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            restored = tf.cast(G(degraded, training=True), tf.float32)
            fake = augmented(config, restored, draws, "fake")
            real_out, r1 = real_logits_and_r1(critic, real, config.r1_weight)
            fake_out = critic(fake, training=True)
            real_logits, fake_logits = logits_of(real_out), logits_of(fake_out)
            pixel = tf.reduce_mean(tf.square(restored - original))
            feature = self._feature_mse(parts, restored, original)
            g_adversarial = objective.g_loss(fake_logits)
            g_loss = pixel + config.feature_weight * feature + adversarial_on * config.adversarial_weight * g_adversarial
            matching = feature_matching_term(config, real_out, fake_out)
            if config.feature_matching > 0:
                g_loss = g_loss + adversarial_on * config.feature_matching * matching
            d_loss = objective.d_loss(real_logits, fake_logits, 0.0)
            if config.r1_weight > 0:
                d_loss = d_loss + config.r1_weight / 2 * r1
            penalty = objective.penalty(D, real, fake, None, config.gp_weight, draws)
            if penalty is not None:
                d_loss = d_loss + penalty
            g_scaled, d_scaled = ctx.scaled(g_opt, g_loss), ctx.scaled(d_opt, d_loss)
        ctx.apply(g_opt, g_tape, g_scaled, G.trainable_variables)
        ctx.apply(d_opt, d_tape, d_scaled, D.trainable_variables)
        return {
            "g_loss": tf.cast(g_loss, tf.float32),
            "d_loss": tf.cast(d_loss, tf.float32),
            "pixel_mse": pixel,
            "feature_mse": tf.cast(feature, tf.float32),
            "g_adversarial": tf.cast(g_adversarial, tf.float32),
            "d_fake": objective.probability(fake_logits),
            "psnr": batch_psnr(restored, original),
            "psnr_baseline": batch_psnr(baseline(degraded, config, original.shape[1:]), original),
            "r1_penalty": tf.cast(r1, tf.float32),
            "feature_matching": matching,
        }

    @staticmethod
    def _feature_mse(parts: Parts, restored: tf.Tensor, original: tf.Tensor) -> tf.Tensor:
        if "features" not in parts.fixed:
            return tf.constant(0.0)
        features = parts.fixed["features"]
        return tf.reduce_mean(tf.square(features((restored + 1.0) * 127.5) - features((original + 1.0) * 127.5)))

    # ---- sampling ---------------------------------------------------------------------------
    def sampler(self, config, spec):
        return "generator", self.generator(config, spec)

    def exports(self, config, spec):
        return {"generator": self.sampler(config, spec), "discriminator": ("discriminator", build_discriminator(spec.image_shape, config.width))}

    def originals(self, config: RunConfig, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """n held-out images of the run's dataset (the evaluator's split), picked by a seed, as floats in [-1, 1], and their labels."""
        from gan_core.evaluation.evaluator import heldout_sample

        return heldout_sample(config.dataset, n, seed)

    def model_inputs(self, config, originals, seed):
        """The originals degraded the run's way (noise drawn from the seed)."""
        noise = np.random.default_rng(seed).standard_normal(originals.shape, dtype=np.float32)
        return np.asarray(degrade(tf.constant(originals, tf.float32), config.degradation, noise, config.noise_std))

    def pairs(self, model, config, n, seed, networks=None):
        """Held-out originals degraded, the baseline, the generator's restoration, the original."""
        originals, labels = self.originals(config, n, seed)
        degraded = self.model_inputs(config, originals, seed)
        restored = run_generator(model, degraded)

        def scored(images: np.ndarray) -> Column:
            return Column(images, labels, read_by=config.dataset, scored_against="Original")

        original = Column(originals, labels, read_by=config.dataset)
        if config.degradation in SCALES:
            low = f"Low-res ({degraded.shape[1]}x{degraded.shape[2]})"
            bicubic = np.asarray(baseline(degraded, config, originals.shape[1:]))
            return {low: Column(degraded), "Bicubic": scored(bicubic), "SRGAN": scored(restored), "Original": original}
        return {f"Degraded ({config.degradation})": scored(degraded), "Restored": scored(restored), "Original": original}

    def generate(self, model, config, num_classes, n, seed, label=None):
        return run_generator(model, self.model_inputs(config, self.originals(config, n, seed)[0], seed)), None

    def sample_grid(self, model, config, num_classes, networks=None):
        columns = [column.images for column in self.pairs(model, config, SAMPLE_ROWS, config.seed).values()]
        shown = [scaled_to(images, columns[-1].shape[1]) for images in columns]
        return interleaved(shown), len(shown)
