"""Decoded arrays cached as uncompressed .npz, keyed by source and size, written atomically, read by
memory-mapping (a warm start copies each pixel once, when the splits are taken)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from cnnzoo.atomic import atomic_save, remove_stale_temps
from cnnzoo.errors import RunError

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
        with zipfile.ZipFile(path) as archive, open(path, "rb") as file:
            return {Path(info.filename).stem: _map_member(path, file, info) for info in archive.infolist()}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, struct.error):
        return None


def _map_member(path: Path, file, info: zipfile.ZipInfo) -> np.ndarray:
    """Memory-map one stored (uncompressed) .npy member; the file was renamed into place whole, so its
    size is the only check needed."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError("compressed member")
    file.seek(info.header_offset + 26)  # local file header: name and extra-field lengths at bytes 26..29
    name_length, extra_length = struct.unpack("<HH", file.read(4))
    file.seek(info.header_offset + 30 + name_length + extra_length)
    version = np.lib.format.read_magic(file)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(file)
    if dtype.hasobject or file.tell() + dtype.itemsize * int(np.prod(shape)) > os.path.getsize(path):
        raise ValueError("object array or truncated member")
    if 0 in shape:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype, "r", file.tell(), shape, "F" if fortran_order else "C")


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Temp file + rename; a cache that cannot be written only costs a decode next time."""
    def save(tmp: Path) -> None:
        with open(tmp, "xb") as out:
            np.savez(out, **arrays)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        atomic_save(path, save)
    except (OSError, RunError):
        pass
