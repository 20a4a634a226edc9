"""Noise-to-image adversarial GANs: one generator, one discriminator, a registered loss.

The shared body of the dcgan and mlp families (each module only picks its networks). It trains
as the TensorFlow DCGAN tutorial does: each step takes `batch_size x d_steps` images, makes
`d_steps - 1` discriminator-only updates and then one joint update in which a single forward
pass feeds both tapes. Optional: class conditioning (the keras-io conditional GAN), an EMA copy
of the generator for samples and export, and any loss of `gan_core.losses` (its penalty term,
such as WGAN-GP's, is added when the loss has one).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gan_core import losses
from gan_core.config import RunConfig, setting
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.families.base import DataSpec, GanFamily, Parts
from gan_core.families.blocks import real_logits_and_r1
from gan_core.families.networks import build_discriminator, build_generator
from gan_core.families.rows import FAKE, INTERPOLATES, REAL, dropout_draw, with_row_dropout
from gan_core.families.stabilizers import (
    STABILIZER_METRICS,
    StabilizerSettings,
    augment_draws,
    augmented,
    feature_matching_term,
    feature_model,
    logits_of,
)
from gan_core.history_metrics import ADVERSARIAL_METRICS
from gan_core.lazy_tf import keras, tf

SAMPLE_COUNT = 64
# The "D overpowering G" rule for sigmoid losses: over the last 50 steps, mean D(G(z)) and mean D loss below these.
OVERPOWER_STEPS = 50
OVERPOWER_D_FAKE = 0.05
OVERPOWER_D_LOSS = 0.1


@dataclasses.dataclass
class AdversarialSettings(StabilizerSettings):
    """The settings of a noise-to-image GAN with one generator and one discriminator."""

    conditional: bool = setting(False, "Condition G and D on class labels (needs a labelled dataset).", "architecture", "Conditional (class labels)")
    latent_dim: int = setting(100, "Size of the noise vector z.", "architecture", "Latent dimension", min=1, max=1024)
    width: float = setting(1.0, "Channel/unit multiplier for both networks (1.0 = tutorial size).", "architecture", "Width multiplier", min=0.125, max=4.0)
    batch_norm: bool = setting(True, "Batch normalization in the generator.", "architecture", "Batch norm (generator)")
    dropout: float = setting(0.3, "Dropout rate in the discriminator.", "architecture", "Dropout (discriminator)", min=0.0, max=0.9)
    spectral_norm: bool = setting(False, "Spectral normalization on the discriminator's layers.", "regularizers", "Spectral norm (discriminator)")
    loss: str = setting("bce", "GAN objective.", "loss", "Loss", choices=losses.LOSSES)
    label_smoothing: float = setting(
        0.0, "One-sided label smoothing: real targets become 1 - value.", "regularizers", "Label smoothing", min=0.0, max=0.45
    )
    gp_weight: float = setting(10.0, "Gradient-penalty weight (wgan-gp only).", "regularizers", "Gradient-penalty weight", min=0.0, max=1000.0)
    ema_decay: float = setting(
        0.0, "EMA of generator weights for samples and export; 0 turns it off.", "regularizers", "Generator EMA decay", min=0.0, max=0.9999
    )
    g_lr: float = setting(2e-4, "Generator learning rate (Adam).", "optimizer", "G learning rate", min=1e-7, max=1000.0)
    d_lr: float = setting(2e-4, "Discriminator learning rate (Adam).", "optimizer", "D learning rate", min=1e-7, max=1000.0)
    g_beta1: float = setting(0.5, "Generator Adam beta 1.", "optimizer", "G Adam beta 1", min=0.0, max=0.999)
    g_beta2: float = setting(0.999, "Generator Adam beta 2.", "optimizer", "G Adam beta 2", min=0.0, max=0.9999)
    d_beta1: float = setting(0.5, "Discriminator Adam beta 1.", "optimizer", "D Adam beta 1", min=0.0, max=0.999)
    d_beta2: float = setting(0.999, "Discriminator Adam beta 2.", "optimizer", "D Adam beta 2", min=0.0, max=0.9999)
    d_steps: int = setting(1, "Discriminator updates per generator update.", "optimizer", "D steps per G step", min=1, max=20)

    def validate(self) -> None:
        losses.check_penalty_weight(self.loss, self.gp_weight)


def make_optimizer(lr: float, beta1: float, beta2: float, policy: str) -> keras.optimizers.Optimizer:
    """Adam, wrapped for dynamic loss scaling under the float16 policy."""
    optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


class AdversarialFamily(GanFamily):
    """A generator z (+ label) -> image against a discriminator image (+ label) -> logit."""

    settings = AdversarialSettings
    metrics = (*ADVERSARIAL_METRICS, *STABILIZER_METRICS)
    divergence_advice = "Try lower learning rates, label smoothing, or the wgan-gp loss."

    # ---- networks: what a family module picks ------------------------------------------
    def generator(self, config: RunConfig, spec: DataSpec, name: str = "generator", sync_batch_norm: bool = False) -> keras.Model:
        return build_generator(
            self.name, image_shape=spec.image_shape, latent_dim=config.latent_dim, num_classes=self._classes(config, spec),
            width=config.width, batch_norm=config.batch_norm, sync_batch_norm=sync_batch_norm, name=name,
        )

    def discriminator(self, config: RunConfig, spec: DataSpec, sync_batch_norm: bool = False, row_dropout: bool = False) -> keras.Model:
        return build_discriminator(
            self.name, image_shape=spec.image_shape, num_classes=self._classes(config, spec), width=config.width,
            dropout=config.dropout, spectral_norm=config.spectral_norm, sync_batch_norm=sync_batch_norm, row_dropout=row_dropout,
        )

    @staticmethod
    def _classes(config: RunConfig, spec: DataSpec) -> int:
        return spec.num_classes if config.conditional else 0

    # ---- data ---------------------------------------------------------------------------
    def check_data(self, config: RunConfig, data: ImageSet) -> None:
        if config.conditional and data.num_classes < 2:
            raise ConfigError(f"conditional=true needs a labelled dataset; '{data.source}' has no class labels.")

    def rows_per_step(self, config: RunConfig) -> int:
        return config.batch_size * config.d_steps

    # ---- training -----------------------------------------------------------------------
    def build(self, config: RunConfig, spec: DataSpec, sync_batch_norm: bool) -> Parts:
        policy = keras.mixed_precision.global_policy().name
        networks = {
            "generator": self.generator(config, spec, sync_batch_norm=sync_batch_norm),
            "discriminator": self.discriminator(config, spec, sync_batch_norm=sync_batch_norm, row_dropout=True),
        }
        sampler = "generator"
        if config.ema_decay > 0:
            ema = self.generator(config, spec, name="ema_generator")
            ema.set_weights(networks["generator"].get_weights())
            networks["ema_generator"] = ema
            sampler = "ema_generator"
        optimizers = {
            "g_optimizer": make_optimizer(config.g_lr, config.g_beta1, config.g_beta2, policy),
            "d_optimizer": make_optimizer(config.d_lr, config.d_beta1, config.d_beta2, policy),
        }
        optimizers["g_optimizer"].build(networks["generator"].trainable_variables)
        optimizers["d_optimizer"].build(networks["discriminator"].trainable_variables)
        fixed = {"discriminator_features": feature_model(networks["discriminator"])} if config.feature_matching > 0 else {}
        return Parts(networks, optimizers, sampler, fixed=fixed)

    def draws(self, config, rng, rows, spec):
        return {
            "z": rng.normal([rows, config.latent_dim]),
            **augment_draws(config, rng, rows),
            **losses.get(config.loss).penalty_draws(rng, rows),
            **({"dropout": dropout_draw(rng, rows)} if config.dropout > 0 else {}),
        }

    def train_step(self, parts, config, images, labels, draws, ctx):
        """d_steps - 1 updates of D, then one of both, each on every d_steps-th row (so each update's rows are the same
        whether one device holds the global batch or several replicas hold a contiguous part of it each)."""
        for j in range(config.d_steps):
            update = self._joint_update if j == config.d_steps - 1 else self._discriminator_update
            chunk = {key: value[j :: config.d_steps] for key, value in draws.items()}
            result = update(parts, config, ctx, images[j :: config.d_steps], labels[j :: config.d_steps], chunk)
        return result

    def _inputs(self, config, x, labels):
        return [x, labels] if config.conditional else x

    def _critic(self, parts, config, labels, draws, call):
        """D as a function of the image alone (labels bound, dropout masks of `call`): the logits or, with feature
        matching, (logits, features)."""
        D = parts.fixed.get("discriminator_features", parts.networks["discriminator"])
        D = with_row_dropout(D, draws.get("dropout"), self.rows_per_step(config), call)
        return lambda x, training=True: D(self._inputs(config, x, labels), training=training)

    def _d_loss(self, parts, config, real, fake, labels, real_logits, fake_logits, r1, draws):
        objective = losses.get(config.loss)
        loss = objective.d_loss(real_logits, fake_logits, config.label_smoothing)
        if config.r1_weight > 0:
            loss = loss + config.r1_weight / 2 * r1
        D = with_row_dropout(parts.networks["discriminator"], draws.get("dropout"), self.rows_per_step(config), INTERPOLATES)
        penalty = objective.penalty(D, real, fake, labels if config.conditional else None, config.gp_weight, draws)
        return loss if penalty is None else loss + penalty

    def _discriminate(self, parts, config, real, fake, labels, draws):
        """D's outputs on the real and fake images as D sees them (augmented), and the R1 penalty on the real ones."""
        real_outputs, r1 = real_logits_and_r1(self._critic(parts, config, labels, draws, REAL), real, config.r1_weight)
        return real_outputs, self._critic(parts, config, labels, draws, FAKE)(fake), r1

    def _discriminator_update(self, parts, config, ctx, real, labels, draws):
        G, D = parts.networks["generator"], parts.networks["discriminator"]
        optimizer = parts.optimizers["d_optimizer"]
        fake = augmented(config, G(self._inputs(config, draws["z"], labels), training=True), draws, "fake")
        real = augmented(config, real, draws, "real")
        with tf.GradientTape() as tape:
            real_out, fake_out, r1 = self._discriminate(parts, config, real, fake, labels, draws)
            d_loss = self._d_loss(parts, config, real, fake, labels, logits_of(real_out), logits_of(fake_out), r1, draws)
            d_loss = ctx.scaled(optimizer, d_loss)
        ctx.apply(optimizer, tape, d_loss, D.trainable_variables)

    def _joint_update(self, parts, config, ctx, real, labels, draws):
        G, D = parts.networks["generator"], parts.networks["discriminator"]
        g_opt, d_opt = parts.optimizers["g_optimizer"], parts.optimizers["d_optimizer"]
        objective = losses.get(config.loss)
        real = augmented(config, real, draws, "real")
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = augmented(config, G(self._inputs(config, draws["z"], labels), training=True), draws, "fake")
            real_out, fake_out, r1 = self._discriminate(parts, config, real, fake, labels, draws)
            real_logits, fake_logits = logits_of(real_out), logits_of(fake_out)
            g_loss = objective.g_loss(fake_logits)
            matching = feature_matching_term(config, real_out, fake_out)
            if config.feature_matching > 0:
                g_loss = g_loss + config.feature_matching * matching
            d_loss = self._d_loss(parts, config, real, fake, labels, real_logits, fake_logits, r1, draws)
            g_scaled = ctx.scaled(g_opt, g_loss)
            d_scaled = ctx.scaled(d_opt, d_loss)
        g_norm = ctx.apply(g_opt, g_tape, g_scaled, G.trainable_variables)
        d_norm = ctx.apply(d_opt, d_tape, d_scaled, D.trainable_variables)
        return {
            **adversarial_scalars(objective, g_loss, d_loss, real_logits, fake_logits, g_norm, d_norm),
            "r1_penalty": tf.cast(r1, tf.float32),
            "feature_matching": matching,
        }

    def after_step(self, parts, config):
        if "ema_generator" in parts.networks:
            ema_update([(parts.networks["ema_generator"], parts.networks["generator"])], parts.optimizers["g_optimizer"].iterations, config.ema_decay)

    def warning(self, config, recent):
        if not losses.get(config.loss).sigmoid or len(recent) < OVERPOWER_STEPS:
            return None
        recent = recent[-OVERPOWER_STEPS:]
        d_fake = sum(r["d_fake"] for r in recent) / len(recent)
        d_loss = sum(r["d_loss"] for r in recent) / len(recent)
        if d_fake >= OVERPOWER_D_FAKE or d_loss >= OVERPOWER_D_LOSS:
            return None
        return (
            f"The discriminator is overpowering the generator: over the last {len(recent)} steps D(G(z)) averaged "
            f"{d_fake:.3f} and the D loss {d_loss:.3f}, so G gets almost no gradient. Try a lower d_lr or higher g_lr, "
            "label_smoothing 0.1, dropout in D, or the wgan-gp loss."
        )

    # ---- sampling -----------------------------------------------------------------------
    def sampler(self, config, spec):
        key = "ema_generator" if config.ema_decay > 0 else "generator"
        return key, self.generator(config, spec)

    def exports(self, config, spec):
        return {"generator": self.sampler(config, spec), "discriminator": ("discriminator", self.discriminator(config, spec))}

    def generate(self, model, config, num_classes, n, seed, label=None, truncation=1.0, networks=None):
        z = shrunk(np.random.default_rng(seed).standard_normal((n, config.latent_dim), dtype=np.float32), truncation)
        labels = None
        if config.conditional:
            labels = np.full(n, label, np.int32) if label is not None else cycled_labels(n, num_classes)
        return run_generator(model, z, labels), labels

    def sample_grid(self, model, config, num_classes, networks=None):
        z, labels = fixed_inputs(config, num_classes)
        return run_generator(model, z, labels), grid_columns(config, num_classes, len(z))


def ema_update(pairs: list[tuple[keras.Model, keras.Model]], iterations: tf.Variable, ema_decay: float) -> None:
    """Move each EMA copy towards its network, with a decay that warms up with the step count so early samples show early training."""
    t = tf.cast(iterations, tf.float32)
    decay = tf.minimum(ema_decay, (1.0 + t) / (10.0 + t))
    for ema, model in pairs:
        for ema_weight, weight in zip(ema.weights, model.weights):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * weight)


def adversarial_scalars(objective, g_loss, d_loss, real_logits, fake_logits, g_norm, d_norm) -> dict[str, tf.Tensor]:
    """The six metrics of ADVERSARIAL_METRICS as float32 scalars: losses, D's mean outputs and both gradient norms."""
    return {
        "g_loss": tf.cast(g_loss, tf.float32),
        "d_loss": tf.cast(d_loss, tf.float32),
        "d_real": objective.probability(real_logits),
        "d_fake": objective.probability(fake_logits),
        "g_grad_norm": g_norm,
        "d_grad_norm": d_norm,
    }


def shrunk(z: np.ndarray, truncation: float) -> np.ndarray:
    """The truncation trick for a generator fed z directly: z scaled towards 0 (1 leaves z unchanged, 0 gives G(0))."""
    return z if truncation == 1 else (z * np.float32(truncation)).astype(np.float32)


def cycled_labels(n: int, num_classes: int) -> np.ndarray:
    """n class labels asking for each class in turn (0, 1, ..., 0, 1, ...): how a conditional generator is sampled for evaluation."""
    return (np.arange(n) % num_classes).astype(np.int32)


def fixed_inputs(config: RunConfig, num_classes: int, seed: int | None = None, n: int = SAMPLE_COUNT) -> tuple[np.ndarray, np.ndarray | None]:
    """The fixed latent vectors (and labels) of a run's sample grids; conditional runs get one row per class."""
    rng = np.random.default_rng(config.seed if seed is None else seed)
    if config.conditional and num_classes > 1:
        per_class = max(1, n // num_classes)
        labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
        return rng.standard_normal((len(labels), config.latent_dim), dtype=np.float32), labels
    return rng.standard_normal((n, config.latent_dim), dtype=np.float32), None


def grid_columns(config: RunConfig, num_classes: int, n: int) -> int:
    """Columns of a sample grid: one row per class for conditional runs."""
    if config.conditional and num_classes > 1:
        return max(1, n // num_classes)
    return int(np.ceil(np.sqrt(n)))


def run_generator(generator: keras.Model, z: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
    """Generator output in [-1, 1] as float32 numpy, in inference mode."""
    out = []
    for start in range(0, len(z), batch_size):
        inputs = z[start : start + batch_size]
        if labels is not None:
            inputs = [inputs, labels[start : start + batch_size]]
        out.append(np.asarray(generator(inputs, training=False), dtype=np.float32))
    return np.concatenate(out, axis=0)
