"""Images read from disk batch by batch instead of held in one array: a split is a list of references
(file paths, or positions in TFRecord shards) and decoding happens in the tf.data pipeline.

A stream stands where an image array stands in DatasetSplits: `len`, `shape`, `dtype` and indexing
with an index array (what splitting, limits and `[:n]` do) work as on the array, so the splitting code
is shared and a streamed split holds exactly the samples the in-memory one holds, in the same order.
Decoding is `images.decode_image` (Pillow, the documented formats, the pixel bounds), the same code
the in-memory loaders use, so streamed and in-memory pixels are identical.

A file that cannot be decoded is handled by `data.bad_files`: `fail` stops with the file's name,
`skip` leaves it out and counts it (`BadFiles`), never silently.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnzoo.data.images import DECODE_BUDGET, MAX_IMAGE_PIXELS, PixelBudget, decode_crop, decode_image
from cnnzoo.errors import DataError

MAX_MATERIALISED = 10_000  # np.asarray(stream) decodes at most this many images (export, explain samples)


@dataclass
class BadFiles:
    """The files of a stream that could not be decoded: `fail` records the first and stops the run,
    `skip` records each and goes on. Shared by a stream and every subset of it (decode threads add)."""

    policy: str = "fail"
    skipped: dict[str, str] = field(default_factory=dict)  # name -> reason
    fatal: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        reason = (f"not decodable as JPEG, PNG, BMP or GIF (truncated, empty, not an image, or over "
                  f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels)")
        with self.lock:
            if self.policy == "skip":
                self.skipped[name] = reason
                return
            self.fatal = self.fatal or (
                f"{name}: {reason}. Replace or delete the file, or set `data.bad_files: skip` to leave "
                f"such files out (they are counted, listed in the run folder's skipped_files.csv and reported).")
        raise DataError(self.fatal)

    def stop(self, message: str) -> None:
        """Stop the stream with `message` (the DataError stream_failures turns the decoder's error into)."""
        with self.lock:
            self.fatal = self.fatal or message
        raise DataError(self.fatal)


class ImageStream:
    """Images of a split as references, decoded on demand to uint8 (H, W, C)."""

    sequential = False  # True where references can only be read in order (TFRecord shards)

    def __init__(self, ids: np.ndarray, shape: tuple[int, int, int], bad: BadFiles):
        self.ids = np.asarray(ids, np.int64)  # positions in the source's full listing, sorted
        self.image_shape = tuple(shape)
        self.bad = bad
        self.failed: set[str] = set()  # names of this split's images that did not decode (under `skip`)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.image_shape)

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __getitem__(self, index: Any) -> "ImageStream":
        picked = self.ids[index]
        if np.ndim(picked) == 0:  # one image, decoded (zeros where it cannot be)
            images = np.asarray(self._subset(np.array([picked])))
            return images[0] if len(images) else np.zeros(self.image_shape, np.uint8)
        if self.sequential and len(picked) > 1 and np.any(np.diff(picked) < 0):
            raise ValueError("TFRecord records are read in order: index a RecordStream with sorted positions")
        return self._subset(picked)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The images decoded into one array: for the few samples export and explain look at."""
        if len(self) > MAX_MATERIALISED:
            raise DataError(f"{len(self):,} streamed images would be decoded into memory at once (at most "
                            f"{MAX_MATERIALISED:,}); this command needs fewer of them.")
        images = [image for _, image in self.decoded()]
        out = np.stack(images) if images else np.zeros((0, *self.image_shape), np.uint8)
        return out.astype(dtype) if dtype is not None else out

    def decoded(self):
        """(position in this split, uint8 image) for every decodable image, in order (skips per policy)."""
        raise NotImplementedError

    def names(self) -> list[str]:
        """What each position is called in errors and skipped_files.csv."""
        raise NotImplementedError

    def kept(self) -> np.ndarray:
        """Which positions a pass over this split delivered: all but the files skipped so far."""
        if not self.bad.skipped:
            return np.ones(len(self), bool)
        return np.array([name not in self.bad.skipped for name in self.names()], bool)

    def _subset(self, ids: np.ndarray) -> "ImageStream":
        raise NotImplementedError

    def decode_or_flag(self, source: bytes | str, name: str, budget: PixelBudget,
                       cropped: tuple | None = None) -> tuple[np.ndarray, np.bool_]:
        """The image, or zeros and False when it does not decode (recorded, or raised under `fail`);
        `cropped` (crop spec, seed, epoch, id): a random-resized crop drawn from those numbers."""
        if cropped is None:
            image = decode_image(source, self.image_shape, budget)
        else:
            crop, seed, epoch, ident = cropped
            rng = np.random.default_rng([seed, int(epoch), int(ident)])
            image = decode_crop(source, self.image_shape, rng, crop, budget)
        if image is None:
            self.bad.add(name)  # raises under `fail`
            with self.bad.lock:
                self.failed.add(name)
            return np.zeros(self.image_shape, np.uint8), np.bool_(False)
        return image, np.bool_(True)


class FileStream(ImageStream):
    """Image files under `root`, by their paths relative to it."""

    def __init__(self, root: Path, paths: np.ndarray, ids: np.ndarray, shape: tuple[int, int, int], bad: BadFiles):
        super().__init__(ids, shape, bad)
        self.root = Path(root)
        self.paths = paths  # every file of the listing (bytes, relative), shared by all subsets
        self.budget = PixelBudget(DECODE_BUDGET)

    def _subset(self, ids: np.ndarray) -> "FileStream":
        return FileStream(self.root, self.paths, ids, self.image_shape, self.bad)

    def name(self, position: int) -> str:
        return str(self.root / os.fsdecode(self.paths[self.ids[position]]))

    def names(self) -> list[str]:
        return [self.name(position) for position in range(len(self))]

    def load(self, position: int, epoch: int = -1, crop=None, seed: int = 0) -> tuple[np.ndarray, np.bool_]:
        name = self.name(int(position))
        cropped = (crop, seed, epoch, self.ids[int(position)]) if crop is not None else None
        return self.decode_or_flag(name, name, self.budget, cropped)

    def decoded(self):
        for position in range(len(self)):
            image, ok = self.load(position)
            if ok:
                yield position, image


class RecordStream(ImageStream):
    """Encoded images in TFRecord shards, by their position in the shards read one after another."""

    sequential = True

    def __init__(self, shards: list[str], counts: np.ndarray, keys: tuple[str, str], ids: np.ndarray,
                 shape: tuple[int, int, int], bad: BadFiles):
        super().__init__(ids, shape, bad)
        self.shards = list(shards)
        self.counts = np.asarray(counts, np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.keys = keys  # (image feature, label feature)
        self.budget = PixelBudget(DECODE_BUDGET)

    def _subset(self, ids: np.ndarray) -> "RecordStream":
        return RecordStream(self.shards, self.counts, self.keys, ids, self.image_shape, self.bad)

    def record_name(self, record: int) -> str:
        shard = int(np.searchsorted(self.starts, record, side="right") - 1)
        return f"{self.shards[shard]}, record {record - self.starts[shard]}"

    def names(self) -> list[str]:
        return [self.record_name(int(record)) for record in self.ids]

    def load(self, encoded: bytes, record: int, epoch: int = -1, crop=None, seed: int = 0
             ) -> tuple[np.ndarray, np.bool_]:
        cropped = (crop, seed, epoch, record) if crop is not None else None
        return self.decode_or_flag(bytes(encoded), self.record_name(int(record)), self.budget, cropped)

    def decoded(self):
        from cnnzoo.data.record_reader import read_records

        for position, (encoded, record) in enumerate(read_records(self)):
            image, ok = self.load(encoded, record)
            if ok:
                yield position, image


def is_stream(x: Any) -> bool:
    return isinstance(x, ImageStream)


def bad_files_of(splits: Any) -> BadFiles | None:
    """The BadFiles registry of a DatasetSplits whose images stream, else None."""
    for x in (splits.x_train, splits.x_val, splits.x_test):
        if is_stream(x):
            return x.bad
    return None


def refuse_stream(x: Any, what: str, fix: str) -> None:
    """A located error for what needs the images in memory (statistics over all pixels, fold pooling)."""
    if is_stream(x):
        raise DataError(f"{what} needs the images in memory, but this dataset is streamed from disk "
                        f"(data.in_memory). {fix}")
