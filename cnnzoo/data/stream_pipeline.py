"""tf.data over streamed images (data/streams.py): decode in parallel, in a seeded order, batch.

Files (random access) follow the epoch permutation of in-memory training, position for position, so a
streamed run sees the batches an in-memory run sees, and a resumed run those of an uninterrupted one.
TFRecord shards (read in order) take a seeded shard order and a bounded seeded shuffle window per epoch
instead (the window shuffled by a stateless permutation): still the same batches for the same
(seed, epoch), resumed or not.

Decoding keeps the order (`deterministic=True`) while running on every core. A file skipped under
`data.bad_files: skip` shortens its epoch by one image; an epoch that would come out one batch short
starts over from its first batch, so every epoch has the steps `fit` counts and epochs never shift. A
split left with fewer good images than one batch stops the run: its epochs would be empty, and an endless
series of empty epochs never yields a batch.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings

from cnnzoo.data.order import epoch_order
from cnnzoo.data.record_reader import shard_records
from cnnzoo.data.streams import FileStream, ImageStream, RecordStream, bad_files_of
from cnnzoo.errors import DataError
from cnnzoo.tensorflow_import import import_tensorflow

SHUFFLE_WINDOW = 8_192  # TFRecord elements (encoded images) held for the shuffle: bounded, whatever the data
DECODE_PARALLELISM = 16  # images being decoded at once, at most (also bounded in pixels by the PixelBudget)
PIPELINES_MADE = 0  # streamed pipelines built in this process (the CLI frees them before exiting: cli/common.py)


def stream_batches(x: ImageStream, y, *, batch_size: int, shuffle: bool, seed: int, first_epoch: int,
                   drop_remainder: bool, shard: tuple[int, int, int] | None = None, crop=None):
    """Batches of (uint8 images, targets), and the identity as the fetch make_pipeline applies.

    `shard` (worker index, workers, replicas on this worker), for multi_worker training: this worker decodes
    only its slice of each global batch (the slice tf.data's DATA auto-sharding would keep) and yields it as
    per-replica batches, so no worker decodes the images another one trains on. `crop` (a CropSpec, training
    only): each image a random-resized crop seeded by (seed, epoch, image), cut while decoding."""
    global PIPELINES_MADE
    PIPELINES_MADE += 1
    tf = import_tensorflow()
    steps = len(x) // batch_size if drop_remainder else math.ceil(len(x) / batch_size)
    labels = tf.convert_to_tensor(y)
    load = functools.partial(_load_cropped, x, crop, seed) if crop is not None and shuffle else x.load
    load = functools.partial(_load_enough, x, load, batch_size if drop_remainder else 1)
    if shard is not None:
        index, workers, local = shard
        share = batch_size // workers
        batch_size, steps = share // local, steps * local

    def one_pass(epoch=None):
        references = (record_references(x, labels, seed, epoch) if isinstance(x, RecordStream)
                      else file_references(x, labels, seed, epoch))
        if crop is not None and shuffle and epoch is not None:  # the crop's random numbers are the epoch's
            references = references.map(lambda arguments, target: ((*arguments, epoch), target))
        if shard is not None and epoch is not None:
            references = references.batch(share * workers, drop_remainder=True).map(
                lambda arguments, targets: (tuple(a[index * share:(index + 1) * share] for a in arguments),
                                            targets[index * share:(index + 1) * share])).unbatch()
        good = decode_map(x, references, load).filter(_decoded).map(_without_flag)
        batches = good.batch(batch_size, drop_remainder=drop_remainder)
        return batches.repeat().take(steps) if epoch is not None else batches

    if shuffle:
        batches = tf.data.Dataset.counter(first_epoch, dtype=tf.int64).flat_map(one_pass)
    else:
        batches = one_pass() if shard is not None else _counted(one_pass(), steps, x.bad.policy)
    return batches, lambda images, targets: (images, targets)


def _counted(batches, steps: int, policy: str):
    """An evaluation pass that says its length, so Keras does not warn "Your input ran out of data" at its
    end. Under `skip` the length is known only once the pass is over: that warning is silenced instead."""
    if policy == "fail":
        return batches.apply(import_tensorflow().data.experimental.assert_cardinality(steps))
    warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
    return batches


def _load_enough(x: ImageStream, load, needed: int, *arguments):
    """load(*arguments), stopping the run once fewer than `needed` images of the split can still decode."""
    image, ok = load(*arguments)
    if not ok and len(x) - len(x.failed) < needed:
        left = "none" if needed == 1 else f"fewer than {needed:,} (one batch)"
        x.bad.stop(f"{len(x.failed):,} of the {len(x):,} images of this split could not be decoded and were "
                   f"skipped (data.bad_files: skip), which leaves {left} to train or evaluate on: check the "
                   f"data (the first ones skipped: {', '.join(sorted(x.failed)[:3])}).")
    return image, ok


def _load_cropped(x: ImageStream, crop, seed: int, *arguments):
    """x.load with a random-resized crop: the last argument is the epoch."""
    *reference, epoch = arguments
    return x.load(*reference, epoch=epoch, crop=crop, seed=seed)


def _decoded(image, target, ok):
    return ok


def _without_flag(image, target, ok):
    return image, target


def file_references(x: FileStream, labels, seed: int, epoch):
    """((position,), target) per file: the epoch's permutation of positions, or all in order."""
    tf = import_tensorflow()
    positions = epoch_order(len(x), seed, epoch) if epoch is not None else tf.range(len(x), dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices(positions).map(lambda p: ((p,), tf.gather(labels, p)))


def record_references(x: RecordStream, labels, seed: int, epoch):
    """((encoded, record number), target) per record of the split: in training, the shards in a seeded order,
    read a few at a time and mixed by a bounded seeded shuffle window; in evaluation, every record in order.
    A record's target is the split's, found by its record number among the split's (sorted) records."""
    tf = import_tensorflow()
    records = shard_records(x, seed, epoch)
    if epoch is not None:
        records = records.batch(SHUFFLE_WINDOW).enumerate().flat_map(
            lambda window, batch: _shuffled_window(batch, seed, epoch, window))
    ids = tf.constant(x.ids)

    def target(record, encoded):
        position = tf.searchsorted(ids, tf.reshape(record, [1]), out_type=tf.int64)[0]
        return (encoded, record), tf.gather(labels, position)

    return records.map(target)


def _shuffled_window(batch, seed: int, epoch, window):
    """One window of records in a stateless order seeded by (seed, epoch, window): a bounded shuffle that
    depends on nothing but those numbers (tf.data's own shuffle draws from the global seed's state). The
    first window takes the in-memory epoch permutation's seed, so a split of one shard that fits in one
    window trains exactly as it would in memory."""
    tf = import_tensorflow()
    order = tf.random.experimental.stateless_shuffle(
        tf.range(tf.shape(batch[0])[0], dtype=tf.int64),
        seed=tf.stack([tf.constant(seed, tf.int64), epoch + window * 1_000_003]))
    return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(part, order) for part in batch))


def decode_map(x: ImageStream, elements, load):
    """`elements` of (arguments, target) mapped through the Python decoder `load(*arguments) -> (image, ok)`,
    in parallel, in order."""
    tf = import_tensorflow()

    def decode(arguments, target):
        image, ok = tf.numpy_function(load, list(arguments), [tf.uint8, tf.bool], stateful=False)
        image.set_shape(x.image_shape)
        ok.set_shape(())
        return image, target, ok

    return elements.map(decode, num_parallel_calls=DECODE_PARALLELISM, deterministic=True)


@contextlib.contextmanager
def stream_failures(splits):
    """A file that stopped the stream under `data.bad_files: fail` becomes its DataError (TensorFlow wraps
    the decoder's exception in an op error with its own traceback text)."""
    bad = bad_files_of(splits)
    try:
        yield
    except Exception:
        if bad is not None and bad.fatal:
            raise DataError(bad.fatal) from None
        raise


def write_skipped(bad, path) -> int:
    """skipped_files.csv (file, reason) of the files `data.bad_files: skip` left out; their number."""
    if bad is None or not bad.skipped:
        return 0
    import csv
    import io

    from cnnzoo.atomic import atomic_write_text
    from cnnzoo.terminal import csv_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "reason"])
    for name, reason in sorted(bad.skipped.items()):
        writer.writerow([csv_text(name).encode("utf-8", "backslashreplace").decode(), reason])
    atomic_write_text(path, buffer.getvalue())
    return len(bad.skipped)
