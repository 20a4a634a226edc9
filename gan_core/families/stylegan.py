"""StyleGAN (Karras et al., 2019) at a fixed resolution, with StyleGAN2's skip outputs, sized for a laptop CPU.

- A mapping network turns z into a style vector w (z is normalized, then `mapping_layers` dense layers).
- The synthesis network starts from a learned constant (a quarter of each side: 7x7 for MNIST) and
  draws through style blocks at 7, 14 and 28 pixels (one block at the first size, two at each next).
  Each block is a 3x3 convolution, per-pixel noise scaled per channel (a learned strength that
  starts at zero), a leaky ReLU and AdaIN: instance normalization, then a scale and a shift that an
  affine map computes from that block's own w. Each size has a 1x1 "toRGB" output; the outputs are
  upsampled and summed (StyleGAN2's skip generator), so coarse sizes draw shapes from the first step.
- Training draws two z for each image and, with probability `style_mixing`, switches from the first
  w to the second at a random block (style-mixing regularization); the discriminator ends in a
  minibatch standard-deviation feature and pays an R1 penalty on real images. The average w is
  tracked (`w_avg`) for the truncation trick: w' = w_avg + psi * (w - w_avg).

Fixed resolution rather than growing on top of ProGAN: on 28x28 digits the skip outputs give every
size a gradient from the first step, with one compiled train step and no stage schedule; see
docs/QUALITY.md for the measured comparison with the dcgan preset.

Every exported network is built from Keras' own layers (AdaIN from GroupNormalization, Dense,
Reshape, Multiply and Add; the constant and the fixed noise as biases of dense layers fed zeros),
so plain Keras loads them: "generator" (z in, image out, with the fixed noise maps), "mapping"
(z -> w) and "synthesis" (one w per block and one noise map per block -> image).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gan_core import losses
from gan_core.config import RunConfig, setting
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.families.adversarial import adversarial_scalars, ema_update, make_optimizer, run_generator
from gan_core.families.base import DataSpec, GanFamily, Parts
from gan_core.families.blocks import LEAKY_SLOPE, minibatch_stddev, pixel_norm, r1_regularized_d_loss, stored_vector
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
from gan_core.lazy_tf import keras, layers, tf

BLOCKS_PER_SIZE = (1, 2, 2)  # style blocks at a quarter, half and the full side
BASE_CHANNELS = (256, 128, 64)  # channels at each size, times `width`
SAMPLE_COUNT, SAMPLE_COLUMNS = 64, 8
BATCH = 256  # images per call when sampling


@dataclasses.dataclass
class StyleganSettings(StabilizerSettings):
    """The settings of a fixed-resolution style-based generator and its discriminator."""

    latent_dim: int = setting(64, "Size of the noise vector z.", "architecture", "Latent dimension", min=1, max=1024)
    w_dim: int = setting(64, "Size of the style vector w the mapping network draws from z.", "architecture", "Style dimension (w)", min=1, max=1024)
    mapping_layers: int = setting(4, "Dense layers of the mapping network (StyleGAN uses 8).", "architecture", "Mapping layers", min=1, max=8)
    width: float = setting(0.5, "Channel multiplier of both networks (1.0 = 256, 128, 64 channels).", "architecture", "Width multiplier", min=0.125, max=4.0)
    style_mixing: float = setting(
        0.9, "Share of images drawn from two w, switched at a random block (style-mixing regularization; the stylegan preset's 0.5 "
        "measured better on 28x28 digits).", "regularizers",
        "Style-mixing probability", min=0.0, max=1.0,
    )
    r1_weight: float = setting(
        1.0, "Weight of the R1 penalty: the squared gradient of D on real images; 0 turns it off.", "regularizers", "R1 weight",
        min=0.0, max=100.0,
    )
    w_avg_decay: float = setting(0.995, "Decay of the running average of w that truncation pulls towards.", "regularizers", "Average-w decay", min=0.0, max=0.9999)
    ema_decay: float = setting(
        0.999, "EMA of the mapping and synthesis weights for samples and export; 0 turns it off.", "regularizers", "Generator EMA decay",
        min=0.0, max=0.9999,
    )
    loss: str = setting("bce", "GAN objective.", "loss", "Loss", choices=losses.LOSSES)
    gp_weight: float = setting(10.0, "Gradient-penalty weight (wgan-gp only).", "regularizers", "Gradient-penalty weight", min=0.0, max=1000.0)
    g_lr: float = setting(2e-3, "Learning rate of the synthesis network (Adam).", "optimizer", "G learning rate", min=1e-7, max=1000.0)
    mapping_lr_scale: float = setting(
        0.1, "The mapping network learns at this fraction of the G learning rate (StyleGAN uses 0.01).", "optimizer",
        "Mapping learning-rate scale", min=0.001, max=1.0,
    )
    d_lr: float = setting(2e-3, "Learning rate of the discriminator (Adam).", "optimizer", "D learning rate", min=1e-7, max=1000.0)
    beta1: float = setting(0.0, "Adam beta 1 of every network (StyleGAN uses 0).", "optimizer", "Adam beta 1", min=0.0, max=0.999)
    beta2: float = setting(0.99, "Adam beta 2 of every network.", "optimizer", "Adam beta 2", min=0.0, max=0.9999)

    def validate(self) -> None:
        losses.check_penalty_weight(self.loss, self.gp_weight)


# ---- sizes ------------------------------------------------------------------------------------
def block_sizes(image_shape: tuple[int, int, int]) -> list[tuple[int, int]]:
    """The (height, width) each style block draws at, in order: one per w and per noise map."""
    height, width, _ = image_shape
    sizes = [(height // 4, width // 4), (height // 2, width // 2), (height, width)]
    return [size for size, count in zip(sizes, BLOCKS_PER_SIZE) for _ in range(count)]


def num_styles(image_shape: tuple[int, int, int]) -> int:
    """How many w the synthesis network takes (one per style block)."""
    return len(block_sizes(image_shape))


def _channels(width: float) -> list[int]:
    return [max(8, int(round(c * width))) for c in BASE_CHANNELS]



# ---- networks ---------------------------------------------------------------------------------
def mapping_network(latent_dim: int, w_dim: int, depth: int, name: str = "mapping") -> keras.Model:
    """z -> w: z scaled to length sqrt(latent_dim) (StyleGAN's pixel norm), then `depth` dense layers."""
    z = keras.Input(shape=(latent_dim,), name="z")
    x = pixel_norm(z, "z")
    for i in range(depth):
        x = layers.LeakyReLU(LEAKY_SLOPE, name=f"act_{i}")(layers.Dense(w_dim, name=f"dense_{i}")(x))
    w = layers.Activation("linear", dtype="float32", name="w")(x)
    return keras.Model(z, w, name=name)


def style_block(x: keras.KerasTensor, w: keras.KerasTensor, noise: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Convolution, scaled per-pixel noise, leaky ReLU, then AdaIN from this block's w."""
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    strength = layers.Conv2D(filters, 1, use_bias=False, kernel_initializer="zeros", name=f"{name}_noise_strength")(noise)
    x = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_act")(layers.Add(name=f"{name}_noise")([x, strength]))
    x = layers.GroupNormalization(groups=-1, center=False, scale=False, epsilon=1e-5, name=f"{name}_instance_norm")(x)
    scale = layers.Reshape((1, 1, filters), name=f"{name}_scale_map")(layers.Dense(filters, bias_initializer="ones", name=f"{name}_style_scale")(w))
    shift = layers.Reshape((1, 1, filters), name=f"{name}_shift_map")(layers.Dense(filters, name=f"{name}_style_shift")(w))
    return layers.Add(name=f"{name}_adain")([layers.Multiply(name=f"{name}_modulate")([x, scale]), shift])


def synthesis_network(image_shape: tuple[int, int, int], w_dim: int, width: float, name: str = "synthesis") -> keras.Model:
    """[w_0 .. w_{n-1}, noise_0 .. noise_{n-1}] -> image (tanh): the constant through every style block, skip toRGB outputs summed."""
    sizes = block_sizes(image_shape)
    ws = [keras.Input(shape=(w_dim,), name=f"w_{i}") for i in range(len(sizes))]
    noises = [keras.Input(shape=(h, w, 1), name=f"noise_{i}") for i, (h, w) in enumerate(sizes)]
    (h0, w0), channels = sizes[0], _channels(width)
    constant = stored_vector(ws[0], h0 * w0 * channels[0], keras.initializers.RandomNormal(stddev=1.0, seed=0), True, "constant")
    x = layers.Reshape((h0, w0, channels[0]), name="constant_map")(constant)
    rgb, block = None, 0
    for level, (count, filters) in enumerate(zip(BLOCKS_PER_SIZE, channels)):
        if level:
            x = layers.UpSampling2D(2, interpolation="bilinear", name=f"upsample_{level}")(x)
        for _ in range(count):
            x = style_block(x, ws[block], noises[block], filters, f"block_{block}")
            block += 1
        out = layers.Conv2D(image_shape[-1], 1, name=f"to_rgb_{level}")(x)
        if rgb is not None:
            out = layers.Add(name=f"skip_{level}")([layers.UpSampling2D(2, interpolation="bilinear", name=f"rgb_upsample_{level}")(rgb), out])
        rgb = out
    image = layers.Activation("tanh", dtype="float32", name="image")(rgb)
    return keras.Model([*ws, *noises], image, name=name)


def style_generator(mapping: keras.Model, synthesis: keras.Model, name: str = "generator") -> keras.Model:
    """z -> image: the same w for every block and fixed noise maps (drawn once, stored as weights), like StyleGAN2's noise_mode='const'."""
    z = keras.Input(shape=(mapping.inputs[0].shape[-1],), name="z")
    w = mapping(z)
    sizes = [tuple(noise.shape[1:3]) for noise in synthesis.inputs[len(synthesis.inputs) // 2 :]]
    noises = [
        layers.Reshape((h, wide, 1), name=f"fixed_noise_{i}_map")(
            stored_vector(z, h * wide, keras.initializers.RandomNormal(stddev=1.0, seed=1 + i), False, f"fixed_noise_{i}")
        )
        for i, (h, wide) in enumerate(sizes)
    ]
    return keras.Model(z, synthesis([*[w] * len(sizes), *noises]), name=name)



def discriminator_network(image_shape: tuple[int, int, int], width: float, name: str = "discriminator") -> keras.Model:
    """image -> logit: 3x3 convolutions halving twice (28 -> 14 -> 7), minibatch stddev, a convolution and a dense logit."""
    c28, c14, c7 = reversed(_channels(width))
    image = keras.Input(shape=image_shape, name="image")
    x = layers.LeakyReLU(LEAKY_SLOPE)(layers.Conv2D(c28, 3, padding="same", name="conv_full")(image))
    x = layers.LeakyReLU(LEAKY_SLOPE)(layers.Conv2D(c14, 3, strides=2, padding="same", name="conv_half")(x))
    x = layers.LeakyReLU(LEAKY_SLOPE)(layers.Conv2D(c7, 3, strides=2, padding="same", name="conv_quarter")(x))
    x = minibatch_stddev()(x)
    x = layers.LeakyReLU(LEAKY_SLOPE)(layers.Conv2D(c7, 3, padding="same", name="conv_out")(x))
    logit = layers.Dense(1, dtype="float32", name="logit")(layers.Flatten()(x))
    return keras.Model(image, logit, name=name)


# ---- styles -----------------------------------------------------------------------------------
def truncate(w: tf.Tensor | np.ndarray, w_avg: tf.Tensor | np.ndarray, psi: float) -> tf.Tensor | np.ndarray:
    """The truncation trick: w pulled towards the average w (psi = 1 leaves w, psi = 0 gives the average)."""
    return w if psi == 1 else w_avg + psi * (w - w_avg)


def mixed_styles(w: tf.Tensor, w_mix: tf.Tensor, mixed: tf.Tensor, cut: tf.Tensor, count: int) -> list[tf.Tensor]:
    """One w per block: `w` before each row's `cut`, `w_mix` from it on in the rows where `mixed` is true."""
    switch = tf.logical_and(mixed[:, None], tf.range(count)[None, :] >= cut[:, None])  # [rows, blocks]
    return [tf.where(switch[:, i : i + 1], w_mix, w) for i in range(count)]


# ---- the family -------------------------------------------------------------------------------
class StyleGAN(GanFamily):
    """A mapping network, a synthesis network of style blocks from a learned constant, and a discriminator."""

    name = "stylegan"
    settings = StyleganSettings
    metrics = (*ADVERSARIAL_METRICS, *STABILIZER_METRICS)
    divergence_advice = "Try lower learning rates, a higher R1 weight, or the wgan-gp loss."
    style_based = True

    def check_data(self, config: RunConfig, data: ImageSet) -> None:
        height, width, _ = data.image_shape
        if height % 4 or width % 4:
            raise ConfigError(f"The stylegan family needs image sides divisible by 4 (two doublings); '{data.source}' has {height}x{width} images.")

    # ---- networks ---------------------------------------------------------------------------
    def mapping(self, config: RunConfig, name: str = "mapping") -> keras.Model:
        return mapping_network(config.latent_dim, config.w_dim, config.mapping_layers, name)

    def synthesis(self, config: RunConfig, spec: DataSpec) -> keras.Model:
        return synthesis_network(spec.image_shape, config.w_dim, config.width)

    def discriminator(self, config: RunConfig, spec: DataSpec) -> keras.Model:
        return discriminator_network(spec.image_shape, config.width)

    # ---- training ---------------------------------------------------------------------------
    def build(self, config, spec, sync_batch_norm):
        policy = keras.mixed_precision.global_policy().name
        networks = {"mapping": self.mapping(config), "synthesis": self.synthesis(config, spec), "discriminator": self.discriminator(config, spec)}
        sampled = "mapping", "synthesis"
        if config.ema_decay > 0:
            for key in sampled:
                ema = self.mapping(config) if key == "mapping" else self.synthesis(config, spec)
                ema.set_weights(networks[key].get_weights())
                networks[f"ema_{key}"] = ema
            sampled = "ema_mapping", "ema_synthesis"
        networks["generator"] = style_generator(*(networks[key] for key in sampled))
        optimizers = {
            "g_optimizer": make_optimizer(config.g_lr, config.beta1, config.beta2, policy),
            "mapping_optimizer": make_optimizer(config.g_lr * config.mapping_lr_scale, config.beta1, config.beta2, policy),
            "d_optimizer": make_optimizer(config.d_lr, config.beta1, config.beta2, policy),
        }
        for key, net in (("g_optimizer", "synthesis"), ("mapping_optimizer", "mapping"), ("d_optimizer", "discriminator")):
            optimizers[key].build(networks[net].trainable_variables)
        w_avg = tf.Variable(tf.zeros([config.w_dim]), trainable=False, name="w_avg", aggregation=tf.VariableAggregation.MEAN)
        fixed = {"discriminator_features": feature_model(networks["discriminator"])} if config.feature_matching > 0 else {}
        return Parts(networks, optimizers, "generator", state={"w_avg": w_avg}, fixed=fixed)

    def draws(self, config, rng, rows, spec):
        count = num_styles(spec.image_shape)
        return {
            "z": rng.normal([rows, config.latent_dim]),
            "z_mix": rng.normal([rows, config.latent_dim]),
            "mix": rng.uniform([rows]),
            "cut": rng.uniform([rows], minval=1, maxval=count, dtype=tf.int32),
            **{f"noise_{i}": rng.normal([rows, h, w, 1]) for i, (h, w) in enumerate(block_sizes(spec.image_shape))},
            **augment_draws(config, rng, rows),
            **losses.get(config.loss).penalty_draws(rng, rows),
        }

    def train_step(self, parts, config, images, labels, draws, ctx):
        M, S, D = (parts.networks[key] for key in ("mapping", "synthesis", "discriminator"))
        g_opt, m_opt, d_opt = (parts.optimizers[key] for key in ("g_optimizer", "mapping_optimizer", "d_optimizer"))
        objective = losses.get(config.loss)
        count = len(S.inputs) // 2
        real = augmented(config, tf.cast(images, tf.float32), draws, "real")
        noises = [draws[f"noise_{i}"] for i in range(count)]
        critic = parts.fixed.get("discriminator_features", D)
        with tf.GradientTape() as d_tape:
            with tf.GradientTape(persistent=True) as g_tape:
                w = M(draws["z"], training=True)
                ws = mixed_styles(w, M(draws["z_mix"], training=True), draws["mix"] < config.style_mixing, draws["cut"], count)
                fake = augmented(config, S([*ws, *noises], training=True), draws, "fake")
                fake_out = critic(fake, training=True)
                fake_logits = logits_of(fake_out)
                g_loss = objective.g_loss(fake_logits)
                d_loss, real_out, r1 = r1_regularized_d_loss(
                    objective, critic, real, fake, fake_logits, config.r1_weight, config.gp_weight, draws
                )
                matching = feature_matching_term(config, real_out, fake_out)
                if config.feature_matching > 0:
                    g_loss = g_loss + config.feature_matching * matching
                g_scaled, m_scaled = ctx.scaled(g_opt, g_loss), ctx.scaled(m_opt, g_loss)
            real_logits = logits_of(real_out)
            d_scaled = ctx.scaled(d_opt, d_loss)
        g_norm = ctx.apply(g_opt, g_tape, g_scaled, S.trainable_variables)
        m_norm = ctx.apply(m_opt, g_tape, m_scaled, M.trainable_variables)
        del g_tape
        d_norm = ctx.apply(d_opt, d_tape, d_scaled, D.trainable_variables)
        w_avg = parts.state["w_avg"]
        batch_mean = tf.reduce_mean(tf.cast(w, tf.float32), axis=0)
        w_avg.assign(batch_mean + config.w_avg_decay * (w_avg - batch_mean))
        return {
            **adversarial_scalars(objective, g_loss, d_loss, real_logits, fake_logits, tf.sqrt(tf.square(g_norm) + tf.square(m_norm)), d_norm),
            "r1_penalty": tf.cast(r1, tf.float32),
            "feature_matching": matching,
        }

    def after_step(self, parts, config):
        if config.ema_decay > 0:
            pairs = [(parts.networks[f"ema_{key}"], parts.networks[key]) for key in ("mapping", "synthesis")]
            ema_update(pairs, parts.optimizers["g_optimizer"].iterations, config.ema_decay)

    # ---- sampling ---------------------------------------------------------------------------
    def sampler(self, config, spec):
        return "generator", style_generator(self.mapping(config), self.synthesis(config, spec))

    def partners(self, config, spec):
        return {"w_avg": tf.Variable(tf.zeros([config.w_dim]), trainable=False, name="w_avg")}

    def exports(self, config, spec):
        prefix = "ema_" * (config.ema_decay > 0)
        return {
            "generator": self.sampler(config, spec),
            "mapping": (f"{prefix}mapping", self.mapping(config)),
            "synthesis": (f"{prefix}synthesis", self.synthesis(config, spec)),
        }

    def generate(self, model, config, num_classes, n, seed, label=None, truncation=1.0, networks=None):
        z = np.random.default_rng(seed).standard_normal((n, config.latent_dim), dtype=np.float32)
        if truncation == 1:
            return run_generator(model, z), None
        styles = StyleSampler(model, (networks or {})["w_avg"])
        return styles.images(styles.w(z, truncation), noise=True), None

    def sample_grid(self, model, config, num_classes, networks=None):
        z = np.random.default_rng(config.seed).standard_normal((SAMPLE_COUNT, config.latent_dim), dtype=np.float32)
        return run_generator(model, z), SAMPLE_COLUMNS


class StyleSampler:
    """The parts of a trained StyleGAN generator that the style views call: z -> w, truncation, w per block -> image."""

    def __init__(self, generator: keras.Model, w_avg: tf.Variable | np.ndarray) -> None:
        self.mapping = generator.get_layer("mapping")
        self.synthesis = generator.get_layer("synthesis")
        self.blocks = len(self.synthesis.inputs) // 2
        self.w_avg = np.asarray(w_avg, np.float32)
        self.fixed_noise = [
            np.asarray(generator.get_layer(f"fixed_noise_{i}").bias, np.float32).reshape((1, *self.synthesis.inputs[self.blocks + i].shape[1:]))
            for i in range(self.blocks)
        ]

    def w(self, z: np.ndarray, psi: float = 1.0) -> np.ndarray:
        """The style vector of each z, truncated towards the average w by psi."""
        return truncate(run_generator(self.mapping, z, batch_size=BATCH), self.w_avg, psi)

    def images(self, ws: np.ndarray | list[np.ndarray], noise: bool = True) -> np.ndarray:
        """Images in [-1, 1] from one w per image (the same for every block) or a list of one w array per block."""
        ws = [ws] * self.blocks if isinstance(ws, np.ndarray) else list(ws)
        out = []
        for start in range(0, len(ws[0]), BATCH):
            rows = [w[start : start + BATCH] for w in ws]
            maps = [np.repeat(m, len(rows[0]), axis=0) * float(noise) for m in self.fixed_noise]
            out.append(np.asarray(self.synthesis([*rows, *maps], training=False), np.float32))
        return np.concatenate(out)
