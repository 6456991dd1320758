"""tf.data pipelines over uint8/float32 arrays: shuffle, batch, scale, augment, labels, prefetch.

The arrays become two tensors once; each batch is a gather of indices, so no per-example
elements and no shuffle buffer exist. Streamed images (data/streams.py) are decoded per element in
the same order instead (data/stream_pipeline.py). The training order of epoch ``e`` is a stateless
permutation seeded by ``(seed, e)``: a run resumed at epoch ``e`` sees exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnzoo.data.order import epoch_order
from cnnzoo.data.stream_pipeline import stream_batches
from cnnzoo.data.streams import is_stream
from cnnzoo.tensorflow_import import import_tensorflow


def make_pipeline(x: np.ndarray, y: np.ndarray, *, batch_size: int, num_classes: int, one_hot: bool,
                  scale: float | None, shuffle: bool, seed: int, augment: Any = None, first_epoch: int = 0,
                  drop_remainder: bool = False, mix: Any = None, shard: tuple[int, int, int] | None = None,
                  crop: Any = None):
    """Batches of (float32 inputs, labels); the arrays stay in their own dtype until a batch is cut.

    Without ``shuffle`` the dataset is one pass in order. With it, the dataset is endless: epoch
    after epoch from ``first_epoch``, each ``ceil(len(x) / batch_size)`` batches long (give that
    number to ``fit`` as ``steps_per_epoch``). ``drop_remainder`` drops each epoch's last partial
    batch instead (``len(x) // batch_size`` batches), so every batch splits evenly over replicas.
    ``mix`` (data/mixing.py) mixes the augmented images and their one-hot labels. ``shard`` (streams under
    multi_worker): this worker's per-replica batches only (data/stream_pipeline.py).
    """
    tf = import_tensorflow()
    order = dict(batch_size=batch_size, shuffle=shuffle, seed=seed, first_epoch=first_epoch,
                 drop_remainder=drop_remainder)
    if is_stream(x):
        batches, fetch = stream_batches(x, y, **order, shard=shard, crop=crop)
    else:
        batches, fetch = _array_batches(x, y, **order)

    def prepare(*batch):
        images, targets = fetch(*batch)
        images = tf.cast(images, tf.float32)
        if scale is not None:
            images = images * scale
        if augment is not None:
            images = augment(images, training=True)
        targets = tf.one_hot(targets, num_classes) if one_hot else targets
        return mix(images, targets) if mix is not None else (images, targets)

    return batches.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _array_batches(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool, seed: int, first_epoch: int,
                   drop_remainder: bool):
    """Batches of indices, and how a batch of them becomes (images, targets): a gather from the tensors."""
    tf = import_tensorflow()
    features, labels = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    if shuffle:
        def epoch_batches(epoch):
            order = epoch_order(len(x), seed, epoch)
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder)
        indices = tf.data.Dataset.counter(first_epoch, dtype=tf.int64).flat_map(epoch_batches)
    else:
        indices = tf.data.Dataset.range(len(x)).batch(batch_size)
    return indices, lambda batch: (tf.gather(features, batch), tf.gather(labels, batch))
