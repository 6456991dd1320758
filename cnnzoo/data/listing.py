"""The listing of an image folder (class sub-folders of image files), fast and small enough for millions
of files: one `os.scandir` walk reading no file's metadata, paths kept relative in one bytes array, and
the listing cached beside the decoded-array caches, valid while no folder of it has changed (a folder's
mtime changes whenever a file is added, removed or renamed in it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnzoo.data.cache import cache_file, cached_arrays
from cnnzoo.errors import DataError

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclass
class Listing:
    classes: list[str]
    paths: np.ndarray   # bytes (S), relative to the root, class folder first; sorted within each class
    labels: np.ndarray  # int64 class index of each path
    cached: bool = False


def list_images(root: Path, cache_dir: Path | None = None) -> Listing:
    """Every image of `root`'s class folders; from the listing cache in `cache_dir` when it is current."""
    classes = class_folders(root)
    if cache_dir is None:
        return _walk(root, classes)
    key = ["image_folder listing", str(root.resolve()), [[c, _mtime(root / c)] for c in classes]]
    path = cache_file(cache_dir, f"listing-{root.name}", key)
    fresh: list[Listing] = []

    def build() -> dict[str, np.ndarray]:
        fresh.append(_walk(root, classes))
        dirs = _folders(fresh[0].paths)
        return {"paths": fresh[0].paths, "labels": fresh[0].labels, "dirs": np.array(dirs, dtype=bytes),
                "mtimes": np.array([_mtime(root / os.fsdecode(d)) for d in dirs], np.int64)}

    arrays, hit = cached_arrays(path, build)
    if hit and all(_mtime(root / os.fsdecode(d)) == m for d, m in zip(arrays["dirs"], arrays["mtimes"])):
        return Listing(classes, np.asarray(arrays["paths"]), np.asarray(arrays["labels"]), cached=True)
    if hit:  # a nested folder changed: list again (the next run rewrites the cache under the same key)
        path.unlink(missing_ok=True)
        arrays, _ = cached_arrays(path, build)
    return fresh[0] if fresh else Listing(classes, np.asarray(arrays["paths"]), np.asarray(arrays["labels"]))


def class_folders(root: Path) -> list[str]:
    """The sorted class folder names under `root`; DataError when it is not a folder or has none."""
    if not root.is_dir():
        raise DataError(f"data.path {root} is not a folder; image_folder needs a folder with one sub-folder "
                        f"of images per class.")
    with os.scandir(root) as entries:
        classes = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no sub-folders; image_folder needs one sub-folder of images per class "
                        f"(e.g. {root}/cats/*.jpg, {root}/dogs/*.jpg).")
    return classes


def _walk(root: Path, classes: list[str]) -> Listing:
    paths: list[bytes] = []
    counts = []
    for name in classes:
        found = sorted(_images(root / name, (name,)))
        counts.append(len(found))
        paths += [os.fsencode(os.path.join(*parts)) for parts in found]
    empty = [name for name, count in zip(classes, counts) if not count]
    if empty:
        raise DataError(f"class folder(s) {', '.join(str(root / n) for n in empty)} hold no images "
                        f"({', '.join(SUFFIXES)}); add images or remove the folder(s).")
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), counts)
    return Listing(classes, np.array(paths, dtype=bytes), labels)


def _images(folder: Path, parts: tuple[str, ...]):
    """Path parts (sorted as pathlib sorts paths) of the image files under `folder`, recursively; links
    to files count, links to folders are not followed (they could loop)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _images(Path(entry.path), parts + (entry.name,))
            elif os.path.splitext(entry.name)[1].lower() in SUFFIXES and entry.is_file():
                yield parts + (entry.name,)


def _folders(paths: np.ndarray) -> list[bytes]:
    """Every folder holding a listed file, relative to the root."""
    return sorted({os.path.dirname(p) for p in paths})


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1
