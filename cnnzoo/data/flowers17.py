"""Oxford Flowers-17: 1,360 JPEGs, 80 a class in file order, from 17flowers.tgz or its jpg/ folder.

The VGG site publishes no checksum; a download must match the sha256 of the archive it has served
since 2006 (as recorded by other projects that verify it) and hold all 1,360 `jpg/image_NNNN.jpg`
members. A copy the user provides is only checked for its contents.
"""

from __future__ import annotations

import math
import re
import tarfile
import zlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.cache import cache_file, cached_arrays, source_signature
from cnnzoo.data.locate import Resource, array_cache_dir, locate
from cnnzoo.data.images import decode_images, image_shape
from cnnzoo.data.splits import take_splits, three_way_split
from cnnzoo.errors import DataError

URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/17/17flowers.tgz"
SHA256 = "fe38a60f8b4a95e657551247d3e7d799a3fafcdbc595be504b12839967823d70"
CLASS_NAMES = ["daffodil", "snowdrop", "lily valley", "bluebell", "crocus", "iris", "tigerlily", "tulip",
               "fritillary", "sunflower", "daisy", "colts' foot", "dandelion", "cowslip", "buttercup",
               "windflower", "pansy"]
PER_CLASS = 80
TOTAL = PER_CLASS * len(CLASS_NAMES)
IMAGE_NAME = re.compile(r"image_(\d{4})\.jpg")
# Bounds for a hostile archive (the original: 1,362 members, the largest JPEG 131 KB).
MAX_MEMBERS = 10_000
MAX_IMAGE_BYTES = 16 << 20


def image_number(name: str) -> int | None:
    """1..1360 for `.../image_NNNN.jpg`, else None."""
    match = IMAGE_NAME.fullmatch(name.rsplit("/", 1)[-1])
    number = int(match.group(1)) if match else 0
    return number if 1 <= number <= TOTAL else None


def _usable(path: Path) -> bool:
    if path.is_file():
        return path.name.endswith((".tgz", ".tar.gz", ".tar"))
    return path.is_dir() and any(image_number(p.name) for p in path.glob("image_*.jpg"))


def verify_archive(path: Path) -> None:
    """A downloaded archive must hold every image; raises DataError otherwise."""
    found = len({number for number, _, _ in _archive_members(path)})
    if found != TOTAL:
        raise DataError(f"the downloaded 17flowers.tgz holds {found} of the {TOTAL} images jpg/image_0001.jpg.."
                        f"image_{TOTAL}.jpg, so it was not saved; download it by hand from {URL}.")


RESOURCE = Resource(what="Oxford Flowers-17", names=("17flowers.tgz", "17flowers/jpg", "jpg"), accept=_usable,
                    url=URL, sha256=SHA256, verify=verify_archive, max_bytes=128 << 20,
                    expect="17flowers.tgz or its extracted jpg/ folder (jpg/image_0001.jpg .. image_1360.jpg)")


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    shape = image_shape(req.input_shape, "oxflower17")
    path = locate(RESOURCE, spec_path=spec.path, data_dir=req.data_dir, progress=req.progress)
    cached = cache_file(array_cache_dir(req.cache_dir), f"oxflower17-{'x'.join(map(str, shape))}",
                        ["oxflower17", list(shape), source_signature(path)])
    arrays, hit = cached_arrays(cached, lambda: _decode(path, shape, req.progress))
    x, y = arrays["x"], arrays["y"].astype(np.int64)
    parts = three_way_split(y, spec.validation_split, spec.test_split, req.seed)
    note = "from cache" if hit else "decoded, cached"
    return take_splits(x, y, parts, list(CLASS_NAMES), f"Flowers-17 {path} ({note} in {cached})")


def _decode(path: Path, shape: tuple[int, int, int], progress: bool) -> dict[str, np.ndarray]:
    members = _archive_members(path) if path.is_file() else _folder_members(path)
    items = ((number - 1, f"{path.name}:{name}", data) for number, name, data in members)
    x, found = decode_images(items, TOTAL, shape, progress=progress, label=path.name)
    labels = np.flatnonzero(found) // PER_CLASS
    missing = sorted(set(range(len(CLASS_NAMES))) - set(labels.tolist()))
    if missing:
        raise DataError(f"{path} has no images for class(es) {', '.join(CLASS_NAMES[k] for k in missing)}: "
                        f"found {found.sum()} of the {TOTAL} images image_0001.jpg..image_{TOTAL}.jpg. "
                        f"Use the complete 17flowers.tgz.")
    return {"x": x if found.all() else x[found], "y": labels}


def _archive_members(path: Path) -> Iterator[tuple[int, str, bytes]]:
    """(image number, member name, JPEG bytes) for each image in the archive, read lazily; at most
    MAX_MEMBERS members, images of at most MAX_IMAGE_BYTES, each image number once."""
    seen: set[int] = set()
    try:
        with tarfile.open(path, "r:*") as tar:
            for count, member in enumerate(tar, 1):
                if count > MAX_MEMBERS:
                    raise _hostile(path, f"it has more than {MAX_MEMBERS:,} members")
                number = image_number(member.name)
                if not (member.isfile() and number):
                    continue
                if member.size > MAX_IMAGE_BYTES:
                    raise _hostile(path, f"{member.name} is {member.size:,} bytes (at most {MAX_IMAGE_BYTES:,})")
                if number in seen:
                    raise _hostile(path, f"image_{number:04d}.jpg appears twice")
                seen.add(number)
                yield number, member.name, tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable tar archive ({exc}); it is truncated or corrupt: delete it "
                        f"and download 17flowers.tgz again.") from None


def _hostile(path: Path, what: str) -> DataError:
    return DataError(f"{path} is not the Flowers-17 archive: {what}. Delete it and download 17flowers.tgz again.")


def _folder_members(path: Path) -> Iterator[tuple[int, str, str]]:
    for file in sorted(path.glob("image_*.jpg")):
        if number := image_number(file.name):
            yield number, file.name, str(file)


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(samples, extra bytes held while loading), without reading the archive: for the memory estimate."""
    return TOTAL, TOTAL * math.prod(shape)  # the decoded (or memory-mapped) array


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    return list(CLASS_NAMES)
