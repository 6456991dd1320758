"""tf.data pipelines over uint8/float32 arrays: shuffle, batch, scale, augment, labels, prefetch."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnzoo.runtime import import_tensorflow


def make_pipeline(x: np.ndarray, y: np.ndarray, *, batch_size: int, num_classes: int, one_hot: bool,
                  scale: float | None, shuffle: bool, seed: int, augment: Any = None):
    """Batches of (float32 inputs, labels); the arrays stay in their own dtype until a batch is cut."""
    tf = import_tensorflow()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)

    def prepare(images, labels):
        images = tf.cast(images, tf.float32)
        if scale is not None:
            images = images * scale
        if augment is not None:
            images = augment(images, training=True)
        labels = tf.one_hot(labels, num_classes) if one_hot else labels
        return images, labels

    ds = ds.batch(batch_size).map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
