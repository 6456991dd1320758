"""Decoded arrays cached as .npz, keyed by source and size, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from cnnzoo.data.download import temp_name

VERSION = 2  # bumped whenever cached arrays would come out differently (2: Pillow decoder)


def source_signature(path: Path) -> list:
    """Path, size and mtime of a file; of every file for a folder (recursively)."""
    path = path.resolve()
    if path.is_file():
        stat = path.stat()
        return [str(path), stat.st_size, stat.st_mtime_ns]
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return [str(path)] + [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


def cache_file(cache_dir: Path, prefix: str, key: list) -> Path:
    digest = hashlib.sha256(json.dumps([VERSION, key]).encode()).hexdigest()[:20]
    return cache_dir / f"{prefix}-{digest}.npz"


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, hit): read `path` if it is a valid cache, else `build()` and store it (best effort)."""
    arrays = _read(path)
    if arrays is not None:
        return arrays, True
    arrays = build()
    _write(path, arrays)
    return arrays, False


def _read(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Temp file + rename; a cache that cannot be written only costs a decode next time."""
    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
