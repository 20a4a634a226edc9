"""ProGAN (Karras et al., 2018): both networks grow from 4x4 to the data's resolution while training, sized for a laptop CPU.

- Images are padded with background to the next side of the form 4 x 2^k (MNIST's 28 to 32) and the
  generator's output is cropped back, so every stage doubles the side exactly and training still starts
  at 4x4 (growing 7 -> 14 -> 28 would skip the 4x4 start and give one stage fewer). The padding is the
  background value (-1), which the generator learns as readily as the digits' own dark border.
- Stage 0 trains at 4x4. Each next stage adds a generator block (upsample, two 3x3 convolutions) and a
  discriminator block (two 3x3 convolutions, average pooling) and fades them in: for `fade_images`
  images the output is alpha * new + (1 - alpha) * upsampled old, alpha rising linearly from 0 to 1 (the
  real images D sees are faded the same way), then the stage trains stable for `stable_images` images.
  The last stage trains on to the end of the run.
- Equalized learning rate (weights drawn from N(0, 1), scaled at run time by He's constant), pixel
  normalization after every generator convolution, a minibatch standard-deviation feature in D, and
  the non-saturating loss with R1 (or any registered loss, such as wgan-gp).

z is not normalized to the unit sphere as in the paper: its length then matters, so the truncation
trick shrinks z (psi = 0 draws G(0)) as for the other noise-to-image families.

The training loop runs each stage as its own phase (one compiled step per stage, so a 4x4 step costs
a 4x4 step); the checkpoint holds `growth_step`, from which the stage and alpha follow, and the
sampler's stored stage and alpha. The exported generator (z in, image out) is built from Keras' own
layers: all stages' outputs, upsampled and picked by a fixed 1x1 convolution ("stage_mix"), so a run
stopped early draws at the stage it reached.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gan_core import losses
from gan_core.config import RunConfig, setting
from gan_core.data.imageset import ImageSet
from gan_core.errors import ConfigError
from gan_core.families.adversarial import adversarial_scalars, ema_update, make_optimizer, run_generator, shrunk
from gan_core.families.base import DataSpec, GanFamily, Parts, Phase
from gan_core.families.blocks import (
    LEAKY_SLOPE,
    equalized_conv,
    equalized_dense,
    minibatch_stddev,
    pixel_norm,
    r1_regularized_d_loss,
    stored_vector,
)
from gan_core.families.stabilizers import R1_METRIC, R1AugmentSettings, augment_draws, augmented
from gan_core.history_metrics import ADVERSARIAL_METRICS, Metric
from gan_core.lazy_tf import keras, layers, tf

START_SIDE = 4
MAX_SIDE = 256
SAMPLE_COUNT, SAMPLE_COLUMNS = 64, 8


@dataclasses.dataclass
class ProganSettings(R1AugmentSettings):
    """The settings of a progressively growing generator and discriminator."""

    latent_dim: int = setting(64, "Size of the noise vector z.", "architecture", "Latent dimension", min=1, max=1024)
    channels: str = setting(
        "128,128,64,32", "Channels of both networks at each resolution from 4x4 up (4, 8, 16, 32, ...), comma-separated; "
        "one per stage the data needs (four for 28x28 digits, grown to 32x32).", "architecture", "Channels per resolution", max_len=60,
        pattern=r"[1-9][0-9]{0,3}( ?, ?[1-9][0-9]{0,3}){0,7}",
        pattern_help="one to eight whole numbers from 1 to 9999 separated by commas (one per resolution from 4x4 up)",
    )
    fade_images: int = setting(
        16000, "Images shown while each new resolution fades in (alpha rises from 0 to 1).", "schedule", "Images per fade-in", min=1, max=100_000_000,
    )
    stable_images: int = setting(
        16000, "Images shown at each resolution once faded in (and at 4x4 before the first growth); the last resolution trains on to the end.",
        "schedule", "Images per stable phase", min=1, max=100_000_000,
    )
    loss: str = setting("bce", "GAN objective.", "loss", "Loss", choices=losses.LOSSES)
    gp_weight: float = setting(10.0, "Gradient-penalty weight (wgan-gp only).", "regularizers", "Gradient-penalty weight", min=0.0, max=1000.0)
    r1_weight: float = setting(
        1.0, "Weight of the R1 penalty: the squared gradient of D on real images; 0 turns it off.", "regularizers", "R1 weight",
        min=0.0, max=100.0,
    )
    ema_decay: float = setting(
        0.999, "EMA of the generator's weights for samples and export; 0 turns it off.", "regularizers", "Generator EMA decay",
        min=0.0, max=0.9999,
    )
    g_lr: float = setting(1e-3, "Generator learning rate (Adam).", "optimizer", "G learning rate", min=1e-7, max=1000.0)
    d_lr: float = setting(1e-3, "Discriminator learning rate (Adam).", "optimizer", "D learning rate", min=1e-7, max=1000.0)
    beta1: float = setting(0.0, "Adam beta 1 of both networks (ProGAN uses 0).", "optimizer", "Adam beta 1", min=0.0, max=0.999)
    beta2: float = setting(0.99, "Adam beta 2 of both networks.", "optimizer", "Adam beta 2", min=0.0, max=0.9999)

    def validate(self) -> None:
        losses.check_penalty_weight(self.loss, self.gp_weight)


def channel_list(text: str) -> list[int]:
    """The channels per resolution of a `channels` setting (already checked against its pattern)."""
    return [int(part) for part in text.split(",")]


# ---- sizes and schedule -----------------------------------------------------------------------
def padded_side(image_shape: tuple[int, int, int]) -> int:
    """The side training grows to: the smallest 4 x 2^k that holds the image."""
    side = START_SIDE
    while side < max(image_shape[:2]):
        side *= 2
    return side


def stage_count(image_shape: tuple[int, int, int]) -> int:
    """Resolutions from 4x4 to the padded side, both included."""
    return int(math.log2(padded_side(image_shape) // START_SIDE)) + 1


def stage_side(stage: int) -> int:
    return START_SIDE * 2**stage


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Which stage a step trains and its fade-in alpha, in steps of `batch_size` images."""

    stages: int
    fade: int  # steps per fade-in
    stable: int  # steps per stable phase

    @classmethod
    def of(cls, config: RunConfig, image_shape: tuple[int, int, int]) -> "Schedule":
        fade, stable = (max(1, math.ceil(images / config.batch_size)) for images in (config.fade_images, config.stable_images))
        return cls(stage_count(image_shape), fade, stable)

    def start(self, stage: int) -> int:
        """The first step of a stage (its fade-in; stage 0 has none)."""
        return 0 if stage == 0 else self.stable + (stage - 1) * (self.fade + self.stable)

    def stage_at(self, step) -> tf.Tensor:
        """The stage a step (0-based, an int or a tensor) trains."""
        later = tf.constant([self.start(s) for s in range(1, self.stages)], tf.int64)
        return tf.reduce_sum(tf.cast(later <= tf.cast(step, tf.int64), tf.int32))

    def alpha(self, step, stage) -> tf.Tensor:
        """The weight of a stage's newest block at a step: (steps into its fade-in + 1) / fade, at most 1; 1 at stage 0."""
        starts = tf.constant([self.start(s) for s in range(self.stages)], tf.int64)
        done = tf.cast(tf.cast(step, tf.int64) - tf.gather(starts, stage) + 1, tf.float32)
        return tf.where(tf.equal(stage, 0), 1.0, tf.minimum(1.0, done / self.fade))


# ---- networks ---------------------------------------------------------------------------------
def _act(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    return layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_act")(x)


def _fade(new: keras.KerasTensor, old: keras.KerasTensor, alpha: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """alpha * new + (1 - alpha) * old, with alpha a (rows, 1, 1, 1) input."""
    keep = layers.Rescaling(-1.0, offset=1.0, name=f"{name}_keep")(alpha)
    return layers.Add(name=name)([layers.Multiply(name=f"{name}_new")([new, alpha]), layers.Multiply(name=f"{name}_old")([old, keep])])


def generator_stages(latent_dim: int, channels: list[int], image_channels: int, name: str = "generator_stages") -> keras.Model:
    """[z, alpha] -> one image per stage (4x4, 8x8, ...; tanh), each stage's new block faded in over the previous stage's upsampled output."""
    z = keras.Input(shape=(latent_dim,), name="z")
    alpha = keras.Input(shape=(1, 1, 1), name="alpha")
    x = equalized_dense(z, START_SIDE * START_SIDE * channels[0], "input_dense", gain=math.sqrt(2) / 4)
    x = pixel_norm(_act(layers.Reshape((START_SIDE, START_SIDE, channels[0]), name="input_map")(x), "input"), "input_pn")
    x = pixel_norm(_act(equalized_conv(x, channels[0], 3, "conv_0"), "conv_0"), "conv_0_pn")
    rgb = equalized_conv(x, image_channels, 1, "to_rgb_0", gain=1.0, dtype="float32")
    images = [layers.Activation("tanh", dtype="float32", name="image_0")(rgb)]
    for stage, filters in enumerate(channels[1:], start=1):
        x = layers.UpSampling2D(2, name=f"upsample_{stage}")(x)
        for i in (1, 2):
            x = pixel_norm(_act(equalized_conv(x, filters, 3, f"conv_{stage}_{i}"), f"conv_{stage}_{i}"), f"conv_{stage}_{i}_pn")
        new = equalized_conv(x, image_channels, 1, f"to_rgb_{stage}", gain=1.0, dtype="float32")
        rgb_old = layers.UpSampling2D(2, name=f"rgb_upsample_{stage}")(rgb)
        rgb = new
        faded = _fade(new, rgb_old, alpha, f"fade_{stage}")
        images.append(layers.Activation("tanh", dtype="float32", name=f"image_{stage}")(faded))
    return keras.Model([z, alpha], images, name=name)


def _from_rgb(filters: int, stage: int, image_channels: int) -> keras.Model:
    """A 1x1 convolution from an image at the stage's side to its features."""
    side = stage_side(stage)
    image = keras.Input(shape=(side, side, image_channels), name="image")
    return keras.Model(image, _act(equalized_conv(image, filters, 1, "conv"), "conv"), name=f"from_rgb_{stage}")


def _d_block(channels: list[int], stage: int) -> keras.Model:
    """A discriminator block of `stage`: two 3x3 convolutions, then average pooling to the previous stage's side."""
    side = stage_side(stage)
    x = inputs = keras.Input(shape=(side, side, channels[stage]), name="features")
    x = _act(equalized_conv(x, channels[stage], 3, "conv_1"), "conv_1")
    x = _act(equalized_conv(x, channels[stage - 1], 3, "conv_2"), "conv_2")
    return keras.Model(inputs, layers.AveragePooling2D(2, name="downsample")(x), name=f"d_block_{stage}")


def _d_head(channels: list[int]) -> keras.Model:
    """4x4 features -> logit: minibatch stddev, a 3x3 convolution, a dense layer and the logit."""
    x = inputs = keras.Input(shape=(START_SIDE, START_SIDE, channels[0]), name="features")
    x = minibatch_stddev()(x)
    x = _act(equalized_conv(x, channels[0], 3, "conv"), "conv")
    x = _act(equalized_dense(layers.Flatten(name="flatten")(x), channels[0], "dense"), "dense")
    return keras.Model(inputs, equalized_dense(x, 1, "logit", gain=1.0, dtype="float32"), name="d_head")


def discriminator_stages(channels: list[int], image_channels: int, name: str = "discriminator_stages") -> keras.Model:
    """[image at 4x4, image at 8x8, ..., alpha] -> one logit per stage; each stage's new block faded in over the
    previous stage's input path fed the image pooled to half its side."""
    images = [keras.Input(shape=(stage_side(s), stage_side(s), image_channels), name=f"image_{s}") for s in range(len(channels))]
    alpha = keras.Input(shape=(1, 1, 1), name="alpha")
    from_rgb = [_from_rgb(filters, stage, image_channels) for stage, filters in enumerate(channels)]
    blocks = {s: _d_block(channels, s) for s in range(1, len(channels))}
    head = _d_head(channels)
    logits = [head(from_rgb[0](images[0]))]
    for stage in range(1, len(channels)):
        old = from_rgb[stage - 1](layers.AveragePooling2D(2, name=f"pool_{stage}")(images[stage]))
        x = _fade(blocks[stage](from_rgb[stage](images[stage])), old, alpha, f"fade_{stage}")
        for lower in range(stage - 1, 0, -1):
            x = blocks[lower](x)
        logits.append(layers.Activation("linear", dtype="float32", name=f"logit_{stage}")(head(x)))
    return keras.Model([*images, alpha], logits, name=name)


def stage_model(all_stages: keras.Model, stage: int, first_input: int) -> keras.Model:
    """The part of `generator_stages` or `discriminator_stages` that stage `stage` runs, weights shared: its
    input `first_input` (z, or the image at the stage's side), then alpha (the last input) after stage 0."""
    first = all_stages.inputs[first_input]
    inputs = first if stage == 0 else [first, all_stages.inputs[-1]]
    return keras.Model(inputs, all_stages.outputs[stage], name=f"{all_stages.name}_{stage}")


def sampling_generator(stages: keras.Model, image_shape: tuple[int, int, int], name: str = "generator") -> keras.Model:
    """z -> image of the data's shape at the stage and alpha stored in the model ("stage_mix", "fade_alpha"), which training updates."""
    z = keras.Input(shape=(stages.inputs[0].shape[-1],), name="z")
    alpha = layers.Reshape((1, 1, 1), name="fade_alpha_map")(stored_vector(z, 1, "ones", False, "fade_alpha"))
    side, count = padded_side(image_shape), len(stages.outputs)
    outputs = stages([z, alpha])
    upsampled = [layers.UpSampling2D(side // stage_side(s), name=f"to_full_{s}")(image) if s < count - 1 else image for s, image in enumerate(outputs)]
    mix = layers.Conv2D(
        image_shape[-1], 1, use_bias=False, trainable=False, kernel_initializer=keras.initializers.Constant(_mix_kernel(0, count, image_shape[-1]).numpy()),
        dtype="float32", name="stage_mix",
    )(layers.Concatenate(name="all_stages")(upsampled))
    top, left = (side - image_shape[0]) // 2, (side - image_shape[1]) // 2
    crop = layers.Cropping2D(((top, side - image_shape[0] - top), (left, side - image_shape[1] - left)), name="crop")(mix)
    return keras.Model(z, layers.Activation("linear", dtype="float32", name="image")(crop), name=name)


def _mix_kernel(stage: int | tf.Tensor, count: int, image_channels: int) -> tf.Tensor:
    """The 1x1 kernel that passes stage `stage`'s channels through and drops the others."""
    pick = tf.one_hot(stage, count)[:, None, None] * tf.eye(image_channels)[None]
    return tf.reshape(pick, (1, 1, count * image_channels, image_channels))


def pad_images(images: tf.Tensor, side: int) -> tf.Tensor:
    """Images padded with the background value (-1) to side x side, centred as the sampler crops them."""
    height, width = images.shape[1], images.shape[2]
    top, left = (side - height) // 2, (side - width) // 2
    return tf.pad(images, [[0, 0], [top, side - height - top], [left, side - width - left], [0, 0]], constant_values=-1.0)


def shrink(images: tf.Tensor, factor: int) -> tf.Tensor:
    return images if factor == 1 else tf.nn.avg_pool2d(images, factor, factor, "VALID")


def faded_reals(padded: tf.Tensor, stage: int, alpha: tf.Tensor) -> tf.Tensor:
    """Real images as D sees them at a stage: pooled to the stage's side, and faded with the previous side while alpha < 1."""
    side = padded.shape[1]
    now = shrink(padded, side // stage_side(stage))
    if stage == 0:
        return now
    before = tf.repeat(tf.repeat(shrink(now, 2), 2, axis=1), 2, axis=2)
    return alpha * now + (1.0 - alpha) * before


# ---- the family -------------------------------------------------------------------------------
class ProGAN(GanFamily):
    """A generator and a discriminator that grow a block per stage, from 4x4 to the data's side."""

    name = "progan"
    settings = ProganSettings
    metrics = (
        *ADVERSARIAL_METRICS,
        R1_METRIC,
        Metric("stage", "Stage (0 = 4x4)", "Growth"),
        Metric("alpha", "Fade-in alpha", "Growth"),
    )
    divergence_advice = "Try lower learning rates, a higher R1 weight, or longer fade-ins."

    def check_data(self, config: RunConfig, data: ImageSet) -> None:
        side, needed = padded_side(data.image_shape), stage_count(data.image_shape)
        if side > MAX_SIDE:
            raise ConfigError(f"The progan family grows to at most {MAX_SIDE}x{MAX_SIDE}; '{data.source}' has {data.image_shape[0]}x{data.image_shape[1]} images.")
        given = channel_list(config.channels)
        if len(given) < needed:
            raise ConfigError(
                f"channels lists {len(given)} resolutions but '{data.source}' grows through {needed} (4x4 to {side}x{side}); "
                f"give {needed} numbers, e.g. {','.join(str(max(16, 128 >> max(0, s - 1))) for s in range(needed))}."
            )

    def phases(self, config, spec):
        schedule = Schedule.of(config, spec.image_shape)
        return tuple(
            Phase(schedule.start(s), f"{stage_side(s)}x{stage_side(s)}") for s in range(schedule.stages)
        )

    # ---- networks ---------------------------------------------------------------------------
    def _channels(self, config: RunConfig, spec: DataSpec) -> list[int]:
        return channel_list(config.channels)[: stage_count(spec.image_shape)]

    def generator_stages(self, config: RunConfig, spec: DataSpec, name: str = "generator_stages") -> keras.Model:
        return generator_stages(config.latent_dim, self._channels(config, spec), spec.image_shape[-1], name)

    def build(self, config, spec, sync_batch_norm):
        policy = keras.mixed_precision.global_policy().name
        networks = {
            "generator_stages": self.generator_stages(config, spec),
            "discriminator_stages": discriminator_stages(self._channels(config, spec), spec.image_shape[-1]),
        }
        sampled = networks["generator_stages"]
        if config.ema_decay > 0:
            sampled = networks["ema_generator_stages"] = self.generator_stages(config, spec, "ema_generator_stages")
            sampled.set_weights(networks["generator_stages"].get_weights())
        networks["generator"] = sampling_generator(sampled, spec.image_shape)
        optimizers = {
            "g_optimizer": make_optimizer(config.g_lr, config.beta1, config.beta2, policy),
            "d_optimizer": make_optimizer(config.d_lr, config.beta1, config.beta2, policy),
        }
        for key, net in (("g_optimizer", "generator_stages"), ("d_optimizer", "discriminator_stages")):
            optimizers[key].build(networks[net].trainable_variables)
        stages = stage_count(spec.image_shape)
        fixed = {
            **{f"generator_{s}": stage_model(networks["generator_stages"], s, 0) for s in range(stages)},
            **{f"discriminator_{s}": stage_model(networks["discriminator_stages"], s, s) for s in range(stages)},
        }
        growth_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="growth_step")
        return Parts(networks, optimizers, "generator", state={"growth_step": growth_step}, fixed=fixed)

    def draws(self, config, rng, rows, spec):
        return {
            "z": rng.normal([rows, config.latent_dim]), **augment_draws(config, rng, rows), **losses.get(config.loss).penalty_draws(rng, rows),
        }

    def train_step(self, parts, config, images, labels, draws, ctx):
        stage = ctx.phase
        schedule = Schedule.of(config, _image_shape(parts))
        G, D = parts.fixed[f"generator_{stage}"], parts.fixed[f"discriminator_{stage}"]
        g_opt, d_opt = parts.optimizers["g_optimizer"], parts.optimizers["d_optimizer"]
        objective = losses.get(config.loss)
        alpha = schedule.alpha(parts.state["growth_step"], stage)
        rows = tf.shape(images)[0]
        alpha_map = tf.fill([rows, 1, 1, 1], alpha)
        stage_inputs = (lambda x: x) if stage == 0 else (lambda x: [x, alpha_map])
        side = padded_side(_image_shape(parts))
        real = augmented(config, faded_reals(pad_images(tf.cast(images, tf.float32), side), stage, alpha), draws, "real")
        critic = lambda x, training=True: D(stage_inputs(x), training=training)  # noqa: E731
        with tf.GradientTape() as d_tape:
            with tf.GradientTape() as g_tape:
                fake = augmented(config, G(stage_inputs(draws["z"]), training=True), draws, "fake")
                fake_logits = critic(fake)
                g_loss = objective.g_loss(fake_logits)
                g_scaled = ctx.scaled(g_opt, g_loss)
            d_loss, real_logits, r1 = r1_regularized_d_loss(objective, critic, real, fake, fake_logits, config.r1_weight, config.gp_weight, draws)
            d_scaled = ctx.scaled(d_opt, d_loss)
        g_norm = ctx.apply(g_opt, g_tape, g_scaled, G.trainable_variables)
        d_norm = ctx.apply(d_opt, d_tape, d_scaled, D.trainable_variables)
        return {
            **adversarial_scalars(objective, g_loss, d_loss, real_logits, fake_logits, g_norm, d_norm),
            "r1_penalty": tf.cast(r1, tf.float32),
            "stage": tf.constant(float(stage)),
            "alpha": tf.cast(alpha, tf.float32),
        }

    def after_step(self, parts, config):
        """The EMA, then the sampler's stored stage and alpha set to the step just trained, then the step count."""
        if config.ema_decay > 0:
            ema_update([(parts.networks["ema_generator_stages"], parts.networks["generator_stages"])], parts.optimizers["g_optimizer"].iterations, config.ema_decay)
        sampler = parts.networks["generator"]
        schedule = Schedule.of(config, _image_shape(parts))
        step = parts.state["growth_step"]
        stage = schedule.stage_at(step)
        sampler.get_layer("stage_mix").kernel.assign(_mix_kernel(stage, schedule.stages, sampler.outputs[0].shape[-1]))
        sampler.get_layer("fade_alpha").bias.assign(tf.reshape(schedule.alpha(step, stage), [1]))
        step.assign_add(1)

    # ---- sampling ---------------------------------------------------------------------------
    def sampler(self, config, spec):
        return "generator", sampling_generator(self.generator_stages(config, spec), spec.image_shape)

    def generate(self, model, config, num_classes, n, seed, label=None, truncation=1.0, networks=None):
        z = np.random.default_rng(seed).standard_normal((n, config.latent_dim), dtype=np.float32)
        return run_generator(model, shrunk(z, truncation)), None

    def sample_grid(self, model, config, num_classes, networks=None):
        z = np.random.default_rng(config.seed).standard_normal((SAMPLE_COUNT, config.latent_dim), dtype=np.float32)
        return run_generator(model, z), SAMPLE_COLUMNS


def _image_shape(parts: Parts) -> tuple[int, int, int]:
    return tuple(parts.networks["generator"].outputs[0].shape[1:])


def growth_of(sampler: keras.Model) -> tuple[int, float]:
    """The stage and alpha a sampling generator draws at (what the run had reached)."""
    kernel = np.asarray(sampler.get_layer("stage_mix").kernel)
    channels = kernel.shape[-1]
    stage = int(np.argmax(kernel[0, 0, ::channels, 0]))
    return stage, float(np.asarray(sampler.get_layer("fade_alpha").bias)[0])
