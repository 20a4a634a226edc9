"""CycleGAN: unpaired image-to-image translation between two domains (Zhu et al., 2017).

Domain A is the run's dataset; domain B is another dataset (`domain_b`: a builtin such as
`mnist-5k-thick` or `sklearn-digits`, or the path of a .npz/.zip file), whose training split is held
in memory and sampled by the run's RNG, so the two domains are never paired. Two generators (ResNet
blocks between two stride-2 convolutions and two transposed ones, instance normalization) translate
A to B and B to A; two PatchGAN discriminators score 7x7 patches of each domain. The generators
minimize the adversarial loss (least squares by default) plus `cycle_weight` x the L1 distance of
A->B->A to A and of B->A->B to B, plus `identity_weight` x the L1 distance of G_AB(B) to B and of
G_BA(A) to A. The discriminators see generated images through a history pool of the last
`pool_size` ones (each new image has a one-in-two chance of being swapped for an older one), which
the paper uses to keep D from chasing the generators' latest outputs.

With `semantic_weight` above 0 the generators also keep each digit's class, as CyCADA does (Hoffman et
al., 2018): two small classifiers, f_A and f_B, learn each domain's labels from its real images (A's
batch labels; B's training labels, drawn with B's images) with their own optimizer, and the generators
add `semantic_weight` x (CE(f_B(G_AB(a)), y_a) + CE(f_A(G_BA(b)), y_b)), differentiated through the
classifiers without updating them. Both domains need labels. With `semantic_augment` (DiffAugment's
translation, cutout, color) the classifiers see every digit, real or translated, through a random transform
(one draw per image and domain from the run's RNG), so a translation keeps its class for them by its shape
rather than by pixel patterns that a shift undoes. The classifiers are the run's own, trained
from scratch beside the generators; the evaluators that judge the translations are never trained on.

The sampler is the A->B generator; Generate shows A | A->B | A->B->A beside B | B->A | B->A->B for
held-out images of both domains, and Evaluate gives the share of translated digits whose class the
target domain's evaluator still reads. Both generators export as plain-Keras image-in image-out models.

The stabilizers (`families/stabilizers.py`) apply to both discriminators, each with its own draws and metrics
(`_a` for D_A, `_b` for D_B). The history pool stores the generators' outputs as they are: DiffAugment augments
what D is shown, the real images by the real draws and the pooled fakes (in D's update) or the current fakes (in
G's) by the fake draws, so a pooled image gets a fresh transform each time it is shown. R1 is on the augmented
real images only (the gradient of the sum of D's patch logits), and wgan-gp's penalty interpolates the augmented
real and pooled images D saw. Feature matching compares D's last hidden features (one per patch position and
channel) on the real images of its domain with those on the generator's current fakes, never the pool's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import lru_cache

from gan_core import losses
from gan_core.config import RunConfig, setting
from gan_core.data.images import interleaved
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError, RunError
from gan_core.evaluation.evaluator import heldout_sample, reference_data
from gan_core.families.adversarial import make_optimizer, run_generator
from gan_core.families.base import Column, GanFamily, Parts, suffixed, unsuffixed
from gan_core.families.blocks import r1_regularized_d_loss
from gan_core.families.stabilizers import (
    DRAW_COLUMNS,
    POLICY_HELP,
    POLICY_PATTERN,
    StabilizerSettings,
    augment,
    augmented,
    discriminator_draws,
    feature_matching_term,
    feature_model,
    logits_of,
    metrics_per_network,
    policy,
)
from gan_core.history_metrics import Metric
from gan_core.lazy_tf import keras, layers, tf

SAMPLE_ROWS = 8
DOWNSAMPLING = 4  # two stride-2 convolutions: image sides must be multiples of 4
DOMAINS = ("a", "b")
NETWORKS = {"g_ab": "generator_a_to_b", "g_ba": "generator_b_to_a", "d_a": "discriminator_a", "d_b": "discriminator_b"}
CLASSIFIERS = {"f_a": "classifier_a", "f_b": "classifier_b"}  # built only when semantic_weight > 0, never exported
CLASSIFIER_LR = 1e-3
IDENTITY_METRIC = "identity_loss"


@dataclasses.dataclass
class CycleganSettings(StabilizerSettings):
    """The settings of a two-way unpaired translation GAN."""

    domain_b: str = setting(
        "mnist-5k-thick", "The dataset to translate to and from: a builtin name (mnist-5k-thick, sklearn-digits, ...) "
        "or the path of a .npz/.zip file. The run's dataset is domain A.", "data", "Domain B dataset", max_len=4096,
    )
    blocks: int = setting(3, "ResNet blocks in each generator.", "architecture", "Residual blocks", min=1, max=12)
    width: float = setting(0.5, "Channel multiplier of every network (1.0 = 32 base channels).", "architecture", "Width multiplier", min=0.125, max=4.0)
    loss: str = setting("lsgan", "Adversarial objective (the paper's least squares by default).", "loss", "Loss", choices=losses.LOSSES)
    cycle_weight: float = setting(10.0, "Weight of the cycle-consistency L1 loss (A->B->A and B->A->B).", "loss", "Cycle weight", min=0.0, max=1000.0)
    identity_weight: float = setting(
        5.0, "Weight of the identity L1 loss (G_AB(B) close to B, G_BA(A) close to A); 0 turns it off.", "loss", "Identity weight", min=0.0, max=1000.0,
    )
    semantic_weight: float = setting(
        0.0, "Weight of the semantic-consistency loss (CyCADA): two small classifiers learn each domain's labels and the "
        "generators pay the cross-entropy of each translated digit against its original's label. It uses both domains' "
        "labels; 0 turns it off (and builds no classifiers).", "loss", "Semantic weight", min=0.0, max=1000.0,
    )
    semantic_augment: str = setting(
        "", "Operations applied to every image the semantic classifiers see, real or translated, comma-separated, as DiffAugment's "
        "(translation, cutout, color: colour data only): the generators must then keep a digit's class by its shape. Empty: none.",
        "loss", "Semantic augmentation", pattern=POLICY_PATTERN, pattern_help=POLICY_HELP,
    )
    pool_size: int = setting(50, "Generated images kept in each discriminator's history pool; 0 turns the pool off.", "regularizers", "History pool size", min=0, max=1000)
    gp_weight: float = setting(10.0, "Gradient-penalty weight (wgan-gp only).", "regularizers", "Gradient-penalty weight", min=0.0, max=1000.0)
    g_lr: float = setting(2e-4, "Learning rate of both generators (Adam).", "optimizer", "G learning rate", min=1e-7, max=1000.0)
    d_lr: float = setting(2e-4, "Learning rate of both discriminators (Adam).", "optimizer", "D learning rate", min=1e-7, max=1000.0)
    beta1: float = setting(0.5, "Adam beta 1 of every network.", "optimizer", "Adam beta 1", min=0.0, max=0.999)
    beta2: float = setting(0.999, "Adam beta 2 of every network.", "optimizer", "Adam beta 2", min=0.0, max=0.9999)

    def validate(self) -> None:
        if not str(self.domain_b).strip():
            raise ConfigError("domain_b must name a dataset (e.g. mnist-5k-thick or sklearn-digits) or a .npz/.zip file.")
        losses.check_penalty_weight(self.loss, self.gp_weight)


# ---- the second domain --------------------------------------------------------------------------
@lru_cache(maxsize=2)
def domain_train(dataset: str) -> ImageSet:
    """The training split of a domain (the evaluator's: its held-out images are never trained on)."""
    return reference_data(dataset).train


# ---- the history pool ---------------------------------------------------------------------------
def pool_query(pool: tf.Variable, count: tf.Variable, images: tf.Tensor, chance: tf.Tensor, slots: tf.Tensor) -> tf.Tensor:
    """The images D sees: while the pool fills, the new ones (stored); then each new image, with chance > 0.5, is swapped for a stored one.

    `chance` (uniform in [0, 1)) and `slots` (pool indices) are one per image; a slot picked twice in a batch
    swaps only for its first image. Static shapes only (one-hot writes), so the step compiles with XLA.
    """
    size, n = pool.shape[0], images.shape[0]
    images = tf.cast(images, tf.float32)
    position = tf.cast(count, tf.int32) + tf.range(n)
    filling = (count < size) & (position < size)
    earlier = tf.linalg.band_part(tf.ones([n, n], tf.bool), -1, 0) & ~tf.eye(n, dtype=tf.bool)  # [i, j]: j before i
    repeated = tf.reduce_any(tf.equal(slots[:, None], slots[None, :]) & earlier, axis=1)
    swapping = (count >= size) & (chance > 0.5) & ~repeated
    shown = tf.where(swapping[:, None, None, None], tf.gather(pool, slots), images)
    target = tf.where(filling, position, tf.where(swapping, slots, -1))
    writes = tf.one_hot(target, size, dtype=tf.float32)  # [n, size]; a row of zeros writes nothing
    written = tf.reduce_max(writes, axis=0)[:, None, None, None]
    pool.assign(pool * (1.0 - written) + tf.einsum("ns,nhwc->shwc", writes, images))
    count.assign(tf.minimum(count + n, size))
    return shown


def replica_local(initial) -> tf.Variable:
    """State each replica updates on its own (a history pool); checkpoints keep the first replica's."""
    return tf.Variable(
        initial, trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


# ---- networks -------------------------------------------------------------------------------
def _channels(width: float) -> int:
    return max(4, int(round(32 * width)))


def _instance_norm(x: keras.KerasTensor) -> keras.KerasTensor:
    return layers.GroupNormalization(groups=x.shape[-1], epsilon=1e-5)(x)


def build_generator(shape: tuple[int, int, int], blocks: int, width: float, name: str) -> keras.Model:
    """Image -> image of the same shape (tanh): down twice, ResNet blocks, up twice (Johnson et al.'s network, as in CycleGAN)."""
    c = _channels(width)
    image = keras.Input(shape=shape, name="image")
    x = layers.ReLU()(_instance_norm(layers.Conv2D(c, 7, padding="same")(image)))
    for filters in (2 * c, 4 * c):
        x = layers.ReLU()(_instance_norm(layers.Conv2D(filters, 3, strides=2, padding="same")(x)))
    for _ in range(blocks):
        y = layers.ReLU()(_instance_norm(layers.Conv2D(4 * c, 3, padding="same")(x)))
        x = layers.Add()([x, _instance_norm(layers.Conv2D(4 * c, 3, padding="same")(y))])
    for filters in (2 * c, c):
        x = layers.ReLU()(_instance_norm(layers.Conv2DTranspose(filters, 3, strides=2, padding="same")(x)))
    translated = layers.Conv2D(shape[-1], 7, padding="same", activation="tanh", dtype="float32")(x)
    return keras.Model(image, translated, name=name)


def build_discriminator(shape: tuple[int, int, int], width: float, name: str) -> keras.Model:
    """PatchGAN: image -> a grid of logits, one per overlapping patch (7x7 for 28x28 images)."""
    c = _channels(width)
    image = keras.Input(shape=shape, name="image")
    x = layers.LeakyReLU(0.2)(layers.Conv2D(c, 4, strides=2, padding="same")(image))
    x = layers.LeakyReLU(0.2)(_instance_norm(layers.Conv2D(2 * c, 4, strides=2, padding="same")(x)))
    x = layers.LeakyReLU(0.2)(_instance_norm(layers.Conv2D(4 * c, 4, padding="same")(x)))
    patches = layers.Conv2D(1, 4, padding="same", dtype="float32")(x)
    return keras.Model(image, patches, name=name)


def build_classifier(shape: tuple[int, int, int], classes: int, width: float, name: str) -> keras.Model:
    """A small digit classifier: image -> class logits (two stride-2 convolutions and a dense layer)."""
    c = _channels(width)
    image = keras.Input(shape=shape, name="image")
    x = layers.LeakyReLU(0.2)(layers.Conv2D(c, 3, strides=2, padding="same")(image))
    x = layers.LeakyReLU(0.2)(layers.Conv2D(2 * c, 3, strides=2, padding="same")(x))
    logits = layers.Dense(classes, dtype="float32")(layers.Flatten()(x))
    return keras.Model(image, logits, name=name)


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean sparse softmax cross-entropy, in float32."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), tf.cast(logits, tf.float32)))


def accuracy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """The share of rows whose largest logit is the label."""
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(labels, tf.int32)), tf.float32))


def semantic_view(config: RunConfig, draws: dict[str, tf.Tensor]) -> Callable[[tf.Tensor, str], tf.Tensor]:
    """(images, domain) -> the images as the domain's classifier sees them: augmented by `semantic_augment`, else as they are."""
    ops = policy(config, "semantic_augment")
    return lambda images, domain: augment(images, ops, draws[f"semantic_{domain}"]) if ops else images


def l1(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference, in float32."""
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))


# ---- the family ---------------------------------------------------------------------------------
class CycleGAN(GanFamily):
    """Two generators (A->B, B->A) and two PatchGAN discriminators, with cycle and identity losses."""

    name = "cyclegan"
    settings = CycleganSettings
    image_to_image = True
    metrics = (
        Metric("g_loss", "G loss (total, both generators)", "Losses", short="G", loss=True),
        Metric("d_loss", "D loss (both discriminators)", "Losses", short="D", loss=True),
        Metric("cycle_loss", "Cycle loss (L1, A->B->A plus B->A->B)", "Cycle and identity", short="Cycle", loss=True),
        Metric(IDENTITY_METRIC, "Identity loss (L1, both generators)", "Cycle and identity", loss=True, needs="identity_weight"),
        Metric("g_adversarial", "G adversarial term (both directions)", "Adversarial", loss=True),
        Metric("d_b_fake", "D_B(G_AB(A))", "Adversarial"),
        Metric("d_a_fake", "D_A(G_BA(B))", "Adversarial"),
        *metrics_per_network(DOMAINS),
        # the semantic metrics only when the semantic loss is on (no classifiers are built otherwise)
        Metric(
            "semantic_loss", "Semantic loss (CE of f_B(A->B) and f_A(B->A) against the original labels)", "Semantic", loss=True,
            needs="semantic_weight",
        ),
        Metric("f_a_accuracy", "Classifier f_A on real A (batch accuracy)", "Semantic", needs="semantic_weight"),
        Metric("f_b_accuracy", "Classifier f_B on real B (batch accuracy)", "Semantic", needs="semantic_weight"),
        Metric("f_b_reads_a_to_b", "Share of A->B that f_B reads as the original's class", "Semantic", needs="semantic_weight"),
        Metric("f_a_reads_b_to_a", "Share of B->A that f_A reads as the original's class", "Semantic", needs="semantic_weight"),
    )
    divergence_advice = "Try lower learning rates or a higher cycle weight."

    def check_data(self, config: RunConfig, data: ImageSet) -> None:
        height, width, _ = data.image_shape
        if height % DOWNSAMPLING or width % DOWNSAMPLING:
            raise ConfigError(f"cyclegan needs image sides divisible by {DOWNSAMPLING}; '{data.source}' has {height}x{width} images.")
        other = domain_train(config.domain_b)
        if other.image_shape != data.image_shape:
            shape_b, shape_a = ("x".join(map(str, s)) for s in (other.image_shape, data.image_shape))
            raise ConfigError(
                f"domain_b '{config.domain_b}' has {shape_b} images but domain A '{data.source}' has {shape_a}: "
                "both domains need images of one size."
            )
        if config.semantic_weight > 0:
            for name, labelled in ((data.source, data), (config.domain_b, other)):
                if labelled.labels is None:
                    raise ConfigError(
                        f"semantic_weight {config.semantic_weight:g} needs class labels in both domains, but '{name}' has none: set it to 0."
                    )

    # ---- training ---------------------------------------------------------------------------
    def build(self, config, spec, sync_batch_norm):
        policy = keras.mixed_precision.global_policy().name
        networks = {
            "g_ab": build_generator(spec.image_shape, config.blocks, config.width, NETWORKS["g_ab"]),
            "g_ba": build_generator(spec.image_shape, config.blocks, config.width, NETWORKS["g_ba"]),
            "d_a": build_discriminator(spec.image_shape, config.width, NETWORKS["d_a"]),
            "d_b": build_discriminator(spec.image_shape, config.width, NETWORKS["d_b"]),
        }
        optimizers = {
            "g_optimizer": make_optimizer(config.g_lr, config.beta1, config.beta2, policy),
            "d_optimizer": make_optimizer(config.d_lr, config.beta1, config.beta2, policy),
        }
        optimizers["g_optimizer"].build(self._generator_variables(networks))
        optimizers["d_optimizer"].build(self._discriminator_variables(networks))
        state = {}
        for domain in DOMAINS:
            if config.pool_size:
                state[f"pool_{domain}"] = replica_local(tf.zeros([config.pool_size, *spec.image_shape]))
                state[f"pool_{domain}_count"] = replica_local(0)
        fixed = {"images_b": tf.constant(domain_train(config.domain_b).images)}
        if config.feature_matching > 0:
            fixed |= {f"d_{domain}_features": feature_model(networks[f"d_{domain}"]) for domain in DOMAINS}
        if config.semantic_weight > 0:
            self._add_classifiers(config, spec, policy, networks, optimizers, fixed)
        return Parts(networks, optimizers, "g_ab", state=state, fixed=fixed)

    @staticmethod
    def _add_classifiers(config, spec, policy, networks, optimizers, fixed) -> None:
        """f_A and f_B (one output per class of either domain), their optimizer, and B's training labels."""
        domain_b = domain_train(config.domain_b)
        classes = max(spec.num_classes, domain_b.num_classes)
        for key, name in CLASSIFIERS.items():
            networks[key] = build_classifier(spec.image_shape, classes, config.width, name)
        optimizers["f_optimizer"] = make_optimizer(CLASSIFIER_LR, 0.9, 0.999, policy)
        optimizers["f_optimizer"].build(networks["f_a"].trainable_variables + networks["f_b"].trainable_variables)
        fixed["labels_b"] = tf.constant(domain_b.labels.astype("int32"))

    @staticmethod
    def _generator_variables(networks):
        return networks["g_ab"].trainable_variables + networks["g_ba"].trainable_variables

    @staticmethod
    def _discriminator_variables(networks):
        return networks["d_a"].trainable_variables + networks["d_b"].trainable_variables

    def draws(self, config, rng, rows, spec):
        size = max(1, config.pool_size)
        draws = {"b_index": rng.uniform([rows], 0, domain_train(config.domain_b).num_images, dtype=tf.int64)}
        for domain in DOMAINS:
            draws[f"pool_{domain}_chance"] = rng.uniform([rows])
            draws[f"pool_{domain}_slot"] = rng.uniform([rows], 0, size, dtype=tf.int64)
        for domain in DOMAINS:
            draws.update(suffixed(discriminator_draws(config, rng, rows), domain))
        if config.semantic_weight > 0 and policy(config, "semantic_augment"):  # last: the other draws stay as they were
            draws |= {f"semantic_{domain}": rng.uniform([rows, len(DRAW_COLUMNS)]) for domain in DOMAINS}
        return draws

    def _pooled(self, parts, domain, fakes, draws):
        if f"pool_{domain}" not in parts.state:
            return fakes
        return pool_query(
            parts.state[f"pool_{domain}"], parts.state[f"pool_{domain}_count"], tf.stop_gradient(fakes),
            draws[f"pool_{domain}_chance"], tf.cast(draws[f"pool_{domain}_slot"], tf.int32),
        )

    def train_step(self, parts, config, images, labels, draws, ctx):
        n = parts.networks
        g_opt, d_opt = parts.optimizers["g_optimizer"], parts.optimizers["d_optimizer"]
        objective = losses.get(config.loss)
        real_a = tf.cast(images, tf.float32)
        real_b = tf.cast(tf.gather(parts.fixed["images_b"], draws["b_index"]), tf.float32) / 127.5 - 1.0
        draws_a, draws_b = unsuffixed(draws, "a"), unsuffixed(draws, "b")
        semantic_metrics, identity_metrics = {}, {}
        if config.semantic_weight > 0:
            labels_b = tf.gather(parts.fixed["labels_b"], draws["b_index"])
            seen = semantic_view(config, draws)  # as f_A and f_B see each domain's images, in their update and in G's
            semantic_metrics = self._classifier_step(parts, seen, real_a, labels, real_b, labels_b, ctx)
        with tf.GradientTape() as g_tape:
            fake_b, fake_a = n["g_ab"](real_a, training=True), n["g_ba"](real_b, training=True)
            cycle = l1(n["g_ba"](fake_b, training=True), real_a) + l1(n["g_ab"](fake_a, training=True), real_b)
            d_b_fake, matching_b = self._judge_fakes(parts, config, "b", real_b, fake_b, draws_b)
            d_a_fake, matching_a = self._judge_fakes(parts, config, "a", real_a, fake_a, draws_a)
            g_adversarial = objective.g_loss(d_b_fake) + objective.g_loss(d_a_fake)
            g_loss = g_adversarial + config.cycle_weight * cycle
            if config.identity_weight > 0:  # two generator passes; skipping them gives 1.2-1.3x the images per second
                identity = l1(n["g_ab"](real_b, training=True), real_b) + l1(n["g_ba"](real_a, training=True), real_a)
                g_loss += config.identity_weight * identity
                identity_metrics = {IDENTITY_METRIC: identity}
            if config.feature_matching > 0:
                g_loss = g_loss + config.feature_matching * (matching_a + matching_b)
            if config.semantic_weight > 0:
                read_b, read_a = n["f_b"](seen(fake_b, "b"), training=True), n["f_a"](seen(fake_a, "a"), training=True)
                semantic = cross_entropy(labels, read_b) + cross_entropy(labels_b, read_a)
                g_loss += config.semantic_weight * semantic
                semantic_metrics |= {
                    "semantic_loss": semantic, "f_b_reads_a_to_b": accuracy(labels, read_b), "f_a_reads_b_to_a": accuracy(labels_b, read_a),
                }
            g_scaled = ctx.scaled(g_opt, g_loss)
        ctx.apply(g_opt, g_tape, g_scaled, self._generator_variables(n))
        shown_b, shown_a = self._pooled(parts, "b", fake_b, draws), self._pooled(parts, "a", fake_a, draws)
        with tf.GradientTape() as d_tape:
            d_loss_a, r1_a = self._d_loss(objective, n["d_a"], real_a, shown_a, config, draws_a)
            d_loss_b, r1_b = self._d_loss(objective, n["d_b"], real_b, shown_b, config, draws_b)
            d_loss = d_loss_a + d_loss_b
            d_scaled = ctx.scaled(d_opt, d_loss)
        ctx.apply(d_opt, d_tape, d_scaled, self._discriminator_variables(n))
        return {
            "g_loss": tf.cast(g_loss, tf.float32),
            "d_loss": tf.cast(d_loss, tf.float32),
            "cycle_loss": cycle,
            **identity_metrics,
            "g_adversarial": tf.cast(g_adversarial, tf.float32),
            "d_b_fake": objective.probability(d_b_fake),
            "d_a_fake": objective.probability(d_a_fake),
            "r1_penalty_a": tf.cast(r1_a, tf.float32),
            "r1_penalty_b": tf.cast(r1_b, tf.float32),
            "feature_matching_a": matching_a,
            "feature_matching_b": matching_b,
            **semantic_metrics,
        }

    @staticmethod
    def _classifier_step(parts, seen, real_a, labels_a, real_b, labels_b, ctx) -> dict[str, tf.Tensor]:
        """One update of f_A on real A and f_B on real B (as `seen` shows each domain's digits), each with its own
        domain's labels; their batch accuracies."""
        f_a, f_b, f_opt = parts.networks["f_a"], parts.networks["f_b"], parts.optimizers["f_optimizer"]
        with tf.GradientTape() as tape:
            logits_a = f_a(seen(tf.stop_gradient(real_a), "a"), training=True)
            logits_b = f_b(seen(tf.stop_gradient(real_b), "b"), training=True)
            loss = cross_entropy(labels_a, logits_a) + cross_entropy(labels_b, logits_b)
            scaled = ctx.scaled(f_opt, loss)
        ctx.apply(f_opt, tape, scaled, f_a.trainable_variables + f_b.trainable_variables)
        return {"f_a_accuracy": accuracy(labels_a, logits_a), "f_b_accuracy": accuracy(labels_b, logits_b)}

    @staticmethod
    def _judge_fakes(parts, config, domain, real, fake, draws):
        """The logits of the domain's D on G's current fakes as D sees them, and the feature-matching term of its
        features on them against those on the domain's real images (0, and no pass over the real ones, when it is off)."""
        critic = parts.fixed.get(f"d_{domain}_features", parts.networks[f"d_{domain}"])
        fake_outputs = critic(augmented(config, fake, draws, "fake"), training=True)
        real_outputs = critic(augmented(config, real, draws, "real"), training=True) if config.feature_matching > 0 else None
        return logits_of(fake_outputs), feature_matching_term(config, real_outputs, fake_outputs)

    @staticmethod
    def _d_loss(objective, discriminator, real, fake, config, draws):
        """One D's loss on the real and the pooled images, both as DiffAugment shows them, with R1 on the real ones and the
        objective's penalty; and the R1 term."""
        real, fake = augmented(config, real, draws, "real"), augmented(config, fake, draws, "fake")
        fake_logits = discriminator(fake, training=True)
        loss, _, r1 = r1_regularized_d_loss(objective, discriminator, real, fake, fake_logits, config.r1_weight, config.gp_weight, draws)
        return loss, r1

    # ---- sampling ---------------------------------------------------------------------------
    def target_dataset(self, config):
        return config.domain_b

    def sampler(self, config, spec):
        return "g_ab", build_generator(spec.image_shape, config.blocks, config.width, NETWORKS["g_ab"])

    def partners(self, config, spec):
        return {"g_ba": build_generator(spec.image_shape, config.blocks, config.width, NETWORKS["g_ba"])}

    def exports(self, config, spec):
        return {
            NETWORKS["g_ab"]: self.sampler(config, spec),
            NETWORKS["g_ba"]: ("g_ba", self.partners(config, spec)["g_ba"]),
            NETWORKS["d_a"]: ("d_a", build_discriminator(spec.image_shape, config.width, NETWORKS["d_a"])),
            NETWORKS["d_b"]: ("d_b", build_discriminator(spec.image_shape, config.width, NETWORKS["d_b"])),
        }

    def directions(self, model, config, partners):
        """A->B, and B->A when the B->A generator is loaded (a run's checkpoint, not an uploaded file)."""
        found = {f"{config.dataset} -> {config.domain_b}": model}
        if "g_ba" in partners:
            found[f"{config.domain_b} -> {config.dataset}"] = partners["g_ba"]
        return found

    def model_inputs(self, config, originals, seed):
        """Domain A images go in as they are."""
        return originals

    def generate(self, model, config, num_classes, n, seed, label=None):
        """Held-out domain A images translated to B."""
        images_a, _ = heldout_sample(config.dataset, n, seed)
        return run_generator(model, images_a), None

    def pairs(self, model, config, n, seed, networks=None):
        """Held-out A images with A->B and A->B->A, beside held-out B images with B->A and B->A->B."""
        if not networks or "g_ba" not in networks:
            raise RunError("The B->A generator is not loaded: the triplets need a run's checkpoint, not an uploaded generator.")
        g_ab, g_ba = model, networks["g_ba"]
        images_a, labels_a = heldout_sample(config.dataset, n, seed)
        images_b, labels_b = heldout_sample(config.domain_b, n, seed)
        a_to_b, b_to_a = run_generator(g_ab, images_a), run_generator(g_ba, images_b)
        a, b = config.dataset, config.domain_b
        return {
            "A": Column(images_a, labels_a, read_by=a),
            "A->B": Column(a_to_b, labels_a, read_by=b),
            "A->B->A": Column(run_generator(g_ba, a_to_b), labels_a, read_by=a, scored_against="A"),
            "B": Column(images_b, labels_b, read_by=b),
            "B->A": Column(b_to_a, labels_b, read_by=a),
            "B->A->B": Column(run_generator(g_ab, b_to_a), labels_b, read_by=b, scored_against="B"),
        }

    def sample_grid(self, model, config, num_classes, networks=None):
        columns = self.pairs(model, config, SAMPLE_ROWS, config.seed, networks)
        return interleaved([column.images for column in columns.values()]), len(columns)
