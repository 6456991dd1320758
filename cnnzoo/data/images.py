"""Image shapes, parallel decode+resize with Pillow, and fitting uint8 arrays to an input shape."""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

import numpy as np

from cnnzoo.data.progress import progress_bar
from cnnzoo.errors import DataError
from cnnzoo.host_memory import check_allocation
from cnnzoo.tensorflow_import import import_tensorflow

MAX_PAD = 8
# A decoded image may hold at most this many pixels (PIL's own bomb limit is 89 M); images being
# decoded at once hold at most DECODE_BUDGET pixels together, whatever the number of cores.
MAX_IMAGE_PIXELS = 40_000_000
# the formats cnnzoo documents; Pillow would also open EPS (through Ghostscript, an external program), PSD,
# ICO and dozens more by content, whatever the file is named
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF")
DECODE_BUDGET = 2 * MAX_IMAGE_PIXELS


def image_shape(input_shape: Sequence[int], dataset: str) -> tuple[int, int, int]:
    """(H, W, C) from the model input, or a DataError saying what an image dataset needs."""
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) < 1:
        raise DataError(f"the {dataset} dataset feeds images, so the model input must be [height, width, "
                        f"channels] with 1 or 3 channels, but it is {list(shape)}; set e.g. "
                        f"`--set input.shape=[224,224,3]` (or [28,28,1] for MNIST).")
    return shape


def decode_images(items: Iterable[tuple[int, str, bytes | str]], total: int, shape: tuple[int, int, int], *,
                  progress: bool, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize images into slots 0..total-1 of one uint8 (total, H, W, C) array, on every core.

    `items` yields (slot, name for errors, encoded bytes or a file path) and may be lazy: images are
    decoded while it is still being read (from a .tgz, say). Returns the array and which slots were
    filled. Pillow releases the GIL while it decodes, so the threads run in parallel.
    """
    _check_fits(total, shape, f"decoding {total:,} images of {label}")
    out = np.zeros((total, *shape), np.uint8)
    filled = np.zeros(total, bool)
    failed: list[str] = []
    budget = PixelBudget(DECODE_BUDGET)

    def decode(slot: int, name: str, source: bytes | str) -> None:
        image = decode_image(source, shape, budget)
        if image is None:
            failed.append(name)
        else:
            out[slot], filled[slot] = image, True

    with progress_bar(f"decoding {label}", total, enabled=progress) as advance, \
            ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        pending = [pool.submit(decode, *item) for item in items]
        for future in pending:
            future.result()
            advance(1)
    if failed:
        raise _undecodable(label, sorted(failed))
    return out, filled


class PixelBudget:
    """Bounds the pixels of the images being decoded at once: each decode takes its share first."""

    def __init__(self, pixels: int):
        self.free = pixels
        self.total = pixels
        self.changed = threading.Condition()

    @contextlib.contextmanager
    def take(self, pixels: int):
        pixels = min(pixels, self.total)
        with self.changed:
            self.changed.wait_for(lambda: self.free >= pixels)
            self.free -= pixels
        try:
            yield
        finally:
            with self.changed:
                self.free += pixels
                self.changed.notify_all()


def decode_image(item: bytes | str, shape: tuple[int, int, int], budget: PixelBudget | None = None) -> np.ndarray | None:
    """One image as uint8 (H, W, C), or None when it is not a readable image or has more than
    MAX_IMAGE_PIXELS pixels. A JPEG is decoded straight at the smallest DCT scale (1/8..1) that still
    covers the target size."""
    from PIL import Image

    _strict_pillow()
    height, width, channels = shape
    try:
        with Image.open(item if isinstance(item, str) else io.BytesIO(item), formats=IMAGE_FORMATS) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                return None
            with budget.take(image.width * image.height) if budget else contextlib.nullcontext():
                image.draft("RGB", (width, height))  # no-op for other formats
                image = image.convert("L" if channels == 1 else "RGB")
                image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None)
                pixels = np.asarray(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
    return pixels.reshape(shape)


def decode_crop(item: bytes | str, shape: tuple[int, int, int], rng: np.random.Generator, crop,
                budget: PixelBudget | None = None) -> np.ndarray | None:
    """A random-resized crop of one image as uint8 (H, W, C), or None as `decode_image`: the box (of
    `crop.scale_*` of the area, width/height in `crop.ratio_*`) is drawn from `rng` on the original size, a
    JPEG is decoded at the smallest DCT scale that still covers the box at the target size, and the box is
    cut and resized in one step."""
    from PIL import Image

    _strict_pillow()
    height, width, channels = shape
    try:
        with Image.open(item if isinstance(item, str) else io.BytesIO(item), formats=IMAGE_FORMATS) as image:
            full_w, full_h = image.size
            if full_w * full_h > MAX_IMAGE_PIXELS:
                return None
            left, top, box_w, box_h = crop_box(full_w, full_h, rng, crop)
            with budget.take(full_w * full_h) if budget else contextlib.nullcontext():
                image.draft("RGB", (math.ceil(width * full_w / box_w), math.ceil(height * full_h / box_h)))
                sx, sy = image.width / full_w, image.height / full_h
                image = image.convert("L" if channels == 1 else "RGB")
                image = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=None,
                                     box=(left * sx, top * sy, (left + box_w) * sx, (top + box_h) * sy))
                pixels = np.asarray(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
    return pixels.reshape(shape)


def crop_box(width: int, height: int, rng: np.random.Generator, crop) -> tuple[int, int, int, int]:
    """(left, top, width, height) of a random-resized crop: ten draws of area and log-uniform aspect ratio
    (the Inception / torchvision recipe), else the largest centred box within the ratio range."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(crop.scale_min, crop.scale_max)
        ratio = math.exp(rng.uniform(math.log(crop.ratio_min), math.log(crop.ratio_max)))
        box_w, box_h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < box_w <= width and 0 < box_h <= height:
            return int(rng.integers(0, width - box_w + 1)), int(rng.integers(0, height - box_h + 1)), box_w, box_h
    ratio = min(max(width / height, crop.ratio_min), crop.ratio_max)
    box_w, box_h = (width, round(width / ratio)) if width / height < ratio else (round(height * ratio), height)
    box_w, box_h = min(max(box_w, 1), width), min(max(box_h, 1), height)
    return (width - box_w) // 2, (height - box_h) // 2, box_w, box_h


def is_decodable(data: bytes) -> bool:
    """Whether `data` decodes whole as one of IMAGE_FORMATS within MAX_IMAGE_PIXELS (decoded, not only sniffed)."""
    from PIL import Image

    _strict_pillow()
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                return False
            image.load()
        return True
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return False


@functools.cache
def _strict_pillow() -> None:
    """Pillow's decompression-bomb warning becomes an error, at our lower pixel limit."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _undecodable(label: str, bad: list[str]) -> DataError:
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    return DataError(f"{len(bad)} image(s) in {label} could not be decoded as JPEG, PNG, BMP or GIF: {shown}. "
                     f"The file(s) are truncated, not images, or larger than {MAX_IMAGE_PIXELS // 1_000_000} "
                     f"megapixels; replace or delete them.")


def fit_images(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 (N,h,w[,c]) -> (N,H,W,C): zero-pad centred when up to MAX_PAD px larger, else resize."""
    if x.ndim == 3:
        x = x[..., None]
    height, width, channels = shape
    h, w = x.shape[1:3]
    if (h, w, x.shape[3]) != shape:
        _check_fits(len(x), shape, f"resizing {len(x):,} images from {h}x{w}x{x.shape[3]} to the input size")
    if (h, w) != (height, width):
        small_pad = 0 <= height - h <= MAX_PAD and 0 <= width - w <= MAX_PAD
        x = _pad(x, height, width) if small_pad else _resize(x, height, width)
    if x.shape[3] != channels:
        x = np.repeat(x, 3, axis=3) if channels == 3 else _grey(x)
    return x


def _check_fits(count: int, shape: tuple[int, int, int], what: str) -> None:
    """Refuse an array of `count` uint8 images of `shape` that cannot fit, before it is allocated."""
    height, width, channels = shape
    check_allocation(count * height * width * channels, f"{what} ({height}x{width}x{channels})")


def _pad(x: np.ndarray, height: int, width: int) -> np.ndarray:
    top, left = (height - x.shape[1]) // 2, (width - x.shape[2]) // 2
    out = np.zeros((len(x), height, width, x.shape[3]), np.uint8)
    out[:, top:top + x.shape[1], left:left + x.shape[2]] = x
    return out


def _resize(x: np.ndarray, height: int, width: int) -> np.ndarray:
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
