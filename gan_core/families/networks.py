"""Generator and discriminator builders: DCGAN and MLP, optionally class-conditional.

The DCGAN models follow the TensorFlow DCGAN tutorial
(https://www.tensorflow.org/tutorials/generative/dcgan) scaled by `width`; the
conditional variants follow the keras-io conditional GAN example. Every model
ends in a float32 layer, so outputs are float32 even under a mixed precision
policy such as `mixed_bfloat16`.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from gan_core.errors import ConfigError
from gan_core.families.rows import dropout_layer
from gan_core.lazy_tf import keras, layers

ARCHITECTURES = ("dcgan", "mlp")

LABEL_EMBEDDING_DIM = 50
DCGAN_LEAKY_SLOPE = 0.3  # the tutorial's `layers.LeakyReLU()` default
MLP_LEAKY_SLOPE = 0.2
MIN_UNITS = 8


# --------------------------------------------------------------------------- validation


def _check_architecture(architecture: str) -> None:
    """Raise ConfigError unless `architecture` is one of ARCHITECTURES."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(
            f"architecture must be one of {', '.join(ARCHITECTURES)}, got {architecture!r}."
        )


def _check_image_shape(architecture: str, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Return `image_shape` as a tuple of three ints, or raise ConfigError."""
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(isinstance(d, Integral) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ConfigError(
            f"image_shape must be three positive integers (height, width, channels), got {image_shape!r}."
        )
    height, width, channels = (int(d) for d in shape)
    if channels not in (1, 3):
        raise ConfigError(f"image_shape must have 1 or 3 channels, got {channels} in {image_shape!r}.")
    if architecture == "dcgan" and (height % 4 or width % 4):
        raise ConfigError(
            f"image_shape height and width must be divisible by 4 for dcgan, got {image_shape!r}."
        )
    return height, width, channels


def _check_common(*, width: float, num_classes: int, dropout: float) -> None:
    """Raise ConfigError for a bad width, num_classes or dropout."""
    if isinstance(width, bool) or not isinstance(width, Real) or not math.isfinite(width) or width <= 0:
        raise ConfigError(f"width must be a number greater than 0, got {width!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral) or num_classes < 0 or num_classes == 1:
        raise ConfigError(
            f"num_classes must be 0 (unconditional) or an integer of at least 2, got {num_classes!r}."
        )
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}.")


def _check_latent_dim(latent_dim: int) -> None:
    """Raise ConfigError unless `latent_dim` is an integer of at least 1."""
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, Integral) or latent_dim < 1:
        raise ConfigError(f"latent_dim must be an integer of at least 1, got {latent_dim!r}.")


def _units(count: int, width: float) -> int:
    """Scale a channel or unit count by `width`, never below MIN_UNITS."""
    return max(MIN_UNITS, int(round(count * width)))


# --------------------------------------------------------------------------- generator


def build_generator(
    architecture: str,
    *,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    num_classes: int = 0,
    width: float = 1.0,
    batch_norm: bool = True,
    dropout: float = 0.0,
    sync_batch_norm: bool = False,
    name: str = "generator",
) -> keras.Model:
    """Build a generator mapping z (and a class label if num_classes > 1) to a tanh image.

    `sync_batch_norm` computes batch statistics over the global batch of all replicas (TensorFlow
    backend); use it when training under a strategy with more than one replica.
    """
    _check_architecture(architecture)
    shape = _check_image_shape(architecture, image_shape)
    _check_latent_dim(latent_dim)
    _check_common(width=width, num_classes=num_classes, dropout=dropout)
    builder = _dcgan_generator if architecture == "dcgan" else _mlp_generator
    return builder(
        image_shape=shape,
        latent_dim=int(latent_dim),
        num_classes=int(num_classes),
        width=float(width),
        batch_norm=bool(batch_norm),
        dropout=float(dropout),
        sync_batch_norm=bool(sync_batch_norm),
        name=name,
    )


def _generator_inputs(latent_dim: int, num_classes: int) -> tuple[list[keras.KerasTensor], keras.KerasTensor]:
    """Return the generator's inputs and the tensor its body starts from (z, or z ++ label embedding)."""
    z = keras.Input(shape=(latent_dim,), name="z")
    if not num_classes:
        return [z], z
    label = keras.Input(shape=(1,), dtype="int32", name="label")
    embedding = layers.Embedding(input_dim=num_classes, output_dim=LABEL_EMBEDDING_DIM, name="label_embedding")(label)
    embedding = layers.Flatten(name="label_flatten")(embedding)
    return [z, label], layers.Concatenate(name="z_and_label")([z, embedding])


def _model(inputs: list[keras.KerasTensor], outputs: keras.KerasTensor, name: str) -> keras.Model:
    """Wrap a functional graph; a single input is passed as a tensor, not a list."""
    return keras.Model(inputs=inputs[0] if len(inputs) == 1 else inputs, outputs=outputs, name=name)


def _dcgan_generator(
    *,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    num_classes: int,
    width: float,
    batch_norm: bool,
    dropout: float,
    sync_batch_norm: bool,
    name: str,
) -> keras.Model:
    """DCGAN tutorial generator: Dense → reshape → three 5×5 transposed convolutions."""
    height, img_width, channels = image_shape
    c256, c128, c64 = _units(256, width), _units(128, width), _units(64, width)
    inputs, x = _generator_inputs(latent_dim, num_classes)

    def block(x: keras.KerasTensor, stage: int) -> keras.KerasTensor:
        if batch_norm:
            x = layers.BatchNormalization(synchronized=sync_batch_norm, name=f"bn_{stage}")(x)
        x = layers.LeakyReLU(negative_slope=DCGAN_LEAKY_SLOPE, name=f"leaky_relu_{stage}")(x)
        if dropout > 0:
            x = layers.Dropout(rate=dropout, name=f"dropout_{stage}")(x)
        return x

    x = layers.Dense(units=(height // 4) * (img_width // 4) * c256, use_bias=not batch_norm, name="project")(x)
    x = block(x, 1)
    x = layers.Reshape(target_shape=(height // 4, img_width // 4, c256), name="reshape")(x)
    x = layers.Conv2DTranspose(
        filters=c128, kernel_size=5, strides=1, padding="same", use_bias=not batch_norm, name="deconv_1"
    )(x)
    x = block(x, 2)
    x = layers.Conv2DTranspose(
        filters=c64, kernel_size=5, strides=2, padding="same", use_bias=not batch_norm, name="deconv_2"
    )(x)
    x = block(x, 3)
    x = layers.Conv2DTranspose(
        filters=channels, kernel_size=5, strides=2, padding="same", use_bias=False, name="deconv_3"
    )(x)
    outputs = layers.Activation(activation="tanh", dtype="float32", name="image")(x)
    return _model(inputs, outputs, name)


def _mlp_generator(
    *,
    image_shape: tuple[int, int, int],
    latent_dim: int,
    num_classes: int,
    width: float,
    batch_norm: bool,
    dropout: float,
    sync_batch_norm: bool,
    name: str,
) -> keras.Model:
    """Classic dense generator: 256 → 512 → 1024 units, then a tanh image."""
    inputs, x = _generator_inputs(latent_dim, num_classes)
    for stage, units in enumerate((256, 512, 1024), start=1):
        x = layers.Dense(units=_units(units, width), name=f"dense_{stage}")(x)
        x = layers.LeakyReLU(negative_slope=MLP_LEAKY_SLOPE, name=f"leaky_relu_{stage}")(x)
        if batch_norm:
            x = layers.BatchNormalization(momentum=0.8, synchronized=sync_batch_norm, name=f"bn_{stage}")(x)
        if dropout > 0:
            x = layers.Dropout(rate=dropout, name=f"dropout_{stage}")(x)
    x = layers.Dense(units=math.prod(image_shape), name="dense_out")(x)
    x = layers.Reshape(target_shape=image_shape, name="reshape")(x)
    outputs = layers.Activation(activation="tanh", dtype="float32", name="image")(x)
    return _model(inputs, outputs, name)


# --------------------------------------------------------------------------- discriminator


def build_discriminator(
    architecture: str,
    *,
    image_shape: tuple[int, int, int],
    num_classes: int = 0,
    width: float = 1.0,
    batch_norm: bool = False,
    dropout: float = 0.3,
    spectral_norm: bool = False,
    sync_batch_norm: bool = False,
    row_dropout: bool = False,
    name: str = "discriminator",
) -> keras.Model:
    """Build a discriminator mapping an image (and a class label if num_classes > 1) to one float32 logit.

    `row_dropout` builds its dropout layers as `rows.RowDropout` (for training: masks from the run's RNG per row of the
    global batch) instead of Keras' Dropout (for exported files); the weights and checkpoints are the same.
    """
    _check_architecture(architecture)
    shape = _check_image_shape(architecture, image_shape)
    _check_common(width=width, num_classes=num_classes, dropout=dropout)
    builder = _dcgan_discriminator if architecture == "dcgan" else _mlp_discriminator
    return builder(
        image_shape=shape,
        num_classes=int(num_classes),
        width=float(width),
        batch_norm=bool(batch_norm),
        dropout=float(dropout),
        spectral_norm=bool(spectral_norm),
        sync_batch_norm=bool(sync_batch_norm),
        row_dropout=bool(row_dropout),
        name=name,
    )


def _maybe_sn(layer: layers.Layer, spectral_norm: bool) -> layers.Layer:
    """Wrap `layer` in SpectralNormalization when asked, keeping its dtype policy."""
    if not spectral_norm:
        return layer
    return layers.SpectralNormalization(
        layer, power_iterations=1, dtype=layer.dtype_policy, name=f"sn_{layer.name}"
    )


def _logit(x: keras.KerasTensor, spectral_norm: bool) -> keras.KerasTensor:
    """Final Dense(1) computed and returned in float32."""
    return _maybe_sn(layers.Dense(units=1, dtype="float32", name="logit"), spectral_norm)(x)


def _dcgan_discriminator(
    *,
    image_shape: tuple[int, int, int],
    num_classes: int,
    width: float,
    batch_norm: bool,
    dropout: float,
    spectral_norm: bool,
    sync_batch_norm: bool,
    row_dropout: bool,
    name: str,
) -> keras.Model:
    """DCGAN tutorial discriminator: two strided 5×5 convolutions, then one logit."""
    height, img_width, _ = image_shape
    image = keras.Input(shape=image_shape, name="image")
    inputs, x = [image], image
    if num_classes:
        label = keras.Input(shape=(1,), dtype="int32", name="label")
        y = layers.Embedding(input_dim=num_classes, output_dim=LABEL_EMBEDDING_DIM, name="label_embedding")(label)
        y = layers.Dense(units=height * img_width, name="label_dense")(y)
        y = layers.Reshape(target_shape=(height, img_width, 1), name="label_map")(y)
        inputs.append(label)
        x = layers.Concatenate(axis=-1, name="image_and_label")([image, y])

    x = _maybe_sn(
        layers.Conv2D(filters=_units(64, width), kernel_size=5, strides=2, padding="same", name="conv_1"),
        spectral_norm,
    )(x)
    x = layers.LeakyReLU(negative_slope=DCGAN_LEAKY_SLOPE, name="leaky_relu_1")(x)
    if dropout > 0:
        x = dropout_layer(dropout, "dropout_1", 1, row_dropout)(x)
    x = _maybe_sn(
        layers.Conv2D(filters=_units(128, width), kernel_size=5, strides=2, padding="same", name="conv_2"),
        spectral_norm,
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(synchronized=sync_batch_norm, name="bn_2")(x)
    x = layers.LeakyReLU(negative_slope=DCGAN_LEAKY_SLOPE, name="leaky_relu_2")(x)
    if dropout > 0:
        x = dropout_layer(dropout, "dropout_2", 2, row_dropout)(x)
    x = layers.Flatten(name="flatten")(x)
    return _model(inputs, _logit(x, spectral_norm), name)


def _mlp_discriminator(
    *,
    image_shape: tuple[int, int, int],
    num_classes: int,
    width: float,
    batch_norm: bool,
    dropout: float,
    spectral_norm: bool,
    sync_batch_norm: bool,
    row_dropout: bool,
    name: str,
) -> keras.Model:
    """Classic dense discriminator: 1024 → 512 → 256 units, then one logit."""
    image = keras.Input(shape=image_shape, name="image")
    inputs = [image]
    x = layers.Flatten(name="flatten")(image)
    if num_classes:
        label = keras.Input(shape=(1,), dtype="int32", name="label")
        y = layers.Embedding(input_dim=num_classes, output_dim=LABEL_EMBEDDING_DIM, name="label_embedding")(label)
        y = layers.Flatten(name="label_flatten")(y)
        inputs.append(label)
        x = layers.Concatenate(name="image_and_label")([x, y])
    for stage, units in enumerate((1024, 512, 256), start=1):
        x = _maybe_sn(layers.Dense(units=_units(units, width), name=f"dense_{stage}"), spectral_norm)(x)
        if batch_norm and stage > 1:
            x = layers.BatchNormalization(synchronized=sync_batch_norm, name=f"bn_{stage}")(x)
        x = layers.LeakyReLU(negative_slope=MLP_LEAKY_SLOPE, name=f"leaky_relu_{stage}")(x)
        if dropout > 0:
            x = dropout_layer(dropout, f"dropout_{stage}", stage, row_dropout)(x)
    return _model(inputs, _logit(x, spectral_norm), name)


# --------------------------------------------------------------------------- dashboard


def model_summary(model: keras.Model) -> list[dict]:
    """One row per top-level layer: name, class name, output shape and parameter count."""
    rows = []
    for layer in model.layers:
        try:
            output_shape = str(tuple(layer.output.shape))
        except (AttributeError, ValueError):
            output_shape = "?"
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output_shape": output_shape,
                "params": int(layer.count_params()) if layer.built else 0,
            }
        )
    return rows
