"""Tests for gan_core.families.networks: shapes, tutorial parameter counts, options, errors, mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from gan_core.errors import ConfigError
from gan_core.families.networks import ARCHITECTURES, build_discriminator, build_generator, model_summary

LATENT = 8
BATCH = 2


@pytest.fixture(params=["mixed_bfloat16", "mixed_float16"])
def mixed_policy(request):
    """The half dtype of each device's mixed policy (CPU: bfloat16, GPU: float16), set for the test; float32 restored after."""
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param.removeprefix("mixed_")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _z(batch: int = BATCH, latent: int = LATENT, scale: float = 1.0) -> np.ndarray:
    """Fixed latent vectors."""
    return (scale * np.random.default_rng(0).standard_normal((batch, latent))).astype("float32")


def _labels(batch: int = BATCH) -> np.ndarray:
    """Fixed int32 class labels of shape (batch,)."""
    return (np.arange(batch) % 10).astype("int32")


def _layers_of(model: keras.Model, kind: type) -> list:
    """Top-level layers of `model` that are instances of `kind`."""
    return [layer for layer in model.layers if isinstance(layer, kind)]


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("image_shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_output_shapes(architecture, image_shape, num_classes):
    generator = build_generator(
        architecture, image_shape=image_shape, latent_dim=LATENT, num_classes=num_classes, width=0.25
    )
    discriminator = build_discriminator(
        architecture, image_shape=image_shape, num_classes=num_classes, width=0.25
    )
    if num_classes:
        labels = tf.constant(_labels())
        images = generator([tf.constant(_z()), labels], training=False)
        logits = discriminator([images, labels], training=False)
        assert len(generator.inputs) == 2 and len(discriminator.inputs) == 2
    else:
        images = generator(_z(), training=False)
        logits = discriminator(images, training=False)
        assert len(generator.inputs) == 1 and len(discriminator.inputs) == 1
    assert tuple(images.shape) == (BATCH, *image_shape)
    assert tuple(logits.shape) == (BATCH, 1)
    assert images.dtype == tf.float32 and logits.dtype == tf.float32
    assert generator.name == "generator" and discriminator.name == "discriminator"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_label_may_have_shape_batch_or_batch_by_one(architecture):
    generator = build_generator(architecture, image_shape=(28, 28, 1), latent_dim=LATENT, num_classes=3, width=0.25)
    flat = generator([tf.constant(_z()), tf.constant([0, 2], dtype=tf.int32)])
    column = generator([tf.constant(_z()), tf.constant([[0], [2]], dtype=tf.int32)])
    np.testing.assert_allclose(flat.numpy(), column.numpy(), rtol=1e-6, atol=1e-6)


def test_label_changes_conditional_output():
    generator = build_generator("dcgan", image_shape=(28, 28, 1), latent_dim=LATENT, num_classes=3, width=0.25)
    z = tf.constant(_z(batch=1))
    a = generator([z, tf.constant([0])]).numpy()
    b = generator([z, tf.constant([2])]).numpy()
    assert not np.allclose(a, b)


def test_dcgan_discriminator_gets_label_channel():
    discriminator = build_discriminator("dcgan", image_shape=(32, 32, 3), num_classes=10, width=0.25)
    concat = discriminator.get_layer("image_and_label")
    assert tuple(concat.output.shape) == (None, 32, 32, 4)
    assert discriminator.get_layer("label_embedding").output_dim == 50


def test_mlp_accepts_shape_not_divisible_by_four():
    generator = build_generator("mlp", image_shape=(30, 30, 1), latent_dim=LATENT, width=0.25)
    assert tuple(generator(_z()).shape) == (BATCH, 30, 30, 1)


# --------------------------------------------------------------------------- tutorial parity


def test_dcgan_matches_tensorflow_tutorial_parameter_counts():
    generator = build_generator("dcgan", image_shape=(28, 28, 1), latent_dim=100)
    discriminator = build_discriminator("dcgan", image_shape=(28, 28, 1))
    assert generator.count_params() == 2_330_944
    assert discriminator.count_params() == 212_865
    assert tuple(generator.get_layer("reshape").output.shape) == (None, 7, 7, 256)
    assert [layer.strides for layer in _layers_of(generator, layers.Conv2DTranspose)] == [(1, 1), (2, 2), (2, 2)]


def test_width_scales_channels_with_floor_of_eight():
    generator = build_generator("dcgan", image_shape=(28, 28, 1), latent_dim=LATENT, width=0.5)
    assert [layer.filters for layer in _layers_of(generator, layers.Conv2DTranspose)] == [64, 32, 1]
    assert generator.get_layer("project").units == 7 * 7 * 128
    tiny = build_discriminator("dcgan", image_shape=(28, 28, 1), width=0.01)
    assert [layer.filters for layer in _layers_of(tiny, layers.Conv2D)] == [8, 8]
    mlp = build_discriminator("mlp", image_shape=(28, 28, 1), width=0.25)
    assert [layer.units for layer in _layers_of(mlp, layers.Dense)] == [256, 128, 64, 1]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_generator_output_is_tanh_bounded(architecture):
    generator = build_generator(architecture, image_shape=(28, 28, 1), latent_dim=LATENT, width=0.25)
    last = generator.layers[-1]
    assert isinstance(last, layers.Activation) and last.activation is keras.activations.tanh
    images = generator(_z(batch=4, scale=100.0), training=False).numpy()
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert np.abs(images).max() > 0.5  # large inputs actually reach the saturating part


# --------------------------------------------------------------------------- options


def test_generator_batch_norm_and_dropout_options():
    with_bn = build_generator("dcgan", image_shape=(28, 28, 1), latent_dim=LATENT, width=0.25)
    assert len(_layers_of(with_bn, layers.BatchNormalization)) == 3
    assert not with_bn.get_layer("project").use_bias
    assert not _layers_of(with_bn, layers.Dropout)

    plain = build_generator(
        "dcgan", image_shape=(28, 28, 1), latent_dim=LATENT, width=0.25, batch_norm=False, dropout=0.2
    )
    assert not _layers_of(plain, layers.BatchNormalization)
    assert plain.get_layer("project").use_bias and plain.get_layer("deconv_1").use_bias
    assert [layer.rate for layer in _layers_of(plain, layers.Dropout)] == [0.2, 0.2, 0.2]

    mlp = build_generator("mlp", image_shape=(28, 28, 1), latent_dim=LATENT, width=0.25, dropout=0.1)
    assert len(_layers_of(mlp, layers.BatchNormalization)) == 3
    assert len(_layers_of(mlp, layers.Dropout)) == 3


def test_discriminator_batch_norm_and_dropout_options():
    default = build_discriminator("dcgan", image_shape=(28, 28, 1), width=0.25)
    assert not _layers_of(default, layers.BatchNormalization)
    assert [layer.rate for layer in _layers_of(default, layers.Dropout)] == [0.3, 0.3]
    with_bn = build_discriminator("dcgan", image_shape=(28, 28, 1), width=0.25, batch_norm=True, dropout=0.0)
    assert [layer.name for layer in _layers_of(with_bn, layers.BatchNormalization)] == ["bn_2"]
    assert not _layers_of(with_bn, layers.Dropout)


@pytest.mark.parametrize(("architecture", "wrapped"), [("dcgan", 3), ("mlp", 4)])
def test_spectral_norm_wraps_every_conv_and_dense(architecture, wrapped):
    plain = build_discriminator(architecture, image_shape=(28, 28, 1), width=0.25)
    assert not _layers_of(plain, layers.SpectralNormalization)
    normed = build_discriminator(architecture, image_shape=(28, 28, 1), width=0.25, spectral_norm=True)
    wrappers = _layers_of(normed, layers.SpectralNormalization)
    assert len(wrappers) == wrapped
    assert all(isinstance(w.layer, (layers.Conv2D, layers.Dense)) for w in wrappers)
    assert not _layers_of(normed, layers.Conv2D) and not _layers_of(normed, layers.Dense)
    logits = normed(np.zeros((BATCH, 28, 28, 1), "float32"), training=True)
    assert tuple(logits.shape) == (BATCH, 1) and logits.dtype == tf.float32


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("architecture", "kwargs", "match"),
    [
        ("resnet", {}, r"architecture.*'resnet'"),
        ("dcgan", {"width": 0}, r"width.*0"),
        ("dcgan", {"width": -0.5}, r"width.*-0\.5"),
        ("dcgan", {"latent_dim": 0}, r"latent_dim.*0"),
        ("dcgan", {"num_classes": 1}, r"num_classes.*1"),
        ("mlp", {"num_classes": -2}, r"num_classes.*-2"),
        ("dcgan", {"dropout": 1.0}, r"dropout.*1\.0"),
        ("mlp", {"dropout": -0.1}, r"dropout.*-0\.1"),
        ("dcgan", {"image_shape": (30, 30, 1)}, r"image_shape.*\(30, 30, 1\)"),
        ("mlp", {"image_shape": (28, 28, 2)}, r"channels.*\(28, 28, 2\)"),
        ("dcgan", {"image_shape": (28, 28)}, r"image_shape.*\(28, 28\)"),
    ],
)
def test_generator_bad_arguments_raise_config_error(architecture, kwargs, match):
    arguments = {"image_shape": (28, 28, 1), "latent_dim": LATENT, **kwargs}
    with pytest.raises(ConfigError, match=match):
        build_generator(architecture, **arguments)


@pytest.mark.parametrize(
    ("architecture", "kwargs", "match"),
    [
        ("gan", {}, r"architecture.*'gan'"),
        ("mlp", {"width": 0.0}, r"width.*0\.0"),
        ("dcgan", {"num_classes": 1}, r"num_classes.*1"),
        ("dcgan", {"dropout": 1.5}, r"dropout.*1\.5"),
        ("dcgan", {"image_shape": (28, 30, 3)}, r"divisible by 4.*\(28, 30, 3\)"),
    ],
)
def test_discriminator_bad_arguments_raise_config_error(architecture, kwargs, match):
    arguments = {"image_shape": (28, 28, 1), **kwargs}
    with pytest.raises(ConfigError, match=match):
        build_discriminator(architecture, **arguments)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        build_generator("dcgan", image_shape=(28, 28, 1), latent_dim=-1)


# --------------------------------------------------------------------------- mixed precision


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_mixed_policy_gives_float32_outputs(mixed_policy, architecture):
    generator = build_generator(architecture, image_shape=(32, 32, 3), latent_dim=LATENT, num_classes=10, width=0.25)
    discriminator = build_discriminator(
        architecture, image_shape=(32, 32, 3), num_classes=10, width=0.25, spectral_norm=True, batch_norm=True
    )
    assert generator.get_layer("project" if architecture == "dcgan" else "dense_1").compute_dtype == mixed_policy
    assert {weight.dtype for weight in generator.weights + discriminator.weights} == {"float32"}, "variables stay float32"
    labels = tf.constant(_labels())
    images = generator([tf.constant(_z()), labels], training=True)
    logits = discriminator([images, labels], training=True)
    assert images.dtype == tf.float32 and logits.dtype == tf.float32
    assert tuple(logits.shape) == (BATCH, 1)
    assert np.isfinite(logits.numpy()).all()


def test_policy_restored_after_mixed_precision_test():
    assert keras.mixed_precision.global_policy().name == "float32"


# --------------------------------------------------------------------------- summary


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_model_summary_rows_match_model(spectral_norm):
    discriminator = build_discriminator(
        "dcgan", image_shape=(28, 28, 1), num_classes=10, width=0.25, spectral_norm=spectral_norm
    )
    rows = model_summary(discriminator)
    assert [row["layer"] for row in rows] == [layer.name for layer in discriminator.layers]
    assert all(set(row) == {"layer", "type", "output_shape", "params"} for row in rows)
    assert all(isinstance(row["params"], int) and isinstance(row["output_shape"], str) for row in rows)
    assert sum(row["params"] for row in rows) == discriminator.count_params()
    by_name = {row["layer"]: row for row in rows}
    assert by_name["image_and_label"]["output_shape"] == "(None, 28, 28, 2)"
    assert by_name["logit" if not spectral_norm else "sn_logit"]["output_shape"] == "(None, 1)"


def test_model_summary_of_tutorial_generator():
    generator = build_generator("dcgan", image_shape=(28, 28, 1), latent_dim=100)
    rows = model_summary(generator)
    assert sum(row["params"] for row in rows) == generator.count_params() == 2_330_944
    assert rows[0] == {"layer": "z", "type": "InputLayer", "output_shape": "(None, 100)", "params": 0}
    assert rows[-1]["type"] == "Activation" and rows[-1]["output_shape"] == "(None, 28, 28, 1)"


# --------------------------------------------------------------------------- serialization


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_models_round_trip_through_keras_format(tmp_path, architecture):
    discriminator = build_discriminator(
        architecture, image_shape=(28, 28, 1), num_classes=10, width=0.25, spectral_norm=True
    )
    path = tmp_path / "discriminator.keras"
    discriminator.save(path)
    restored = keras.models.load_model(path)
    inputs = [np.random.default_rng(0).uniform(-1, 1, (BATCH, 28, 28, 1)).astype("float32"), _labels()]
    np.testing.assert_allclose(restored(inputs).numpy(), discriminator(inputs).numpy(), rtol=1e-5, atol=1e-6)
