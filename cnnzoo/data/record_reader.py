"""Reading the records of a RecordStream's split (data/streams.py) from its TFRecord shards, in a seeded
shard order."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnzoo.data.order import epoch_order
from cnnzoo.tensorflow_import import import_tensorflow

READ_SHARDS = 4  # shards read at once in training (mixing their records before the shuffle window)
PARSE_BATCH = 256


def read_records(x: Any):
    """(encoded image bytes, record number) of the split's records in order, as numpy values."""
    for record, encoded in shard_records(x, 0, None).as_numpy_iterator():
        yield encoded, record


def shard_records(x: Any, seed: int, epoch):
    """(record number, encoded image) of the records in x.ids: a missing image feature reads as empty bytes
    (a bad file). Labels are not read here: they are the split's targets, looked up by record number, so
    a record's label feature never disagrees with the labels the splits were drawn from."""
    tf = import_tensorflow()
    member = np.zeros(int(x.counts.sum()), bool)
    member[x.ids] = True
    member, starts, files = tf.constant(member), tf.constant(x.starts), tf.constant(x.shards)
    image_key = x.keys[0]
    features = {image_key: tf.io.FixedLenFeature([], tf.string, default_value="")}
    order = (epoch_order(len(x.shards), seed, epoch) if epoch is not None
             else tf.range(len(x.shards), dtype=tf.int64))

    def shard_records(shard):
        numbered = tf.data.TFRecordDataset(tf.gather(files, shard)).enumerate()
        return numbered.map(lambda i, record: (tf.gather(starts, shard) + i, record))

    def parse(numbers, records):  # PARSE_BATCH records at a time: one vectorised parse instead of one op each
        return numbers, tf.io.parse_example(records, features)[image_key]

    cycle = min(READ_SHARDS, len(x.shards)) if epoch is not None else 1  # in order when evaluating
    numbered = tf.data.Dataset.from_tensor_slices(order).interleave(
        shard_records, cycle_length=cycle, block_length=1, num_parallel_calls=cycle, deterministic=True)
    kept = numbered.filter(lambda number, record: tf.gather(member, number)).batch(PARSE_BATCH)
    return kept.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
