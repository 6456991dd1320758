"""image_folder: one sub-folder per class under `data.path`; class names are the sorted folder names."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.cache import cache_file, cached_arrays, source_signature
from cnnzoo.data.locate import array_cache_dir, explicit_path
from cnnzoo.data.images import decode_images, image_shape
from cnnzoo.data.listing import class_folders, list_images
from cnnzoo.data.stream_pipeline import DECODE_PARALLELISM
from cnnzoo.data.streams import BadFiles, FileStream
from cnnzoo.data.splits import take_splits, three_way_split
from cnnzoo.errors import DataError

def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    if not spec.path:
        raise DataError("an image_folder dataset needs `data.path`: a folder with one sub-folder per class.")
    shape = image_shape(req.input_shape, "image_folder")
    root = explicit_path(spec.path, req.data_dir)
    if req.stream:
        return _streamed(spec, req, root, shape)
    files = class_files(root)
    cached = cache_file(array_cache_dir(req.cache_dir), f"folder-{root.name}-{'x'.join(map(str, shape))}",
                        ["image_folder", list(shape), source_signature(root)])
    arrays, hit = cached_arrays(cached, lambda: _decode(root, files, shape, req.progress))
    x, y = arrays["x"], arrays["y"].astype(np.int64)
    parts = three_way_split(y, spec.validation_split, spec.test_split, req.seed)
    note = "from cache" if hit else "decoded, cached"
    return take_splits(x, y, parts, list(files), f"image folder {root} ({note} in {cached})")


def _streamed(spec: DataSpec, req: LoadRequest, root: Path, shape) -> DatasetSplits:
    """The same files, labels and splits as in memory, as references decoded batch by batch."""
    listing = list_images(root, array_cache_dir(req.cache_dir))
    parts = three_way_split(listing.labels, spec.validation_split, spec.test_split, req.seed)
    stream = FileStream(root, listing.paths, np.arange(len(listing.paths)), shape, BadFiles(spec.bad_files))
    note = "listing from cache" if listing.cached else "listed"
    return take_splits(stream, listing.labels, parts, listing.classes,
                       f"image folder {root} ({len(listing.paths):,} files, {note})")


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    """The sorted class folder names under `data.path` (no images are read)."""
    return class_folders(explicit_path(spec.path, data_dir))


def class_files(root: Path) -> dict[str, list[Path]]:
    """Sorted class name -> sorted image files; DataError for no classes or an empty class."""
    listing = list_images(root)
    files: dict[str, list[Path]] = {name: [] for name in listing.classes}
    for path, label in zip(listing.paths, listing.labels):
        files[listing.classes[label]].append(root / os.fsdecode(path))
    return files


def _decode(root: Path, files: dict[str, list[Path]], shape, progress: bool) -> dict[str, np.ndarray]:
    paths = [p for found in files.values() for p in found]
    labels = np.concatenate([np.full(len(found), k, np.int64) for k, found in enumerate(files.values())])
    items = ((slot, str(path.relative_to(root)), str(path)) for slot, path in enumerate(paths))
    x, _ = decode_images(items, len(paths), shape, progress=progress, label=str(root))
    return {"x": x, "y": labels}


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(samples, extra bytes held while loading), from the file listing: for the memory estimate."""
    files = len(list_images(explicit_path(spec.path, data_dir), array_cache_dir(None)).paths)
    return files, files * math.prod(shape)  # the decoded (or memory-mapped) array


def stream_size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> int:
    """The listing (paths and labels, as list_images keeps them) and the images being decoded at once."""
    listing = list_images(explicit_path(spec.path, data_dir), array_cache_dir(None))
    references = listing.paths.nbytes + listing.labels.nbytes + 16 * len(listing.labels)  # + split indices
    return references + 2 * DECODE_PARALLELISM * math.prod(shape)
