"""What `cnnzoo predict` reads: paths, folders and globs expanded to files, each file read into examples
by the run's own dataset functions (decode, resize or pad, channels), with one reason per failed input.

Images of MNIST runs are decoded at their own size and fitted by `fit_images` (centred zero-padding up
to 8 px, else an antialiased resize), as the MNIST loader fits its 28x28 digits; images of Flowers-17 and
image-folder runs go through `decode_image`, the loaders' Pillow decode and bilinear resize. Series
(UCR runs) are rows of a TSV or CSV file in the UCR layout, or a `.npy` array.
"""

from __future__ import annotations

import glob
import io
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from cnnzoo.data.listing import SUFFIXES as IMAGE_SUFFIXES
from cnnzoo.data.images import DECODE_BUDGET, IMAGE_FORMATS, MAX_IMAGE_PIXELS, PixelBudget, decode_image, fit_images
from cnnzoo.data.npy_headers import check_npy
from cnnzoo.data.progress import progress_bar
from cnnzoo.data.ucr import read_tsv
from cnnzoo.errors import DataError

SERIES_SUFFIXES = (".tsv", ".csv", ".npy")
GLOB_CHARS = frozenset("*?[")
MAX_INPUTS = 100_000  # files one argument may expand to


class InputFailure(Exception):
    """One input that could not be read; the message is the reason."""


@dataclass
class Failure:
    name: str
    reason: str


@dataclass
class Example:
    name: str
    array: np.ndarray


Reader = Callable[[Path, tuple[int, ...]], list[Example]]


def _undecodable() -> InputFailure:
    return InputFailure("cannot be decoded as an image (JPEG, PNG, BMP, GIF): the file is truncated or not an image")


def check_pixels(width: int, height: int) -> None:
    """An image of at most MAX_IMAGE_PIXELS, known from its header before it is decoded."""
    if width * height > MAX_IMAGE_PIXELS:
        raise InputFailure(f"has {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS // 1_000_000} "
                           f"megapixels cnnzoo decodes")


def digit_pixels(source: Path | bytes, shape: tuple[int, ...]) -> np.ndarray:
    """A file or its bytes as grey at its own size, then fitted like the MNIST loader's digits (pad or resize,
    channels)."""
    from PIL import Image

    try:
        with Image.open(source if isinstance(source, Path) else io.BytesIO(source), formats=IMAGE_FORMATS) as image:
            check_pixels(image.width, image.height)  # Image.open reads the header only
            pixels = np.asarray(image.convert("L"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise _undecodable() from None
    return fit_images(pixels[None], tuple(shape))[0]


_PHOTO_BUDGET = PixelBudget(DECODE_BUDGET)  # the images predict, explain and serve decode at once, as the loaders


def photo_pixels(source: Path | bytes, shape: tuple[int, ...]) -> np.ndarray:
    """A file or its bytes decoded and resized by the Flowers-17 / image-folder loaders' own function, within
    their budget of pixels decoded at once."""
    pixels = decode_image(str(source) if isinstance(source, Path) else source, tuple(shape), _PHOTO_BUDGET)
    if pixels is None:
        raise _undecodable()
    return pixels


def read_series(path: Path, shape: tuple[int, ...]) -> list[Example]:
    """One example per row of a UCR-layout TSV/CSV (the label column is optional) or of a .npy array."""
    length = shape[0]
    suffix = path.suffix.lower()
    if suffix == ".npy":
        rows = _npy_rows(path, length)
        names = [f"{path}[{i}]" for i in range(len(rows))]
    elif suffix in (".tsv", ".csv"):
        rows = _table_rows(path, length, "," if suffix == ".csv" else "\t")
        names = [f"{path}:{i + 1}" for i in range(len(rows))]
    else:
        raise InputFailure("is not a series file: a 1D run reads .tsv or .csv (UCR layout) or .npy files")
    return [Example(name, row.astype(np.float32)[:, None]) for name, row in zip(names, rows)]


def _table_rows(path: Path, length: int, sep: str) -> np.ndarray:
    """Rows of `length` values, or `length + 1` with the class label first as in UCR files (dropped)."""
    try:
        table = read_tsv(path, sep)
    except DataError as exc:
        raise InputFailure(str(exc).removeprefix(f"{path}").lstrip(", ")) from None
    width = table.shape[1]
    if width not in (length, length + 1):
        raise InputFailure(f"rows hold {width} values, but this run's series have {length} values ({length + 1} "
                           f"with the class label first, as in UCR files)")
    return table[:, width - length:]


def _npy_rows(path: Path, length: int) -> np.ndarray:
    try:
        check_npy(path, "")  # a .npy of this size, not an .npz renamed, nor a header announcing terabytes
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputFailure(f"cannot be read as a .npy array ({str(exc).splitlines()[0]})") from None
    except DataError as exc:
        raise InputFailure(str(exc).removeprefix(f"{path}: ").strip()) from None
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    rows = array[None] if array.ndim == 1 else array
    if rows.ndim != 2 or rows.shape[1] != length or not np.issubdtype(rows.dtype, np.number):
        raise InputFailure(f"holds a {array.dtype} array of shape {list(array.shape)}; expected numbers of shape "
                           f"[{length}], [N, {length}] or [N, {length}, 1] for this run's series")
    return rows


# image datasets: how one image file's bytes become an example (`cnnzoo serve` decodes uploads with them)
PIXELS: dict[str, Callable[[Path | bytes, tuple[int, ...]], np.ndarray]] = {
    "mnist": digit_pixels, "oxflower17": photo_pixels, "image_folder": photo_pixels, "tfrecord": photo_pixels,
}

def _image_reader(pixels: Callable[[Path | bytes, tuple[int, ...]], np.ndarray]) -> Reader:
    return lambda path, shape: [Example(str(path), pixels(path, shape))]


READERS: dict[str, tuple[Reader, tuple[str, ...]]] = {
    **{dataset: (_image_reader(pixels), IMAGE_SUFFIXES) for dataset, pixels in PIXELS.items()},
    "ucr": (read_series, SERIES_SUFFIXES),
}


def expand(arguments: list[str], suffixes: tuple[str, ...]) -> list[Path | Failure]:
    """Files in argument order: a file as given, a folder's files with `suffixes` (recursively, sorted),
    a glob's matches (sorted); a Failure for a missing path, an empty folder or a glob that matches nothing."""
    found: list[Path | Failure] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(_folder(path, suffixes) or [Failure(argument, f"the folder holds no {_kinds(suffixes)} files")])
        elif GLOB_CHARS & set(argument):
            matches = sorted(Path(m) for m in itertools.islice(glob.iglob(argument, recursive=True), MAX_INPUTS + 1))
            if len(matches) > MAX_INPUTS:  # e.g. `dir/**` through a symbolic link that loops
                found.append(Failure(argument, f"the pattern matches more than {MAX_INPUTS:,} paths (a link that "
                                               f"loops?); name fewer files"))
                continue
            files = [p for m in matches for p in ([m] if m.is_file() else _folder(m, suffixes))]
            found.extend(files or [Failure(argument, "the pattern matches no files")])
        else:
            found.append(Failure(argument, "no such file or folder"))
    return found


def _folder(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    files = (p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    return sorted(itertools.islice(files, MAX_INPUTS))


def _kinds(suffixes: tuple[str, ...]) -> str:
    return "/".join(s.lstrip(".") for s in suffixes)


def read_inputs(arguments: list[str], dataset: str, shape: tuple[int, ...], *,
                progress: bool = True) -> list[Example | Failure]:
    """Every input read in parallel (Pillow releases the GIL), in argument order."""
    return read_items(input_items(arguments, dataset), dataset, shape, progress=progress)


def input_items(arguments: list[str], dataset: str) -> list[Path | Failure]:
    """The files the arguments name (expanded as `expand` does), for a run of `dataset`; nothing is read."""
    if dataset not in READERS:
        raise DataError(f"this run trained on `{dataset}` data, and new inputs are read only as image files "
                        f"(mnist, oxflower17, image_folder and tfrecord runs) or series files (ucr runs). Measure "
                        f"it on its own data with `cnnzoo eval RUN_DIR`, or load its best.keras with "
                        f"keras.saving.load_model to predict on your own arrays.")
    return expand(arguments, READERS[dataset][1])


def read_items(items: list[Path | Failure], dataset: str, shape: tuple[int, ...], *,
               progress: bool = True) -> list[Example | Failure]:
    """`items` (from input_items) read in parallel, in order: a Failure for each one that cannot be read."""
    reader = READERS[dataset][0]

    def read(item: Path | Failure) -> list[Example | Failure]:
        if isinstance(item, Failure):
            return [item]
        try:
            return list(reader(item, shape))
        except InputFailure as exc:
            return [Failure(str(item), str(exc))]

    with progress_bar("reading inputs", len(items), enabled=progress) as advance, \
            ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        results = []
        for done in pool.map(read, items):
            results.extend(done)
            advance(1)
    return results
