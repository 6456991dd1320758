"""How many samples a dataset has, and the extra bytes its loader holds for a moment, known without
reading the data (for the memory estimate). One function per dataset, behind one registry."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

from cnnzoo.data import flowers17, ucr
from cnnzoo.data.files import explicit_path, locate
from cnnzoo.data.folders import class_files
from cnnzoo.data.spec import DataSpec
from cnnzoo.errors import DataError

Size = tuple[int, int]  # (samples, extra bytes held while loading)


def _mnist(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> Size:
    samples = 70_000
    return samples, samples * 28 * 28  # the raw 28x28 arrays, before they are fitted to the input


def _flowers(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> Size:
    return flowers17.TOTAL, flowers17.TOTAL * math.prod(shape)  # the decoded (or memory-mapped) array


def _ucr(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> Size:
    folder = locate(ucr.resource(spec.name), spec_path=spec.path, data_dir=data_dir, progress=False)
    rows = sum(_lines(folder / f"{spec.name}_{part}.tsv") for part in ("TRAIN", "TEST"))
    length = math.prod(shape)
    return rows, rows * (length + 1) * 8 + rows * length * 4  # pandas' float64 rows, then float32 series


def _image_folder(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> Size:
    files = sum(len(found) for found in class_files(explicit_path(spec.path, data_dir)).values())
    return files, files * math.prod(shape)  # the decoded (or memory-mapped) array


SIZES: dict[str, Callable[[DataSpec, Sequence[int], Path | None], Size]] = {
    "mnist": _mnist, "oxflower17": _flowers, "ucr": _ucr, "image_folder": _image_folder,
}


def sample_count(spec: DataSpec, input_shape: Sequence[int], data_dir: Path | None) -> Size | None:
    """(samples, extra bytes) for the dataset `spec` names; None where its files cannot be found yet
    (loading it will then say what is missing)."""
    size = SIZES.get(spec.dataset)
    try:
        return size(spec, input_shape, data_dir) if size else None
    except (DataError, OSError):
        return None


def _lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))

