"""A family that exists only in the tests: three networks and metric names of its own.

A generator G (z -> image), a discriminator D (image -> logit) and an encoder E (image -> z) that
learns to read the noise back from G's images (an InfoGAN-style latent regression). Registered
with GAN_FAMILIES=tests.plugins.triple_family:TripleGan; nothing outside tests/ names it.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from gan_core import losses
from gan_core.config import Settings, setting
from gan_core.families.base import GanFamily, Parts
from gan_core.history_metrics import Metric

TARGET = "tests.plugins.triple_family:TripleGan"


@dataclasses.dataclass
class TripleSettings(Settings):
    code_dim: int = setting(6, "Size of the noise the encoder reads back.", "architecture", "Code size", min=1, max=64)
    hidden: int = setting(32, "Units of each hidden layer.", "architecture", "Hidden units", min=4, max=512)
    lr: float = setting(1e-3, "Adam learning rate of all three networks.", "optimizer", "Learning rate", min=1e-6, max=1.0)
    code_weight: float = setting(1.0, "Weight of the encoder's code loss in G's loss.", "loss", "Code weight", min=0.0, max=100.0)


def _mlp(inputs: int, hidden: int, outputs: int, name: str, activation: str | None = None) -> keras.Model:
    x = keras.Input(shape=(inputs,))
    h = layers.Dense(hidden, activation="relu")(x)
    return keras.Model(x, layers.Dense(outputs, activation=activation, dtype="float32")(h), name=name)


class TripleGan(GanFamily):
    name = "triple"
    settings = TripleSettings
    metrics = (
        Metric("gen_adv", "Generator adversarial", "Adversarial", short="Gadv", loss=True),
        Metric("disc_adv", "Discriminator adversarial", "Adversarial", short="Dadv", loss=True),
        Metric("code_mse", "Code error", "Encoder", short="code", loss=True),
    )

    def _pixels(self, spec) -> int:
        return int(np.prod(spec.image_shape))

    def _generator(self, config, spec) -> keras.Model:
        z = keras.Input(shape=(config.code_dim,))
        flat = _mlp(config.code_dim, config.hidden, self._pixels(spec), "g_body", "tanh")(z)
        return keras.Model(z, layers.Reshape(spec.image_shape)(flat), name="generator")

    def _image_net(self, config, spec, outputs: int, name: str) -> keras.Model:
        image = keras.Input(shape=spec.image_shape)
        return keras.Model(image, _mlp(self._pixels(spec), config.hidden, outputs, f"{name}_body")(layers.Flatten()(image)), name=name)

    def build(self, config, spec, sync_batch_norm):
        networks = {
            "generator": self._generator(config, spec),
            "discriminator": self._image_net(config, spec, 1, "discriminator"),
            "encoder": self._image_net(config, spec, config.code_dim, "encoder"),
        }
        optimizers = {f"{name}_optimizer": keras.optimizers.Adam(config.lr) for name in networks}
        for name, network in networks.items():
            optimizers[f"{name}_optimizer"].build(network.trainable_variables)
        return Parts(networks, optimizers, sampler="generator")

    def draws(self, config, rng, rows, spec):
        return {"z": rng.normal([rows, config.code_dim])}

    def train_step(self, parts, config, images, labels, draws, ctx):
        G, D, E = (parts.networks[n] for n in ("generator", "discriminator", "encoder"))
        bce = losses.get("bce")
        with tf.GradientTape(persistent=True) as tape:
            fake = G(draws["z"], training=True)
            d_loss = bce.d_loss(D(images, training=True), D(fake, training=True))
            code_mse = tf.reduce_mean(tf.square(E(fake, training=True) - draws["z"]))
            g_loss = bce.g_loss(D(fake, training=True)) + config.code_weight * code_mse
            scaled = {name: ctx.scaled(parts.optimizers[f"{name}_optimizer"], loss)
                      for name, loss in (("generator", g_loss), ("discriminator", d_loss), ("encoder", code_mse))}
        for name, loss in scaled.items():
            ctx.apply(parts.optimizers[f"{name}_optimizer"], tape, loss, parts.networks[name].trainable_variables)
        del tape
        return {"gen_adv": g_loss - config.code_weight * code_mse, "disc_adv": d_loss, "code_mse": code_mse}

    def sampler(self, config, spec):
        return "generator", self._generator(config, spec)

    def generate(self, model, config, num_classes, n, seed, label=None):
        z = np.random.default_rng(seed).standard_normal((n, config.code_dim), dtype=np.float32)
        return np.asarray(model(z, training=False), dtype=np.float32), None

    def sample_grid(self, model, config, num_classes, networks=None):
        images, _ = self.generate(model, config, num_classes, 16, config.seed)
        return images, 4
