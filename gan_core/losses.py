"""GAN losses on discriminator logits: bce, minimax, lsgan, hinge and wgan-gp.

Every function casts its inputs to float32 and returns a scalar float32 mean over
the batch it is given (per replica under a `tf.distribute` strategy).
"""

from __future__ import annotations

import math
from numbers import Real

import keras
import tensorflow as tf

from gan_core.errors import ConfigError

LOSSES = ("bce", "minimax", "lsgan", "hinge", "wgan-gp")
SIGMOID_LOSSES = ("bce", "minimax")


def _check_loss(loss: str) -> None:
    """Raise ConfigError unless `loss` is one of LOSSES."""
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}.")


def _check_label_smoothing(label_smoothing: float) -> None:
    """Raise ConfigError unless 0 <= label_smoothing < 0.5."""
    if (
        isinstance(label_smoothing, bool)
        or not isinstance(label_smoothing, Real)
        or not math.isfinite(label_smoothing)
        or not 0.0 <= label_smoothing < 0.5
    ):
        raise ConfigError(f"label_smoothing must be in [0, 0.5), got {label_smoothing!r}.")


def _f32(x) -> tf.Tensor:
    """Convert `x` to a float32 tensor."""
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _bce(targets: float, logits: tf.Tensor) -> tf.Tensor:
    """Mean sigmoid cross-entropy of `logits` against a constant target."""
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), targets), logits=logits)
    )


def discriminator_loss(loss: str, real_logits, fake_logits, label_smoothing: float = 0.0) -> tf.Tensor:
    """Discriminator loss; label_smoothing lowers only the real target (ignored by hinge and wgan-gp)."""
    _check_loss(loss)
    _check_label_smoothing(label_smoothing)
    real, fake = _f32(real_logits), _f32(fake_logits)
    real_target = 1.0 - float(label_smoothing)
    if loss in SIGMOID_LOSSES:
        return _bce(real_target, real) + _bce(0.0, fake)
    if loss == "lsgan":
        return 0.5 * tf.reduce_mean(tf.square(real - real_target)) + 0.5 * tf.reduce_mean(tf.square(fake))
    if loss == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
    # wgan-gp: the critic loss; the trainer adds gp_weight * gradient_penalty(...).
    return tf.reduce_mean(fake) - tf.reduce_mean(real)


def generator_loss(loss: str, fake_logits) -> tf.Tensor:
    """Generator loss on the discriminator's logits for generated images."""
    _check_loss(loss)
    fake = _f32(fake_logits)
    if loss == "bce":
        return _bce(1.0, fake)  # non-saturating: -log D(G(z))
    if loss == "minimax":
        return -_bce(0.0, fake)  # saturating: log(1 - D(G(z))) = -softplus(logit)
    if loss == "lsgan":
        return 0.5 * tf.reduce_mean(tf.square(fake - 1.0))
    return -tf.reduce_mean(fake)  # hinge and wgan-gp


def gradient_penalty(discriminator: keras.Model, real, fake, labels=None) -> tf.Tensor:
    """WGAN-GP penalty mean((||grad D(x_hat)||_2 - 1)^2) on random real/fake interpolates."""
    real, fake = _f32(real), _f32(fake)
    batch = tf.shape(real)[0]
    alpha_shape = tf.concat([[batch], tf.ones([tf.rank(real) - 1], dtype=tf.int32)], axis=0)
    alpha = tf.random.uniform(alpha_shape, minval=0.0, maxval=1.0, dtype=tf.float32)
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        inputs = interpolated if labels is None else [interpolated, tf.convert_to_tensor(labels)]
        scores = _f32(discriminator(inputs, training=True))
    grads = tf.cast(tape.gradient(scores, interpolated), tf.float32)
    axes = tf.range(1, tf.rank(grads))
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


def d_probabilities(loss: str, logits) -> tf.Tensor:
    """The "D(x)" figure shown to users: mean sigmoid for bce/minimax, else the mean raw score."""
    _check_loss(loss)
    logits = _f32(logits)
    if loss in SIGMOID_LOSSES:
        return tf.reduce_mean(tf.sigmoid(logits))
    return tf.reduce_mean(logits)
