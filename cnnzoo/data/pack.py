"""`cnnzoo pack IMAGE_FOLDER OUT_DIR`: an image folder as TFRecord shards plus a manifest, so a large
dataset is converted once and then read sequentially (`dataset: tfrecord`, `path: OUT_DIR`).

Images go into the shards in a seeded random order (every shard holds every class), each as
`image/encoded` (the file's own bytes, or a JPEG of it resized with `--size`), `image/class/label` and
`image/filename`. manifest.json holds the class names, each shard's record count, size and sha256, and
every record's label, so training needs no pass over the data to split it. The folder is written
under a temporary name and renamed into place when complete; an existing OUT_DIR is never touched.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnzoo.atomic import atomic_write_text, fsync_dir, fsync_file
from cnnzoo.data.images import MAX_IMAGE_PIXELS, decode_image, is_decodable
from cnnzoo.data.listing import list_images
from cnnzoo.data.progress import progress_bar
from cnnzoo.data.tfrecord import MANIFEST, manifest_json
from cnnzoo.errors import DataError, RunError

DEFAULT_SHARD_BYTES = 128 << 20
CHUNK = 256  # images read (and resized) in parallel at a time, in order


@dataclass
class PackReport:
    out_dir: Path
    records: int
    shards: int
    bytes: int
    classes: list[str]
    skipped: list[str] = field(default_factory=list)


def pack_folder(folder: Path, out_dir: Path, *, size: tuple[int, int] | None = None, channels: int = 3,
                shard_bytes: int = DEFAULT_SHARD_BYTES, seed: int = 0, skip_bad: bool = False,
                progress: bool = True) -> PackReport:
    folder, out_dir = Path(folder), Path(out_dir)
    if out_dir.exists() or out_dir.is_symlink():
        raise RunError(f"{out_dir} already exists; `cnnzoo pack` writes a new folder and never changes an existing "
                       "one. Name another OUT_DIR, or remove that one.")
    listing = list_images(folder)
    order = np.random.default_rng(seed).permutation(len(listing.paths))
    staging = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise _unwritable(staging, exc) from None
    try:
        report = _write(folder, listing, order, staging, size, channels, shard_bytes, skip_bad, progress)
        _publish(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.out_dir = out_dir
    return report


def _publish(staging: Path, out_dir: Path) -> None:
    """The complete, fsynced pack renamed to OUT_DIR, unless something took that name while packing (a
    rename would replace an empty folder there)."""
    fsync_dir(staging)
    if out_dir.exists() or out_dir.is_symlink():
        raise RunError(f"{out_dir} appeared while packing; `cnnzoo pack` never changes an existing folder. "
                       "Name another OUT_DIR.")
    try:
        os.rename(staging, out_dir)
    except OSError as exc:
        raise _unwritable(out_dir, exc) from None
    fsync_dir(out_dir.parent)


def _unwritable(path: Path, exc: OSError) -> RunError:
    return RunError(f"{path}: cannot create it ({exc.strerror or exc}); no pack was left behind. Free disk "
                    "space or fix the folder's permissions, or name another OUT_DIR.")


def _write(folder, listing, order, staging: Path, size, channels, shard_bytes, skip_bad, progress) -> PackReport:
    from cnnzoo.tensorflow_import import import_tensorflow

    tf = import_tensorflow()
    shards: list[dict] = []
    labels: list[int] = []
    skipped: list[str] = []
    writer = None

    def close_shard():
        writer.close()
        shard = shards[-1]
        path = staging / shard["file"]
        fsync_file(path)
        shard["bytes"] = path.stat().st_size
        shard["sha256"] = _sha256(path)

    with progress_bar(f"packing {folder}", len(order), enabled=progress) as advance, \
            ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for start in range(0, len(order), CHUNK):
            chunk = order[start:start + CHUNK]
            names = [os.fsdecode(listing.paths[i]) for i in chunk]
            encoded = pool.map(lambda name: _encoded(folder / name, size, channels), names)
            for index, name, data in zip(chunk, names, encoded):
                advance(1)
                if data is None:
                    if not skip_bad:
                        raise DataError(f"{folder / name}: not decodable as JPEG, PNG, BMP or GIF (truncated, empty, "
                                        f"not an image, or over {MAX_IMAGE_PIXELS // 1_000_000} megapixels). Replace "
                                        "or delete it, or pass --skip-bad to leave such files out (they are listed).")
                    skipped.append(str(folder / name))
                    continue
                if writer is None or shards[-1]["bytes"] >= shard_bytes:
                    if writer is not None:
                        close_shard()
                    shards.append({"file": f"shard-{len(shards):05d}.tfrecord", "count": 0, "bytes": 0})
                    writer = tf.io.TFRecordWriter(str(staging / shards[-1]["file"]))
                label = int(listing.labels[index])
                writer.write(_example(tf, data, label, name))
                shards[-1]["count"] += 1
                shards[-1]["bytes"] += len(data)
                labels.append(label)
    if writer is None:
        raise DataError(f"{folder}: no image could be packed (every file was skipped).")
    close_shard()
    image_size = list(size) if size else None
    atomic_write_text(staging / MANIFEST, manifest_json(listing.classes, shards, labels, image_size))
    return PackReport(staging, len(labels), len(shards), sum(s["bytes"] for s in shards), listing.classes, skipped)


def _encoded(path: Path, size: tuple[int, int] | None, channels: int) -> bytes | None:
    """The file's bytes when it decodes as a documented format (checked by decoding it), or a JPEG of it at
    `size`; None when it does not decode."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if size is None:
        return data if is_decodable(data) else None
    image = decode_image(data, (size[0], size[1], channels))
    if image is None:
        return None
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image[..., 0] if channels == 1 else image).save(out, "JPEG", quality=95)
    return out.getvalue()


def _example(tf, data: bytes, label: int, name: str) -> bytes:
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[os.fsencode(name)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
