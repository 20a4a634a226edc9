"""The training loops the benchmarks race: the TensorFlow DCGAN tutorial's, the classic Keras one, gan_core's.

Each `*_loop` function builds one contender and returns a `Loop`: `run(n)` trains n steps and
returns the number of images trained on; `sampler` is the generator whose images are judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from gan_core import families
from gan_core.config import RunConfig
from gan_core.families.base import DataSpec
from gan_core.store.runs import RunStore
from gan_core.training.loop import Trainer


@dataclass
class Loop:
    run: Callable[[int], int]
    sampler: keras.Model
    steps_per_call: int = 1
    networks: dict[str, keras.Model] = field(default_factory=dict)  # every network of a gan_core run, by checkpoint key


NOISE_DIM = 100


# --------------------------------------------------------------------------- the tutorial, verbatim


def tutorial_generator() -> keras.Model:
    model = keras.Sequential([keras.Input(shape=(NOISE_DIM,))])
    model.add(layers.Dense(7 * 7 * 256, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Reshape((7, 7, 256)))
    model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"))
    return model


def tutorial_discriminator() -> keras.Model:
    model = keras.Sequential([keras.Input(shape=(28, 28, 1))])
    model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Flatten())
    model.add(layers.Dense(1))
    return model


def tutorial_loop(images: np.ndarray, batch_size: int) -> Loop:
    """The tutorial's train_step and epoch loop; returns a function that runs n steps of it."""
    generator, discriminator = tutorial_generator(), tutorial_discriminator()
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = keras.optimizers.Adam(1e-4)
    discriminator_optimizer = keras.optimizers.Adam(1e-4)

    def discriminator_loss(real_output, fake_output):
        real_loss = cross_entropy(tf.ones_like(real_output), real_output)
        fake_loss = cross_entropy(tf.zeros_like(fake_output), fake_output)
        return real_loss + fake_loss

    def generator_loss(fake_output):
        return cross_entropy(tf.ones_like(fake_output), fake_output)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([batch_size, NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = generator_loss(fake_output)
            disc_loss = discriminator_loss(real_output, fake_output)
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))

    train_images = (images.astype("float32") - 127.5) / 127.5
    train_dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(len(images)).batch(batch_size)

    def epochs():
        while True:  # the tutorial's `for epoch in range(EPOCHS): for image_batch in train_dataset:`
            yield from train_dataset

    batches = epochs()

    def run(n: int) -> int:
        seen = 0
        for _ in range(n):
            image_batch = next(batches)
            train_step(image_batch)
            seen += int(image_batch.shape[0])
        return seen

    return Loop(run, generator)


def classic_keras_mlp(config: RunConfig, images: np.ndarray) -> Loop:
    """The pre-GradientTape Keras GAN loop (as in Keras-GAN's gan.py) on gan_core's MLP models."""
    family, spec = families.get(config.family), DataSpec(tuple(images.shape[1:]), 0)
    generator, discriminator = family.generator(config, spec), family.discriminator(config, spec)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    discriminator.compile(loss=bce, optimizer=keras.optimizers.Adam(config.d_lr, config.d_beta1))
    batch = config.batch_size
    valid, fake = np.ones((batch, 1), "float32"), np.zeros((batch, 1), "float32")
    data = (images.astype("float32") - 127.5) / 127.5
    discriminator.train_on_batch(data[:batch], valid)  # traced while trainable, as Keras 3 needs
    discriminator.trainable = False
    z = keras.Input(shape=(config.latent_dim,))
    combined = keras.Model(z, discriminator(generator(z)))
    combined.compile(loss=bce, optimizer=keras.optimizers.Adam(config.g_lr, config.g_beta1))
    rng = np.random.default_rng(0)

    def run(n: int) -> int:
        for _ in range(n):
            imgs = data[rng.integers(0, len(data), batch)]
            noise = rng.standard_normal((batch, config.latent_dim)).astype("float32")
            gen_imgs = generator.predict(noise, verbose=0)
            discriminator.train_on_batch(imgs, valid)
            discriminator.train_on_batch(gen_imgs, fake)
            combined.train_on_batch(noise, valid)
        return n * batch

    return Loop(run, generator)


# --------------------------------------------------------------------------- gan_core


def gan_core_loop(config: RunConfig, store: RunStore) -> Loop:
    """gan_core's compiled call on a fresh run of `config`; returns a function that runs n steps."""
    trainer = Trainer(store.create(config))
    trained = [0]  # steps so far, for the family's phases (ProGAN's stages)

    def run(n: int) -> int:
        done = 0
        while done < n:
            step = trained[0]
            k = min(config.steps_per_call, n - done, *(start - step for start in trainer.phase_starts if start > step))
            trainer.train_fn(trainer.iterator, tf.constant(k, dtype=tf.int32), trainer.phase_at(step)).numpy()
            done += k
            trained[0] += k
        return done * trainer.rows_per_step

    return Loop(run, trainer.parts.sampling_model, config.steps_per_call, trainer.parts.networks)


