"""The seeded training order of an epoch, shared by arrays, files and shards."""

from __future__ import annotations

from cnnzoo.tensorflow_import import import_tensorflow


def epoch_order(count: int, seed: int, epoch):
    """The training order of one epoch: a stateless permutation of 0..count-1 seeded by (seed, epoch)."""
    tf = import_tensorflow()
    return tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64),
                                                    seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
