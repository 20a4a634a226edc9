"""Dropout whose masks follow the run's RNG per row of the global batch, so several replicas give one device's step.

The loop draws a family's random tensors for the global batch, one row per image, and each replica takes the
rows of its images (`GanFamily.draws`). A dropout mask is a draw whose shape only the layer knows, so the family
draws a `dropout_draw` instead: each row's index in the global batch and a seed for the step from the run's RNG.
Inside `with_row_dropout`, each `RowDropout` layer draws the noise of the whole global batch statelessly from that
seed (folded with the call's and the layer's salt) and keeps its replica's rows: a row's mask is the same whichever
replica holds it. Elsewhere (inference, or a call outside `with_row_dropout`) it is Keras' own Dropout.
The cost: each replica, and each of D's `d_steps` updates, draws the noise of the whole step's rows (static shapes,
so XLA compiles it), uniform numbers that are cheap next to the convolutions they mask.

Training networks are built with `RowDropout`; exported ones with Keras' `Dropout` (`dropout_layer(..., rows=False)`),
so exported files name only Keras layers. Neither has weights, so the checkpoints of both are the same.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

from gan_core.lazy_tf import keras, layers, tf

REAL, FAKE, INTERPOLATES = 0, 1, 2  # the calls of a discriminator in one step, each with its own masks
_ACTIVE = threading.local()  # MirroredStrategy traces each replica's step in its own thread


@functools.cache
def _row_dropout_class() -> type:
    class RowDropout(keras.layers.Dropout):
        """Keras' Dropout; inside `with_row_dropout`, its training mask comes from the step's per-row draw (see the module)."""

        def __init__(self, rate: float, salt: int = 0, **kwargs: Any) -> None:
            super().__init__(rate, **kwargs)
            self.salt = salt

        def call(self, inputs, training=False):
            active = getattr(_ACTIVE, "rows", None)
            if not training or active is None:
                return super().call(inputs, training=training)
            draw, total, call = active
            seed = tf.random.experimental.stateless_fold_in(tf.random.experimental.stateless_fold_in(draw[0, 1:], call), self.salt)
            noise = tf.random.stateless_uniform([total, *inputs.shape[1:]], seed)
            keep = tf.gather(noise, draw[:, 0]) >= self.rate
            return tf.where(keep, inputs / tf.cast(1.0 - self.rate, inputs.dtype), tf.zeros_like(inputs))

        def get_config(self) -> dict:
            return {**super().get_config(), "salt": self.salt}

    return RowDropout


def dropout_layer(rate: float, name: str, salt: int, rows: bool = True) -> keras.layers.Layer:
    """A dropout layer: `RowDropout` (training networks; `salt` tells a network's dropout layers apart) or Keras' Dropout (exports)."""
    if rows:
        return _row_dropout_class()(rate, salt=salt, name=name)
    return layers.Dropout(rate=rate, name=name)


def dropout_draw(rng: tf.random.Generator, rows: int) -> tf.Tensor:
    """The draw a step's `RowDropout` masks come from: per row, its index in the global batch and the step's seed (int64 [rows, 3])."""
    seed = rng.uniform_full_int([2], dtype=tf.int64)
    return tf.concat([tf.range(rows, dtype=tf.int64)[:, None], tf.tile(seed[None], [rows, 1])], axis=1)


def with_row_dropout(network: Callable, draw: tf.Tensor | None, total: int, call: int) -> Callable:
    """`network` as a function whose `RowDropout` masks come from `draw` (this replica's rows of a `dropout_draw` of `total` rows).

    `call` tells apart the calls of one step (real, fake, interpolated images) so each gets its own masks; with no
    draw (dropout off) the network is returned as it is.
    """
    if draw is None:
        return network

    def run(inputs, training=True):
        previous = getattr(_ACTIVE, "rows", None)
        _ACTIVE.rows = (draw, total, call)
        try:
            return network(inputs, training=training)
        finally:
            _ACTIVE.rows = previous

    return run
