"""Bounds on NumPy files made by someone else, checked before numpy allocates: a .npy header (alone or
inside an .npz) may announce any shape, and numpy allocates what it announces before reading a byte."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnnzoo.errors import DataError
from cnnzoo.host_memory import check_allocation

MAX_MEMBER_BYTES = 1 << 30  # one array of an .npz, uncompressed (docs: Bounded cost)


def announced_bytes(stream: BinaryIO) -> int:
    """The bytes a .npy header (at the stream's position) says its array holds."""
    major, _ = np.lib.format.read_magic(stream)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(stream)
    return int(np.prod(shape, dtype=np.float64)) * dtype.itemsize


def check_npz(path: Path, hint: str) -> None:
    """Every member of an .npz is at most MAX_MEMBER_BYTES uncompressed (by the zip directory; zipfile never
    reads past it), every array announces no more than its member holds, and all of them fit in memory."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > MAX_MEMBER_BYTES:
                raise DataError(f"{path}: member {info.filename} would decompress to {info.file_size:,} bytes, more "
                                f"than the {MAX_MEMBER_BYTES:,} an array of an .npz may hold. {hint}")
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                size = announced_bytes(member)
            if size > info.file_size:
                raise DataError(f"{path}: the header of {info.filename} announces {size:,} bytes, more than the "
                                f"member holds ({info.file_size:,}); the file is corrupt or crafted. {hint}")
            total += size
    check_allocation(total, f"{path} (its arrays)")


def check_npy(path: Path, hint: str) -> None:
    """A .npy file announces no more than the file holds, and fits in memory."""
    with open(path, "rb") as handle:
        size = announced_bytes(handle)
        data_bytes = path.stat().st_size - handle.tell()
    if size > data_bytes:
        raise DataError(f"{path}: its header announces {size:,} bytes, more than the file holds ({data_bytes:,}); "
                        f"the file is corrupt or crafted. {hint}")
    check_allocation(size, str(path))
