"""tf.data pipelines over uint8/float32 arrays: shuffle, batch, scale, augment, labels, prefetch.

The arrays become two tensors once; each batch is a gather of indices, so no per-example
elements and no shuffle buffer exist. The training order of epoch ``e`` is a stateless
permutation seeded by ``(seed, e)``: a run resumed at epoch ``e`` sees exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnzoo.tensorflow_import import import_tensorflow


def make_pipeline(x: np.ndarray, y: np.ndarray, *, batch_size: int, num_classes: int, one_hot: bool,
                  scale: float | None, shuffle: bool, seed: int, augment: Any = None, first_epoch: int = 0,
                  drop_remainder: bool = False, mix: Any = None):
    """Batches of (float32 inputs, labels); the arrays stay in their own dtype until a batch is cut.

    Without ``shuffle`` the dataset is one pass in order. With it, the dataset is endless: epoch
    after epoch from ``first_epoch``, each ``ceil(len(x) / batch_size)`` batches long (give that
    number to ``fit`` as ``steps_per_epoch``). ``drop_remainder`` drops each epoch's last partial
    batch instead (``len(x) // batch_size`` batches), so every batch splits evenly over replicas.
    ``mix`` (data/mixing.py) mixes the augmented images and their one-hot labels.
    """
    tf = import_tensorflow()
    features, labels = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    if shuffle:
        def epoch_batches(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(len(x), dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder)
        indices = tf.data.Dataset.counter(first_epoch, dtype=tf.int64).flat_map(epoch_batches)
    else:
        indices = tf.data.Dataset.range(len(x)).batch(batch_size)

    def prepare(batch):
        images = tf.cast(tf.gather(features, batch), tf.float32)
        if scale is not None:
            images = images * scale
        if augment is not None:
            images = augment(images, training=True)
        targets = tf.gather(labels, batch)
        targets = tf.one_hot(targets, num_classes) if one_hot else targets
        return mix(images, targets) if mix is not None else (images, targets)

    return indices.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
