"""Building blocks the style-based and progressive families share, each from Keras' own layers where it can be.

Pixel normalization, equalized-learning-rate convolutions and dense layers (ProGAN), a stored vector
fed to every row (StyleGAN's constant and fixed noise, ProGAN's fade state), the minibatch
standard-deviation feature of a discriminator, and D's logits on real images with the R1 penalty.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from gan_core.families.stabilizers import logits_of
from gan_core.lazy_tf import keras, layers, tf

LEAKY_SLOPE = 0.2


def pixel_norm(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """x / sqrt(mean(x^2)) over the channels of each pixel (or the units of a vector): unit length times sqrt(channels)."""
    x = layers.UnitNormalization(name=f"{name}_norm")(x)
    return layers.Rescaling(math.sqrt(x.shape[-1]), name=f"{name}_scale")(x)


def equalized_conv(x: keras.KerasTensor, filters: int, kernel: int, name: str, gain: float = math.sqrt(2), dtype: str | None = None) -> keras.KerasTensor:
    """A convolution with equalized learning rate: weights drawn from N(0, 1) and scaled at run time by He's constant.

    The scale multiplies the input (gain / sqrt(fan in)), which scales the product and leaves the bias alone.
    """
    fan_in = kernel * kernel * x.shape[-1]
    x = layers.Rescaling(gain / math.sqrt(fan_in), name=f"{name}_he_scale")(x)
    return layers.Conv2D(filters, kernel, padding="same", kernel_initializer=keras.initializers.RandomNormal(stddev=1.0), dtype=dtype, name=name)(x)


def equalized_dense(x: keras.KerasTensor, units: int, name: str, gain: float = math.sqrt(2), dtype: str | None = None) -> keras.KerasTensor:
    """A dense layer with equalized learning rate (see `equalized_conv`)."""
    x = layers.Rescaling(gain / math.sqrt(x.shape[-1]), name=f"{name}_he_scale")(x)
    return layers.Dense(units, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0), dtype=dtype, name=name)(x)


def stored_vector(source: keras.KerasTensor, units: int, initializer: keras.initializers.Initializer, trainable: bool, name: str) -> keras.KerasTensor:
    """A tensor that is a stored vector for every row of `source`: a dense layer's bias applied to zeros."""
    zeros = layers.Dense(1, use_bias=False, kernel_initializer="zeros", trainable=False, dtype="float32", name=f"{name}_zeros")(source)
    return layers.Dense(units, kernel_initializer="zeros", bias_initializer=initializer, trainable=trainable, dtype="float32", name=name)(zeros)


@functools.cache
def _minibatch_stddev_class() -> type:
    class MinibatchStdDev(keras.layers.Layer):
        """Appends one channel: the standard deviation of each feature over the batch, averaged (ProGAN, StyleGAN).

        Under a strategy with several replicas the batch is the global one (like synchronized batch normalization).
        """

        def call(self, x):
            x32 = tf.cast(x, tf.float32)
            std = tf.sqrt(_global_variance(x32) + 1e-8)
            feature = tf.ones_like(x32[..., :1]) * tf.reduce_mean(std)
            return tf.concat([x, tf.cast(feature, x.dtype)], axis=-1)

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], input_shape[-1] + 1)

    return MinibatchStdDev


def _global_variance(x: tf.Tensor) -> tf.Tensor:
    """The variance of each feature over the batch: this replica's, or, with several replicas in sync, the global batch's."""
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return tf.math.reduce_variance(x, axis=0)
    total = replica.all_reduce(tf.distribute.ReduceOp.SUM, [tf.reduce_sum(x, axis=0), tf.cast(tf.shape(x)[0], tf.float32)])
    mean = total[0] / total[1]
    return replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(tf.square(x - mean), axis=0)) / total[1]


def minibatch_stddev(name: str = "minibatch_stddev") -> keras.layers.Layer:
    """A layer that appends the batch's mean feature standard deviation as a channel (D sees how varied a batch is)."""
    return _minibatch_stddev_class()(name=name)


def real_logits_and_r1(discriminator, real: tf.Tensor, weight: float) -> tuple[Any, tf.Tensor]:
    """D's outputs on real images (its logits, or (logits, features) from a `stabilizers.feature_model` view) and the
    R1 penalty: the mean over images of the squared norm of the gradient of the logit with respect to the image (0 when
    the weight is 0)."""
    if weight == 0:
        return discriminator(real, training=True), tf.constant(0.0)
    with tf.GradientTape() as tape:
        tape.watch(real)
        outputs = discriminator(real, training=True)
        total = tf.reduce_sum(logits_of(outputs))
    gradient = tape.gradient(total, real)
    return outputs, tf.reduce_mean(tf.reduce_sum(tf.square(tf.cast(gradient, tf.float32)), axis=[1, 2, 3]))


def r1_regularized_d_loss(
    objective, discriminator, real: tf.Tensor, fake: tf.Tensor, fake_logits: tf.Tensor, r1_weight: float, gp_weight: float, draws: dict
):
    """D's loss with R1 (r1_weight / 2 x the mean squared gradient norm on real images) and the objective's own penalty
    (WGAN-GP's, from the step's `draws`), computed inside the caller's tape; returns (d_loss, D's outputs on the real
    images as `real_logits_and_r1` gives them, the R1 penalty)."""
    real_outputs, r1 = real_logits_and_r1(discriminator, real, r1_weight)
    d_loss = objective.d_loss(logits_of(real_outputs), fake_logits, 0.0) + r1_weight / 2 * r1
    critic = lambda x, training=True: logits_of(discriminator(x, training=training))  # noqa: E731
    penalty = objective.penalty(critic, real, fake, None, gp_weight, draws)
    if penalty is not None:
        d_loss = d_loss + penalty
    return d_loss, real_outputs, r1
