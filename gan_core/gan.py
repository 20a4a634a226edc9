"""The parts of a GAN built from a RunConfig: networks, optimizers, RNG and their checkpoint.

Training and generation both build their models here, so a checkpoint written by one is
always readable by the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from gan_core.config import RunConfig
from gan_core.models import build_discriminator, build_generator

SAMPLE_COUNT = 64


@dataclass
class GanParts:
    """Everything a checkpoint holds."""

    generator: keras.Model
    discriminator: keras.Model
    ema_generator: keras.Model | None
    g_optimizer: keras.optimizers.Optimizer
    d_optimizer: keras.optimizers.Optimizer
    step: tf.Variable
    rng: tf.random.Generator

    def checkpoint(self) -> tf.train.Checkpoint:
        items = dict(
            generator=self.generator,
            discriminator=self.discriminator,
            g_optimizer=self.g_optimizer,
            d_optimizer=self.d_optimizer,
            step=self.step,
            rng=self.rng,
        )
        if self.ema_generator is not None:
            items["ema_generator"] = self.ema_generator
        return tf.train.Checkpoint(**items)

    @property
    def sampler(self) -> keras.Model:
        """The generator used for samples and exports: the EMA copy when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator


def make_generator(
    config: RunConfig, image_shape: tuple[int, int, int], num_classes: int, name: str = "generator", sync_batch_norm: bool = False
) -> keras.Model:
    return build_generator(
        config.architecture,
        image_shape=image_shape,
        latent_dim=config.latent_dim,
        num_classes=num_classes if config.conditional else 0,
        width=config.width,
        batch_norm=config.batch_norm,
        sync_batch_norm=sync_batch_norm,
        name=name,
    )


def make_discriminator(
    config: RunConfig, image_shape: tuple[int, int, int], num_classes: int, sync_batch_norm: bool = False
) -> keras.Model:
    return build_discriminator(
        config.architecture,
        image_shape=image_shape,
        num_classes=num_classes if config.conditional else 0,
        width=config.width,
        dropout=config.dropout,
        spectral_norm=config.spectral_norm,
        sync_batch_norm=sync_batch_norm,
    )


def make_optimizer(lr: float, beta1: float, beta2: float, policy: str) -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_parts(config: RunConfig, image_shape: tuple[int, int, int], num_classes: int, policy: str = "float32") -> GanParts:
    """Build models and optimizers (call inside the strategy's scope) under a dtype policy.

    With more than one replica in sync, batch normalization uses the statistics of the global batch,
    so training matches one device with the same global batch.
    """
    sync = tf.distribute.get_strategy().num_replicas_in_sync > 1
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(config.seed)
        generator = make_generator(config, image_shape, num_classes, sync_batch_norm=sync)
        discriminator = make_discriminator(config, image_shape, num_classes, sync_batch_norm=sync)
        ema = None
        if config.ema_decay > 0:
            ema = make_generator(config, image_shape, num_classes, name="ema_generator")
            ema.set_weights(generator.get_weights())
        g_opt = make_optimizer(config.g_lr, config.g_beta1, config.g_beta2, policy)
        d_opt = make_optimizer(config.d_lr, config.d_beta1, config.d_beta2, policy)
        g_opt.build(generator.trainable_variables)
        d_opt.build(discriminator.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    rng = tf.random.Generator.from_seed(config.seed)
    return GanParts(generator, discriminator, ema, g_opt, d_opt, step, rng)


def fixed_inputs(config: RunConfig, num_classes: int, seed: int | None = None, n: int = SAMPLE_COUNT) -> tuple[np.ndarray, np.ndarray | None]:
    """The fixed latent vectors (and labels) of a run's sample grids.

    Conditional runs get one row per class, so the grid shows every class.
    """
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


def generate(generator: keras.Model, z: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 256) -> np.ndarray:
    """Generator output in [-1, 1] as float32 numpy, in inference mode."""
    out = []
    for start in range(0, len(z), batch_size):
        inputs = z[start : start + batch_size]
        if labels is not None:
            inputs = [inputs, labels[start : start + batch_size]]
        out.append(np.asarray(generator(inputs, training=False), dtype=np.float32))
    return np.concatenate(out, axis=0)
