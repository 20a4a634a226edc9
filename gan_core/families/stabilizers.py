"""Stabilizers of a discriminator's game, shared by every family with one: feature matching, R1 and DiffAugment.

- Feature matching (Salimans et al., 2016): G also minimizes the mean over D's feature units of the squared
  difference between the batch means of D's features on real and on generated images. The features are the
  input of D's last layer, read through a view of the same layers (`feature_model`), so D's weights, names and
  checkpoints stay as they were. With several replicas the batch means are the global batch's (`batch_mean`).
- R1 (Mescheder et al., 2018): D also minimizes r1_weight / 2 x the mean over real images of the squared norm
  of the gradient of D's logit with respect to the image (`blocks.real_logits_and_r1`, its one definition).
- DiffAugment (Zhao et al., 2020): the images D sees, real and generated, in D's updates and in G's, are
  augmented by differentiable operations whose random parameters come from the run's RNG through the family's
  `draws` (one row per image), so several replicas give one device's result.

A family with several discriminators (lapgan's levels, cyclegan's two domains) applies each to every D, with each
D's own draws (`discriminator_draws`, keyed by `base.suffixed`) and metrics (`metrics_per_network`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gan_core import losses
from gan_core.config import Settings, setting
from gan_core.history_metrics import Metric
from gan_core.lazy_tf import keras, tf

AUGMENTS = ("translation", "cutout", "color")
TRANSLATION_RATIO = 1 / 8  # the largest shift, as a share of the side (the paper's 0.125)
CUTOUT_RATIO = 1 / 2  # the side of the cutout square, as a share of the image's side
# The columns of one image's augmentation draws, each uniform in [0, 1).
DRAW_COLUMNS = ("shift_y", "shift_x", "cutout_y", "cutout_x", "brightness", "saturation", "contrast")
_NAME = r"\s*(translation|cutout|color)\s*"
POLICY_PATTERN = rf"({_NAME}(,{_NAME})*)?"
POLICY_HELP = "a comma-separated list of translation, cutout and color, or empty for none"

R1_METRIC = Metric("r1_penalty", "R1 penalty (real images)", "Regularizers", log=True, needs="r1_weight")
FEATURE_MATCHING_METRIC = Metric(
    "feature_matching", "Feature-matching term (unweighted)", "Regularizers", loss=True, needs="feature_matching"
)
STABILIZER_METRICS = (R1_METRIC, FEATURE_MATCHING_METRIC)


def metrics_per_network(suffixes: tuple[str, ...]) -> tuple[Metric, ...]:
    """STABILIZER_METRICS once per discriminator of a family with several: each name + _suffix, each label + ', suffix'."""
    return tuple(
        dataclasses.replace(metric, name=f"{metric.name}_{suffix}", label=f"{metric.label}, {suffix}")
        for metric in STABILIZER_METRICS for suffix in suffixes
    )


@dataclasses.dataclass
class R1AugmentSettings(Settings):
    """R1 and DiffAugment: the stabilizers of any family with a discriminator; off by default, so old configs load unchanged."""

    r1_weight: float = setting(
        0.0, "Weight of the R1 penalty: weight / 2 x the squared gradient norm of D on real images; 0 turns it off.",
        "regularizers", "R1 weight", min=0.0, max=100.0,
    )
    diffaugment: str = setting(
        "", "DiffAugment: augment every image D sees, real and generated, by these operations, comma-separated: translation "
        "(shift up to 1/8 of the side, zero-filled), cutout (a zeroed square of half the side), color (brightness, saturation, "
        "contrast; skipped on one-channel data such as digits). Empty turns it off.", "regularizers", "DiffAugment policy",
        pattern=POLICY_PATTERN, pattern_help=POLICY_HELP,
    )


@dataclasses.dataclass
class StabilizerSettings(R1AugmentSettings):
    """All three stabilizers, for a family whose D has one feature layer to match (not progan's staged D)."""

    feature_matching: float = setting(
        0.0, "Weight of feature matching: G also matches the batch mean of D's last hidden features on real images "
        "(mean squared difference over the features); 0 turns it off.", "regularizers", "Feature-matching weight",
        min=0.0, max=100.0,
    )


def policy(config: Any, field: str = "diffaugment") -> tuple[str, ...]:
    """The operations a policy setting (the run's DiffAugment by default) names, in the order given, each once; () when off."""
    names = [name.strip() for name in getattr(config, field).split(",") if name.strip()]
    return tuple(dict.fromkeys(names))


def augment_draws(config: Any, rng: tf.random.Generator, rows: int) -> dict[str, tf.Tensor]:
    """The augmentation draws of the real and of the generated images ({} when DiffAugment is off): one row per image."""
    if not policy(config):
        return {}
    return {role: rng.uniform([rows, len(DRAW_COLUMNS)]) for role in ("augment_real", "augment_fake")}


def discriminator_draws(config: Any, rng: tf.random.Generator, rows: int) -> dict[str, tf.Tensor]:
    """One discriminator's draws: its objective's penalty's, then its augmentation's."""
    return {**losses.get(config.loss).penalty_draws(rng, rows), **augment_draws(config, rng, rows)}


def augmented(config: Any, images: tf.Tensor, draws: dict[str, tf.Tensor], role: str) -> tf.Tensor:
    """`images` (real or fake, by `role`) as D sees them: augmented by the run's policy, unchanged when it is off."""
    ops = policy(config)
    return augment(images, ops, draws[f"augment_{role}"]) if ops else images


def augment(images: tf.Tensor, ops: tuple[str, ...], u: tf.Tensor) -> tf.Tensor:
    """Apply the operations in order with each image's draws `u` ([batch, len(DRAW_COLUMNS)], uniform in [0, 1))."""
    x = images
    u = tf.cast(u, tf.float32)
    for op in ops:
        if op == "translation":
            x = translate(x, u[:, 0], u[:, 1])
        elif op == "cutout":
            x = cutout(x, u[:, 2], u[:, 3])
        elif x.shape[-1] > 1:  # color: brightness, saturation and contrast mean nothing new on one channel
            x = color(x, u[:, 4], u[:, 5], u[:, 6])
    return x


def _offsets(u: tf.Tensor, count: int) -> tf.Tensor:
    """floor(u x count) as int32: a uniform integer in [0, count) for u uniform in [0, 1)."""
    return tf.minimum(tf.cast(tf.floor(u * count), tf.int32), count - 1)


def shifts(u: tf.Tensor, side: int) -> tf.Tensor:
    """The shift of each image along a side: an integer uniform in [-s, s] with s = round(side / 8)."""
    largest = int(side * TRANSLATION_RATIO + 0.5)
    return _offsets(u, 2 * largest + 1) - largest


def translate(x: tf.Tensor, u_y: tf.Tensor, u_x: tf.Tensor) -> tf.Tensor:
    """Each image moved by its shifts (down and right for positive ones); pixels moved in from outside are 0."""
    height, width = x.shape[1], x.shape[2]
    dy, dx = shifts(u_y, height), shifts(u_x, width)
    rows = tf.range(height)[None, :] - dy[:, None]  # out[i] = x[i - dy]
    cols = tf.range(width)[None, :] - dx[:, None]
    moved = tf.gather(x, tf.clip_by_value(rows, 0, height - 1), axis=1, batch_dims=1)
    moved = tf.gather(moved, tf.clip_by_value(cols, 0, width - 1), axis=2, batch_dims=1)
    inside = _within(rows, 0, height)[:, :, None] & _within(cols, 0, width)[:, None, :]
    return moved * tf.cast(inside, x.dtype)[..., None]


def cutout_boxes(u: tf.Tensor, side: int) -> tuple[tf.Tensor, int]:
    """Each image's first row (or column) of its cutout square (which may reach outside the image), and the square's side."""
    size = int(side * CUTOUT_RATIO + 0.5)
    centre = _offsets(u, side + (1 - size % 2))
    return centre - size // 2, size


def cutout(x: tf.Tensor, u_y: tf.Tensor, u_x: tf.Tensor) -> tf.Tensor:
    """Each image with a square of half its side set to 0, placed by its draws (the part inside the image)."""
    height, width = x.shape[1], x.shape[2]
    top, size_y = cutout_boxes(u_y, height)
    left, size_x = cutout_boxes(u_x, width)
    rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
    in_rows = _within(rows, top[:, None], top[:, None] + size_y)
    in_box = in_rows[:, :, None] & _within(cols, left[:, None], left[:, None] + size_x)[:, None, :]
    return x * tf.cast(~in_box, x.dtype)[..., None]


def color(x: tf.Tensor, u_brightness: tf.Tensor, u_saturation: tf.Tensor, u_contrast: tf.Tensor) -> tf.Tensor:
    """The paper's colour operations in its order: add u - 0.5; scale the distance to the pixel's channel mean by 2u;
    scale the distance to the image's mean by u + 0.5."""
    def per_image(u: tf.Tensor) -> tf.Tensor:
        return tf.cast(u, x.dtype)[:, None, None, None]

    x = x + per_image(u_brightness - 0.5)
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * per_image(u_saturation * 2) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * per_image(u_contrast + 0.5) + mean


def _within(values: tf.Tensor, low: Any, high: Any) -> tf.Tensor:
    return (values >= low) & (values < high)


# ---- feature matching ---------------------------------------------------------------------------
def feature_model(discriminator: keras.Model) -> keras.Model:
    """A view of D's own layers with two outputs: its logits and its features (the input of its last layer).

    It owns no weights of its own, so D's checkpoint keys and weights are unchanged.
    """
    inputs = discriminator.inputs[0] if len(discriminator.inputs) == 1 else discriminator.inputs
    features = discriminator.layers[-1].input
    return keras.Model(inputs, [discriminator.outputs[0], features], name=f"{discriminator.name}_features")


def batch_mean(x: tf.Tensor) -> tf.Tensor:
    """The mean over the batch in float32: this replica's, or, with several replicas in sync, the global batch's."""
    x = tf.cast(x, tf.float32)
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return tf.reduce_mean(x, axis=0)
    total, rows = replica.all_reduce(tf.distribute.ReduceOp.SUM, [tf.reduce_sum(x, axis=0), tf.cast(tf.shape(x)[0], tf.float32)])
    return total / rows


def feature_matching_loss(real_features: tf.Tensor, fake_features: tf.Tensor) -> tf.Tensor:
    """Mean over features of (batch mean on real - batch mean on fake)^2, float32; no gradient flows into the real side.

    With several replicas the means are the global batch's, so the term is one device's."""
    real = tf.stop_gradient(batch_mean(real_features))
    return tf.reduce_mean(tf.square(real - batch_mean(fake_features)))


def feature_matching_term(config: Any, real_outputs: Any, fake_outputs: Any) -> tf.Tensor:
    """The unweighted feature-matching term of D's feature-view outputs on real and fake images; 0 when it is off."""
    if config.feature_matching <= 0:
        return tf.constant(0.0)
    return feature_matching_loss(real_outputs[1], fake_outputs[1])


def logits_of(outputs: Any) -> tf.Tensor:
    """D's logits from what a discriminator (the logits) or its feature view (logits, features) returned."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs
