"""Dropout masks per row of the global batch (gan_core.families.rows)."""

import numpy as np
import tensorflow as tf

from gan_core.families.rows import dropout_draw, dropout_layer, with_row_dropout


def _network(rows: bool = True):
    layer = dropout_layer(0.5, "dropout", salt=1, rows=rows)
    return lambda x, training=True: layer(x, training=training)


def test_a_rows_mask_does_not_depend_on_the_rows_beside_it():
    """Six rows at once, or rows 0-2 and 3-5 apart (two replicas' shares), get the same masks: the step's draw decides."""
    network, ones = _network(), tf.ones([6, 4, 4, 3])
    draw = dropout_draw(tf.random.Generator.from_seed(7), 6)
    whole = with_row_dropout(network, draw, 6, call=0)(ones).numpy()
    halves = np.concatenate([with_row_dropout(network, draw[i : i + 3], 6, call=0)(ones[:3]).numpy() for i in (0, 3)])
    np.testing.assert_array_equal(halves, whole)
    assert set(np.unique(whole)) == {0.0, 2.0} and 0.3 < (whole == 0).mean() < 0.7  # rate 0.5, kept values scaled by 2
    assert len({whole[i].tobytes() for i in range(6)}) == 6  # each row its own mask


def test_each_call_and_step_gets_new_masks_and_inference_none():
    network, ones = _network(), tf.ones([4, 8])
    rng = tf.random.Generator.from_seed(7)
    first, second = dropout_draw(rng, 4), dropout_draw(rng, 4)
    real = with_row_dropout(network, first, 4, call=0)(ones).numpy()
    assert not np.array_equal(with_row_dropout(network, first, 4, call=1)(ones).numpy(), real)
    assert not np.array_equal(with_row_dropout(network, second, 4, call=0)(ones).numpy(), real)
    np.testing.assert_array_equal(with_row_dropout(network, first, 4, call=0)(ones, training=False).numpy(), ones.numpy())


def test_exported_networks_use_keras_dropout_and_no_draw_leaves_the_network_as_it_is():
    assert type(dropout_layer(0.3, "d", salt=0, rows=False)).__name__ == "Dropout"
    assert type(dropout_layer(0.3, "d", salt=0)).__name__ == "RowDropout"
    network = _network()
    assert with_row_dropout(network, None, 4, call=0) is network
