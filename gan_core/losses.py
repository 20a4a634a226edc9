"""GAN objectives as registered objects: `get("bce")`, like Keras' own `losses.get(name)`.

A loss gives the discriminator's loss, the generator's loss, how D's output maps to the
"probability" shown on charts, and an optional penalty term (WGAN-GP's gradient penalty), so
a family adds `loss.penalty(...)` when there is one instead of testing the loss's name.
Every method casts its inputs to float32 and returns a scalar float32 mean over the batch it
is given (per replica under a `tf.distribute` strategy).
"""

from __future__ import annotations

import math
from numbers import Real

from gan_core.errors import ConfigError
from gan_core.lazy_tf import keras, tf


def _f32(x) -> tf.Tensor:
    """Convert `x` to a float32 tensor."""
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _bce(targets: float, logits: tf.Tensor) -> tf.Tensor:
    """Mean sigmoid cross-entropy of `logits` against a constant target."""
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), targets), logits=logits)
    )


def _check_label_smoothing(label_smoothing: float) -> None:
    """Raise ConfigError unless 0 <= label_smoothing < 0.5."""
    if (
        isinstance(label_smoothing, bool)
        or not isinstance(label_smoothing, Real)
        or not math.isfinite(label_smoothing)
        or not 0.0 <= label_smoothing < 0.5
    ):
        raise ConfigError(f"label_smoothing must be in [0, 0.5), got {label_smoothing!r}.")


class GanLoss:
    """One GAN objective on discriminator logits."""

    name: str = ""
    sigmoid: bool = False  # D's output is the logit of P(real): its probability is a sigmoid
    has_penalty: bool = False  # `penalty` returns a term, whose weight must then be above 0

    def d_loss(self, real_logits, fake_logits, label_smoothing: float = 0.0) -> tf.Tensor:
        """Discriminator loss; label_smoothing lowers only the real target (where the loss has targets)."""
        _check_label_smoothing(label_smoothing)
        return self._d_loss(_f32(real_logits), _f32(fake_logits), 1.0 - float(label_smoothing))

    def _d_loss(self, real: tf.Tensor, fake: tf.Tensor, real_target: float) -> tf.Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits) -> tf.Tensor:
        """Generator loss on D's logits for generated images."""
        raise NotImplementedError

    def probability(self, logits) -> tf.Tensor:
        """The "D(x)" figure shown to users: the mean sigmoid for sigmoid losses, else the mean raw score."""
        logits = _f32(logits)
        return tf.reduce_mean(tf.sigmoid(logits)) if self.sigmoid else tf.reduce_mean(logits)

    def penalty(self, discriminator: keras.Model, real, fake, labels, weight: float, draws: dict) -> tf.Tensor | None:
        """An extra discriminator term (labels: None for an unconditional D), or None when the objective has none.

        `draws` holds this replica's rows of the step's `penalty_draws` (a family with several Ds passes each its own).
        """
        return None

    def penalty_draws(self, rng: tf.random.Generator, rows: int) -> dict[str, tf.Tensor]:
        """The random tensors `penalty` needs for a global batch, one row per image, from the run's RNG ({} when none)."""
        return {}


class BinaryCrossEntropy(GanLoss):
    """The non-saturating GAN loss: D minimizes BCE, G minimizes -log D(G(z))."""

    name, sigmoid = "bce", True

    def _d_loss(self, real, fake, real_target):
        return _bce(real_target, real) + _bce(0.0, fake)

    def g_loss(self, fake_logits):
        return _bce(1.0, _f32(fake_logits))


class Minimax(BinaryCrossEntropy):
    """The original saturating objective: G minimizes log(1 - D(G(z)))."""

    name = "minimax"

    def g_loss(self, fake_logits):
        return -_bce(0.0, _f32(fake_logits))  # log(1 - D(G(z))) = -softplus(logit)


class LeastSquares(GanLoss):
    """LSGAN: squared distance of D's score to 1 (real) and 0 (fake)."""

    name = "lsgan"

    def _d_loss(self, real, fake, real_target):
        return 0.5 * tf.reduce_mean(tf.square(real - real_target)) + 0.5 * tf.reduce_mean(tf.square(fake))

    def g_loss(self, fake_logits):
        return 0.5 * tf.reduce_mean(tf.square(_f32(fake_logits) - 1.0))


class Hinge(GanLoss):
    """Hinge loss (ignores label smoothing)."""

    name = "hinge"

    def _d_loss(self, real, fake, real_target):
        return tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))

    def g_loss(self, fake_logits):
        return -tf.reduce_mean(_f32(fake_logits))


class WassersteinGP(Hinge):
    """WGAN-GP: the critic loss mean(D(fake)) - mean(D(real)) plus weight x the gradient penalty."""

    name, has_penalty = "wgan-gp", True

    def _d_loss(self, real, fake, real_target):
        return tf.reduce_mean(fake) - tf.reduce_mean(real)

    def penalty(self, discriminator, real, fake, labels, weight, draws):
        return weight * gradient_penalty(discriminator, real, fake, draws["gp_alpha"], labels)

    def penalty_draws(self, rng, rows):
        return {"gp_alpha": rng.uniform([rows])}


_REGISTRY: dict[str, GanLoss] = {
    loss.name: loss for loss in (BinaryCrossEntropy(), Minimax(), LeastSquares(), Hinge(), WassersteinGP())
}
LOSSES = tuple(_REGISTRY)


def get(name: str) -> GanLoss:
    """The registered loss called `name`; a ConfigError names the known ones."""
    if name not in _REGISTRY:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}.")
    return _REGISTRY[name]


def gradient_penalty(discriminator: keras.Model, real, fake, alpha, labels=None) -> tf.Tensor:
    """WGAN-GP penalty mean((||grad D(x_hat)||_2 - 1)^2) on the interpolates x_hat = real + alpha (fake - real).

    `alpha` holds one weight per image, uniform in [0, 1): the run's draws, so each image's weight is the same on any replica.
    """
    real, fake = _f32(real), _f32(fake)
    alpha = tf.reshape(_f32(alpha), tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], dtype=tf.int32)], axis=0))
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        inputs = interpolated if labels is None else [interpolated, tf.convert_to_tensor(labels)]
        scores = _f32(discriminator(inputs, training=True))
    grads = tf.cast(tape.gradient(scores, interpolated), tf.float32)
    axes = tf.range(1, tf.rank(grads))
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


def check_penalty_weight(loss: str, gp_weight: float) -> None:
    """A loss with a penalty term needs a penalty weight above 0: the cross-field rule of every family with both settings."""
    if get(loss).has_penalty and gp_weight == 0:
        raise ConfigError(f"gp_weight must be above 0 with loss {loss}; got 0.")
