"""image_folder: one sub-folder per class under `data.path`; class names are the sorted folder names."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.cache import cache_file, cached_arrays, source_signature
from cnnzoo.data.locate import array_cache_dir, explicit_path
from cnnzoo.data.images import decode_images, image_shape
from cnnzoo.data.splits import take_splits, three_way_split
from cnnzoo.errors import DataError

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    if not spec.path:
        raise DataError("an image_folder dataset needs `data.path`: a folder with one sub-folder per class.")
    shape = image_shape(req.input_shape, "image_folder")
    root = explicit_path(spec.path, req.data_dir)
    files = class_files(root)
    cached = cache_file(array_cache_dir(req.cache_dir), f"folder-{root.name}-{'x'.join(map(str, shape))}",
                        ["image_folder", list(shape), source_signature(root)])
    arrays, hit = cached_arrays(cached, lambda: _decode(root, files, shape, req.progress))
    x, y = arrays["x"], arrays["y"].astype(np.int64)
    parts = three_way_split(y, spec.validation_split, spec.test_split, req.seed)
    note = "from cache" if hit else "decoded, cached"
    return take_splits(x, y, parts, list(files), f"image folder {root} ({note} in {cached})")


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    """The sorted class folder names under `data.path` (no images are read)."""
    return list(class_files(explicit_path(spec.path, data_dir)))


def class_files(root: Path) -> dict[str, list[Path]]:
    """Sorted class name -> sorted image files; DataError for no classes or an empty class."""
    if not root.is_dir():
        raise DataError(f"data.path {root} is not a folder; image_folder needs a folder with one sub-folder "
                        f"of images per class.")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no sub-folders; image_folder needs one sub-folder of images per class "
                        f"(e.g. {root}/cats/*.jpg, {root}/dogs/*.jpg).")
    files = {c.name: sorted(p for p in c.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
             for c in classes}
    empty = [name for name, found in files.items() if not found]
    if empty:
        raise DataError(f"class folder(s) {', '.join(str(root / n) for n in empty)} hold no images "
                        f"({', '.join(SUFFIXES)}); add images or remove the folder(s).")
    return files


def _decode(root: Path, files: dict[str, list[Path]], shape, progress: bool) -> dict[str, np.ndarray]:
    paths = [p for found in files.values() for p in found]
    labels = np.concatenate([np.full(len(found), k, np.int64) for k, found in enumerate(files.values())])
    items = ((slot, str(path.relative_to(root)), str(path)) for slot, path in enumerate(paths))
    x, _ = decode_images(items, len(paths), shape, progress=progress, label=str(root))
    return {"x": x, "y": labels}


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(samples, extra bytes held while loading), from the file listing: for the memory estimate."""
    files = sum(len(found) for found in class_files(explicit_path(spec.path, data_dir)).values())
    return files, files * math.prod(shape)  # the decoded (or memory-mapped) array
