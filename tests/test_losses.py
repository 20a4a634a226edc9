"""Tests for gan_core.losses against hand-computed numpy values."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from gan_core.errors import ConfigError
from gan_core.losses import LOSSES, get, gradient_penalty

REAL = np.array([[2.0], [-1.0], [0.5], [0.0]], dtype="float32")
FAKE = np.array([[-3.0], [0.0], [1.5], [-0.25]], dtype="float32")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Numpy logistic function in float64."""
    return 1.0 / (1.0 + np.exp(-x.astype("float64")))


def _bce(target: float, logits: np.ndarray) -> float:
    """Naive binary cross-entropy of probabilities sigmoid(logits) against a constant target."""
    p = _sigmoid(logits)
    return float(np.mean(-(target * np.log(p) + (1.0 - target) * np.log(1.0 - p))))


def _close(value: tf.Tensor, expected: float) -> None:
    """Assert `value` is a float32 scalar close to `expected`."""
    assert value.dtype == tf.float32 and value.shape == ()
    assert float(value) == pytest.approx(expected, rel=1e-5, abs=1e-6)


# --------------------------------------------------------------------------- hand-computed values


@pytest.mark.parametrize("loss", ["bce", "minimax"])
def test_sigmoid_discriminator_loss(loss):
    _close(get(loss).d_loss(REAL, FAKE), _bce(1.0, REAL) + _bce(0.0, FAKE))


def test_bce_generator_loss_is_non_saturating():
    _close(get("bce").g_loss(FAKE), float(np.mean(-np.log(_sigmoid(FAKE)))))


def test_minimax_generator_loss_is_log_one_minus_d():
    _close(get("minimax").g_loss(FAKE), float(np.mean(np.log(1.0 - _sigmoid(FAKE)))))


def test_minimax_generator_loss_is_stable_for_large_logits():
    value = get("minimax").g_loss(np.array([100.0, -100.0], dtype="float32"))
    assert np.isfinite(float(value))
    assert float(value) == pytest.approx(-50.0, rel=1e-6)  # mean(-softplus(100), -softplus(-100))


def test_lsgan_losses():
    expected_d = 0.5 * np.mean((REAL - 1.0) ** 2) + 0.5 * np.mean(FAKE**2)
    _close(get("lsgan").d_loss(REAL, FAKE), float(expected_d))
    _close(get("lsgan").g_loss(FAKE), float(0.5 * np.mean((FAKE - 1.0) ** 2)))


def test_hinge_losses():
    expected_d = np.mean(np.maximum(0.0, 1.0 - REAL)) + np.mean(np.maximum(0.0, 1.0 + FAKE))
    _close(get("hinge").d_loss(REAL, FAKE), float(expected_d))
    _close(get("hinge").g_loss(FAKE), float(-np.mean(FAKE)))


def test_wgan_gp_losses():
    _close(get("wgan-gp").d_loss(REAL, FAKE), float(np.mean(FAKE) - np.mean(REAL)))
    _close(get("wgan-gp").g_loss(FAKE), float(-np.mean(FAKE)))


# --------------------------------------------------------------------------- label smoothing


def test_bce_label_smoothing_value():
    _close(get("bce").d_loss(REAL, FAKE, label_smoothing=0.1), _bce(0.9, REAL) + _bce(0.0, FAKE))


def test_lsgan_label_smoothing_value():
    expected = 0.5 * np.mean((REAL - 0.8) ** 2) + 0.5 * np.mean(FAKE**2)
    _close(get("lsgan").d_loss(REAL, FAKE, label_smoothing=0.2), float(expected))


@pytest.mark.parametrize("loss", ["bce", "minimax", "lsgan"])
def test_label_smoothing_changes_only_the_real_term(loss):
    other_fake = FAKE * -2.0 + 0.7
    shift = float(get(loss).d_loss(REAL, FAKE, 0.2) - get(loss).d_loss(REAL, FAKE))
    other_shift = float(get(loss).d_loss(REAL, other_fake, 0.2) - get(loss).d_loss(REAL, other_fake))
    assert shift != pytest.approx(0.0, abs=1e-4)
    assert shift == pytest.approx(other_shift, abs=1e-5)


@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_label_smoothing_is_ignored_by_margin_losses(loss):
    assert float(get(loss).d_loss(REAL, FAKE, 0.3)) == float(get(loss).d_loss(REAL, FAKE))


# --------------------------------------------------------------------------- errors and dtypes


@pytest.mark.parametrize("bad", ["wgan", "BCE", ""])
def test_unknown_loss_raises_config_error(bad):
    with pytest.raises(ConfigError, match=rf"loss must be one of bce, .*got '{bad}'"):
        get(bad).d_loss(REAL, FAKE)
    with pytest.raises(ConfigError, match=rf"got '{bad}'"):
        get(bad).g_loss(FAKE)
    with pytest.raises(ConfigError, match=rf"got '{bad}'"):
        get(bad).probability(FAKE)


@pytest.mark.parametrize("bad", [-0.1, 0.5, 0.9])
def test_bad_label_smoothing_raises_config_error(bad):
    with pytest.raises(ConfigError, match=rf"label_smoothing must be in \[0, 0\.5\), got {bad}"):
        get("bce").d_loss(REAL, FAKE, label_smoothing=bad)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16, tf.float64])
def test_losses_cast_inputs_and_return_float32_scalars(loss, dtype):
    real, fake = tf.constant(REAL, dtype=dtype), tf.constant(FAKE, dtype=dtype)
    for value in (get(loss).d_loss(real, fake), get(loss).g_loss(fake), get(loss).probability(fake)):
        assert value.dtype == tf.float32 and value.shape == ()


def test_losses_work_inside_tf_function():
    @tf.function
    def both(real, fake):
        return get("hinge").d_loss(real, fake), get("hinge").g_loss(fake)

    d_value, g_value = both(tf.constant(REAL), tf.constant(FAKE))
    _close(d_value, float(get("hinge").d_loss(REAL, FAKE)))
    _close(g_value, float(-np.mean(FAKE)))


# --------------------------------------------------------------------------- gradient penalty


def _linear_critic(scale: float, shape: tuple[int, ...] = (4, 4, 1), num_classes: int = 0) -> keras.Model:
    """A linear critic whose input gradient is a vector of norm `scale` everywhere."""
    image = keras.Input(shape=shape)
    dense = layers.Dense(units=1)
    score = dense(layers.Flatten()(image))
    size = int(np.prod(shape))
    kernel = np.random.default_rng(1).standard_normal((size, 1)).astype("float32")
    dense.set_weights([scale * kernel / np.linalg.norm(kernel), np.array([0.3], "float32")])
    if not num_classes:
        return keras.Model(inputs=image, outputs=score)
    label = keras.Input(shape=(1,), dtype="int32")
    offset = layers.Flatten()(layers.Embedding(input_dim=num_classes, output_dim=1)(label))
    return keras.Model(inputs=[image, label], outputs=layers.Add()([score, offset]))


def _batch(seed: int, shape: tuple[int, ...] = (6, 4, 4, 1)) -> np.ndarray:
    """Random images in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype("float32")


def _alpha(n: int = 6) -> np.ndarray:
    """Interpolation weights, one per image, in [0, 1)."""
    return np.random.default_rng(2).uniform(0.0, 1.0, n).astype("float32")


def test_gradient_penalty_is_zero_for_unit_gradient_critic():
    value = gradient_penalty(_linear_critic(1.0), _batch(0), _batch(1), _alpha())
    assert value.dtype == tf.float32 and value.shape == ()
    assert float(value) == pytest.approx(0.0, abs=1e-6)


def test_gradient_penalty_for_scaled_critic():
    # ||grad|| = 3 everywhere, so the penalty is (3 - 1)^2 = 4 whatever the interpolates.
    value = float(gradient_penalty(_linear_critic(3.0), _batch(0), _batch(1), _alpha()))
    assert value > 0
    assert value == pytest.approx(4.0, rel=1e-5)


def test_gradient_penalty_passes_labels_to_conditional_critic():
    critic = _linear_critic(2.0, num_classes=5)
    labels = np.array([0, 1, 2, 3, 4, 0], dtype="int32")
    assert float(gradient_penalty(critic, _batch(0), _batch(1), _alpha(), labels=labels)) == pytest.approx(1.0, rel=1e-5)


def test_gradient_penalty_on_flat_inputs_inside_tf_function():
    critic = _linear_critic(0.5, shape=(3,))
    penalty = tf.function(lambda real, fake: gradient_penalty(critic, real, fake, _alpha(5)))
    value = penalty(tf.constant(_batch(0, (5, 3))), tf.constant(_batch(1, (5, 3))))
    assert float(value) == pytest.approx(0.25, rel=1e-5)


def test_gradient_penalty_is_taken_at_the_interpolates_the_weights_give():
    """Each image's weight picks its interpolate: a critic whose gradient norm is its input's first pixel shows where."""
    image = keras.Input(shape=(2,))
    critic = keras.Model(image, 0.5 * keras.ops.square(image[:, :1]))  # d/dx0 = x0, so ||grad|| = |x0|
    real, fake = np.zeros((3, 2), "float32"), np.full((3, 2), 2.0, "float32")
    alpha = np.array([0.5, 1.0, 0.0], "float32")  # x0 = 1, 2, 0: squared distances to 1 of 0, 1, 1
    assert float(gradient_penalty(critic, real, fake, alpha)) == pytest.approx(2 / 3, rel=1e-5)


def test_gradient_penalty_is_differentiable_wrt_critic_weights():
    critic = _linear_critic(3.0)
    with tf.GradientTape() as tape:
        value = gradient_penalty(critic, _batch(0), _batch(1), _alpha())
    grads = tape.gradient(value, critic.trainable_variables)
    assert grads[0] is not None and float(tf.norm(grads[0])) > 0


# --------------------------------------------------------------------------- D(x)


@pytest.mark.parametrize("loss", ["bce", "minimax"])
def test_d_probabilities_are_mean_sigmoid_in_unit_interval(loss):
    extreme = np.array([[-80.0], [80.0], [0.0], [3.0]], dtype="float32")
    for logits in (REAL, FAKE, extreme):
        value = float(get(loss).probability(logits))
        assert 0.0 <= value <= 1.0
        assert value == pytest.approx(float(np.mean(_sigmoid(logits))), rel=1e-5)


@pytest.mark.parametrize("loss", ["lsgan", "hinge", "wgan-gp"])
def test_d_probabilities_are_raw_mean_scores_for_other_losses(loss):
    _close(get(loss).probability(REAL), float(np.mean(REAL)))
