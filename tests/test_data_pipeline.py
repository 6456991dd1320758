"""make_pipeline: batching, scaling, labels, seeded shuffling and augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from cnnzoo.data import make_pipeline


@pytest.fixture
def arrays():
    x = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 4, 4, 1), np.uint8)
    return x, np.arange(10, dtype=np.int64) % 3


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def pipe(arrays, **kw):
    args = dict(batch_size=4, num_classes=3, one_hot=False, scale=None, shuffle=False, seed=0) | kw
    return make_pipeline(*arrays, **args)


def test_batches_keep_order_and_cast_to_float(arrays):
    out = batches(pipe(arrays))
    assert [len(y) for _, y in out] == [4, 4, 2]
    assert out[0][0].dtype == np.float32 and out[0][0].shape == (4, 4, 4, 1)
    assert np.concatenate([x[:, 0, 0, 0] for x, _ in out]).tolist() == list(range(10))  # every example, in order
    assert np.concatenate([y for _, y in out]).tolist() == [i % 3 for i in range(10)]


def test_scale_and_one_hot(arrays):
    x, y = batches(pipe(arrays, scale=0.5, one_hot=True))[0]
    assert x[:, 0, 0, 0].tolist() == [0, 0.5, 1, 1.5]
    assert y.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]


def _epochs(ds, count, steps=3):
    """The example order of the first `count` epochs of an endless training stream."""
    values = [x[:, 0, 0, 0] for x, _ in batches(ds.take(count * steps))]
    return [np.concatenate(values[i * steps:(i + 1) * steps]).tolist() for i in range(count)]


def test_shuffle_is_seeded_and_reshuffles_each_epoch(arrays):
    epoch1, epoch2 = _epochs(pipe(arrays, shuffle=True, seed=3), 2)
    assert sorted(epoch1) == sorted(epoch2) == list(range(10))
    assert epoch1 != epoch2
    assert [epoch1, epoch2] == _epochs(pipe(arrays, shuffle=True, seed=3), 2)
    assert epoch1 != _epochs(pipe(arrays, shuffle=True, seed=4), 1)[0]


def test_each_epoch_keeps_its_batch_sizes(arrays):
    sizes = [len(y) for _, y in batches(pipe(arrays, shuffle=True, seed=0).take(6))]
    assert sizes == [4, 4, 2, 4, 4, 2]


def test_a_stream_started_at_epoch_k_replays_epoch_k(arrays):
    """What makes --resume exact: the order of an epoch depends on (seed, epoch) only."""
    uninterrupted = _epochs(pipe(arrays, shuffle=True, seed=5), 4)
    resumed = _epochs(pipe(arrays, shuffle=True, seed=5, first_epoch=2), 2)
    assert resumed == uninterrupted[2:]


def test_labels_follow_their_images_through_the_shuffle(arrays):
    for x, y in batches(pipe(arrays, shuffle=True, seed=1).take(6)):
        assert np.array_equal(x[:, 0, 0, 0].astype(int) % 3, y)


def test_augment_runs_in_training_mode(arrays):
    import keras

    class Shift(keras.layers.Layer):
        def call(self, inputs, training=None):
            return inputs + (100.0 if training else 0.0)

    x, _ = batches(pipe(arrays, augment=Shift()))[0]
    assert x[:, 0, 0, 0].tolist() == [100, 101, 102, 103]


def test_stock_keras_augmentation_layers_work(arrays):
    import keras

    augment = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomTranslation(0.1, 0.1)])
    x, y = batches(pipe(arrays, scale=1 / 255, augment=augment))[0]
    assert x.shape == (4, 4, 4, 1) and y.shape == (4,)


def test_float_series_pass_through_unscaled():
    x = np.linspace(-1, 1, 20, dtype=np.float32).reshape(2, 10, 1)
    out, _ = batches(make_pipeline(x, np.array([0, 1]), batch_size=2, num_classes=2, one_hot=False, scale=None,
                                   shuffle=False, seed=0))[0]
    assert np.array_equal(out, x)
