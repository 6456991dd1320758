"""Image shapes, parallel decode+resize with TensorFlow, and fitting uint8 arrays to an input shape."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cnnzoo.data.progress import progress_bar
from cnnzoo.errors import DataError

BATCH = 32
MAX_PAD = 8


def image_shape(input_shape: Sequence[int], dataset: str) -> tuple[int, int, int]:
    """(H, W, C) from the model input, or a DataError saying what an image dataset needs."""
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) < 1:
        raise DataError(f"the {dataset} dataset feeds images, so the model input must be [height, width, "
                        f"channels] with 1 or 3 channels, but it is {list(shape)}; set e.g. "
                        f"`--set input.shape=[224,224,3]` (or [28,28,1] for MNIST).")
    return shape


def decode_images(items: Sequence[bytes] | Sequence[str], names: Sequence[str], shape: tuple[int, int, int], *,
                  from_files: bool, progress: bool, label: str) -> np.ndarray:
    """Decode and resize every image once, in parallel; uint8 (N, H, W, C). Names are for errors."""
    from cnnzoo.runtime import import_tensorflow

    tf = import_tensorflow()
    out = np.zeros((len(items), *shape), np.uint8)
    done = np.zeros(len(items), bool)
    ds = _decode_dataset(tf, list(items), shape, from_files)
    with progress_bar(f"decoding {label}", len(items), enabled=progress) as advance:
        for index, images in ds.as_numpy_iterator():
            out[index], done[index] = images, True
            advance(len(index))
    if not done.all():
        raise _undecodable(label, [names[i] for i in np.flatnonzero(~done)])
    return out


def _decode_dataset(tf, items: list, shape: tuple[int, int, int], from_files: bool):
    size = tf.constant(shape[:2], tf.int32)

    def decode(index, item):
        data = tf.io.read_file(item) if from_files else item
        image = tf.cond(tf.io.is_jpeg(data), lambda: _decode_jpeg(tf, data, size),
                        lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
        image = tf.image.resize(tf.ensure_shape(image, [None, None, 3]), size, antialias=True)
        if shape[2] == 1:
            image = tf.image.rgb_to_grayscale(image)
        return index, tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(items), dtype=tf.int64), tf.constant(items)))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
    return ds.batch(BATCH).prefetch(tf.data.AUTOTUNE)


def _decode_jpeg(tf, data, size):
    """Decode at the largest DCT scale (1/8..1) that still covers the target size: fast downscaling."""
    dims = tf.io.extract_jpeg_shape(data)[:2]
    fits = tf.reduce_min(dims // size)
    index = tf.reduce_sum(tf.cast(fits >= tf.constant([2, 4, 8], tf.int32), tf.int32))
    branches = [lambda r=r: tf.io.decode_jpeg(data, channels=3, ratio=r) for r in (1, 2, 4, 8)]
    return tf.switch_case(index, branches)


def _undecodable(label: str, bad: list[str]) -> DataError:
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    return DataError(f"{len(bad)} image(s) in {label} could not be decoded as JPEG, PNG, BMP or GIF: {shown}. "
                     f"The file(s) are truncated or not images; replace or delete them.")


def fit_images(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 (N,h,w[,c]) -> (N,H,W,C): zero-pad centred when up to MAX_PAD px larger, else resize."""
    if x.ndim == 3:
        x = x[..., None]
    height, width, channels = shape
    h, w = x.shape[1:3]
    if (h, w) != (height, width):
        small_pad = 0 <= height - h <= MAX_PAD and 0 <= width - w <= MAX_PAD
        x = _pad(x, height, width) if small_pad else _resize(x, height, width)
    if x.shape[3] != channels:
        x = np.repeat(x, 3, axis=3) if channels == 3 else _grey(x)
    return x


def _pad(x: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (height - x.shape[1]) // 2, (width - x.shape[2]) // 2
    out = np.zeros((len(x), height, width, x.shape[3]), np.uint8)
    out[:, top:top + x.shape[1], left:left + x.shape[2]] = x
    return out


def _resize(x: np.ndarray, height: int, width: int) -> np.ndarray:
    from cnnzoo.runtime import import_tensorflow

    tf = import_tensorflow()
    out = np.empty((len(x), height, width, x.shape[3]), np.uint8)
    for start in range(0, len(x), 4096):
        chunk = tf.image.resize(x[start:start + 4096], (height, width), antialias=True)
        out[start:start + 4096] = tf.cast(tf.clip_by_value(tf.round(chunk), 0, 255), tf.uint8).numpy()
    return out


def _grey(x: np.ndarray) -> np.ndarray:
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    out = np.empty((*x.shape[:3], 1), np.uint8)
    for start in range(0, len(x), 4096):
        out[start:start + 4096, ..., 0] = np.round(x[start:start + 4096] @ weights)
    return out
