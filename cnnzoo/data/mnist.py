"""MNIST from the Keras `mnist.npz` or the four original IDX files; official 60k/10k split."""

from __future__ import annotations

import gzip
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnzoo.data.images import fit_images, image_shape
from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import Resource, locate
from cnnzoo.data.npy_headers import announced_bytes
from cnnzoo.data.splits import stratified_split
from cnnzoo.errors import DataError

URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
IDX_NDIM = {"x": 3, "y": 1}
CLASS_NAMES = [str(d) for d in range(10)]
MAX_IDX_BYTES = 256 << 20  # the largest MNIST file holds 47 MB (60,000 x 28 x 28)
MAX_NPZ_MEMBER_BYTES = 1 << 30


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _usable(path: Path) -> bool:
    if path.is_file():
        return path.suffix == ".npz"
    return path.is_dir() and all(_idx_file(path, stem) for stem in IDX_FILES.values())


RESOURCE = Resource(
    what="MNIST", names=("mnist.npz", "mnist"), accept=_usable, url=URL, sha256=SHA256, max_bytes=64 << 20,
    expect="mnist.npz (the Keras file) or a mnist/ folder with train-images-idx3-ubyte.gz, "
           "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    shape = image_shape(req.input_shape, "mnist")
    path = locate(RESOURCE, spec_path=spec.path, data_dir=req.data_dir, progress=req.progress)
    arrays, source = _read(path)
    keep, held = stratified_split(arrays["y_train"], spec.validation_split, req.seed)
    x, y = arrays["x_train"], arrays["y_train"].astype(np.int64)
    return DatasetSplits(fit_images(x[keep], shape), y[keep], fit_images(x[held], shape), y[held],
                         fit_images(arrays["x_test"], shape), arrays["y_test"].astype(np.int64),
                         list(CLASS_NAMES), source)


def _read(path: Path) -> tuple[dict[str, np.ndarray], str]:
    if path.is_file():
        arrays, source = read_npz(path), f"mnist.npz at {path}"
    else:
        arrays, source = read_idx_folder(path), f"MNIST IDX files in {path}"
    _check(arrays, source)
    return arrays, source


def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        _check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in KEYS if key not in data.files]
            if missing:
                raise DataError(f"{path} is not an MNIST npz: it lacks {', '.join(missing)} (it has "
                                f"{', '.join(data.files) or 'no arrays'}); use the Keras mnist.npz.")
            return {key: data[key] for key in KEYS}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path} could not be read as an npz archive ({exc}); the file is corrupt or "
                        f"truncated: delete it and download mnist.npz again.") from None


def _check_npz_sizes(path: Path) -> None:
    """Refuse members bigger than any MNIST array, by the zip directory's uncompressed size, and arrays
    whose .npy header announces more data than the member holds (numpy allocates before reading)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > MAX_NPZ_MEMBER_BYTES:
                raise DataError(f"{path}: member {info.filename} would decompress to {info.file_size:,} bytes, "
                                f"more than an MNIST array can hold; use the Keras mnist.npz.")
            if info.filename.endswith(".npy") and _npy_bytes(archive, info) > info.file_size:
                raise DataError(f"{path}: the header of {info.filename} announces more data than the member "
                                f"holds; the file is corrupt: use the Keras mnist.npz.")


def _npy_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    with archive.open(info) as member:
        return announced_bytes(member)


def read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    return {key: read_idx(_idx_file(folder, stem), IDX_NDIM[key[0]]) for key, stem in IDX_FILES.items()}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (magic 0x0000080N), gzipped or not, read as a stream: the header
    is checked before the data is read, and no more bytes than it announces are decompressed."""
    try:
        with _open_idx(path) as stream:
            magic = stream.read(4)
            if len(magic) < 4 or magic[:3] != b"\x00\x00\x08" or magic[3] != ndim:
                raise DataError(f"{path} is not an IDX file of {ndim}-D unsigned bytes: its magic number is "
                                f"{magic.hex() or 'missing'}, expected 0000080{ndim}. Replace it with the "
                                f"original MNIST file.")
            dims = _idx_dims(path, stream.read(4 * ndim), ndim)
            size = int(np.prod(dims))
            data = stream.read(size)
            if len(data) != size or stream.read(1):
                raise DataError(f"{path} is truncated or corrupt: its header says {'x'.join(map(str, dims))} = "
                                f"{size} bytes of data but it holds {'fewer' if len(data) < size else 'more'}. "
                                f"Replace it with the original MNIST file.")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is a damaged gzip file ({exc}); replace it with the original MNIST "
                        f"file.") from None
    return np.frombuffer(data, np.uint8).reshape(dims)


def _open_idx(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _idx_dims(path: Path, header: bytes, ndim: int) -> tuple[int, ...]:
    if len(header) < 4 * ndim:
        raise DataError(f"{path} is truncated inside its header; replace it with the original MNIST file.")
    dims = struct.unpack(f">{ndim}I", header)
    if int(np.prod(dims, dtype=np.float64)) > MAX_IDX_BYTES:
        raise DataError(f"{path}: its header announces {'x'.join(map(str, dims))} bytes of data, more than the "
                        f"{MAX_IDX_BYTES >> 20} MiB an MNIST file can hold; replace it with the original MNIST file.")
    return dims


def _check(arrays: dict[str, np.ndarray], source: str) -> None:
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or x.dtype != np.uint8:
            raise DataError(f"{source}: the {part} arrays do not match: images {x.dtype}{list(x.shape)}, labels "
                            f"{list(y.shape)}; expected uint8 [N, 28, 28] images and N labels.")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{source}: {part} labels run from {y.min()} to {y.max()}, expected digits 0-9.")


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(samples, extra bytes held while loading), without reading the files: for the memory estimate."""
    samples = 70_000
    return samples, samples * 28 * 28  # the raw 28x28 arrays, before they are fitted to the input


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    return list(CLASS_NAMES)
