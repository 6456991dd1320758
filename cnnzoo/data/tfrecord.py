"""tfrecord: images in TFRecord shards, always streamed (data/streams.py RecordStream).

`data.path` names a folder written by `cnnzoo pack` (its manifest.json gives the shards, their record
counts, the class names and every record's label, so nothing is read before training), a folder of
`.tfrecord` shards, or a glob of shards. Without a manifest, the labels are read in one pass over the
shards (only the label feature is parsed) and cached like decoded arrays; class names come from
`data.classes` (a list, or a text file with one name a line), else they are the label numbers.
Records hold an encoded image (`data.image_key`, default `image/encoded`) and a class index
(`data.label_key`, default `image/class/label`): the layout of TensorFlow's and KerasCV's ImageNet
converters. The splits are drawn from the records' labels as for an image folder.
"""

from __future__ import annotations

import functools
import glob
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cnnzoo.data.cache import cache_file, cached_arrays
from cnnzoo.data.images import image_shape
from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import array_cache_dir, explicit_path
from cnnzoo.data.splits import take_splits, three_way_split
from cnnzoo.data.stream_pipeline import DECODE_PARALLELISM, SHUFFLE_WINDOW
from cnnzoo.data.streams import BadFiles, RecordStream
from cnnzoo.errors import DataError, RunError
from cnnzoo.terminal import printable

MANIFEST = "manifest.json"
FORMAT = "cnnzoo-pack"
MAX_MANIFEST_BYTES = 512 << 20  # a label per record: ~4 bytes each, far above ImageNet's 1.28 million
MAX_SHARDS = 100_000
MAX_CLASS_FILE_BYTES = 16 << 20
PACKED_KEYS = ("image/encoded", "image/class/label")  # what `cnnzoo pack` writes (data/pack.py)
SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,200}")


@dataclass
class Shards:
    files: list[str]
    counts: np.ndarray
    labels: np.ndarray
    classes: list[str]
    source: str


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    shape = image_shape(req.input_shape, "tfrecord")
    shards = read_shards(spec, req.data_dir, req.cache_dir, req.progress)
    parts = three_way_split(shards.labels, spec.validation_split, spec.test_split, req.seed)
    stream = RecordStream(shards.files, shards.counts, (spec.image_key, spec.label_key),
                          np.arange(len(shards.labels)), shape, BadFiles(spec.bad_files))
    return take_splits(stream, shards.labels, parts, shards.classes, shards.source)


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    return read_shards(spec, data_dir, None, False).classes


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    shards = read_shards(spec, data_dir, None, False)
    return len(shards.labels), 0


def stream_size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> int:
    """The labels and split indices, the shuffle window of encoded records (at their mean size, from the
    shard files' sizes) and the images being decoded at once."""
    shards = read_shards(spec, data_dir, None, False)
    records = max(len(shards.labels), 1)
    mean_record = sum(os.path.getsize(f) for f in shards.files) / records
    return (24 * records + int(min(SHUFFLE_WINDOW, records) * mean_record)
            + 2 * DECODE_PARALLELISM * math.prod(shape))


def read_shards(spec: DataSpec, data_dir: Path | None, cache_dir: Path | None, progress: bool) -> Shards:
    folder = _folder(spec.path, data_dir)
    if folder is not None and (folder / MANIFEST).is_file():
        shards = read_manifest(folder)
        if (spec.image_key, spec.label_key) != PACKED_KEYS:
            raise DataError(f"{folder} is a `cnnzoo pack` folder: its records hold {PACKED_KEYS[0]!r} and its "
                            f"labels are in {MANIFEST}; leave data.image_key and data.label_key out.")
        if isinstance(spec.classes, (list, tuple)) and list(spec.classes) != shards.classes:
            raise DataError(f"data.classes lists {len(spec.classes)} class(es), but {folder / MANIFEST} names "
                            f"{shards.classes[:8]}; leave `classes` out to use the manifest's.")
        return shards
    files = _shard_files(spec.path, folder, data_dir)
    labels, counts = label_pass(files, spec.label_key, cache_dir, progress)
    named = _class_file(spec.classes, data_dir) if isinstance(spec.classes, str) else spec.classes
    classes = list(named) if named else [str(k) for k in range(int(labels.max(initial=-1)) + 1)]
    if labels.size and labels.max() >= len(classes):
        raise DataError(f"a record of {files[0] if len(files) == 1 else 'the shards'} has label {int(labels.max())}, "
                        f"but data.classes names {len(classes)} class(es); list every class in label order.")
    return Shards(files, counts, labels, classes, f"TFRecord {len(files)} shard(s) ({len(labels):,} records)")


def _class_file(path: str, data_dir: Path | None) -> list[str]:
    """Class names from a text file, one a line (blank lines ignored), as `data.classes: labels.txt` names it."""
    file = explicit_path(path, data_dir)
    try:
        if not file.is_file() or file.stat().st_size > MAX_CLASS_FILE_BYTES:
            raise DataError(f"data.classes {file} is not a text file of at most 16 MB (one class name a line).")
        names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"data.classes {file}: cannot read it as UTF-8 text ({exc}).") from None
    if not names or len(set(names)) != len(names):
        raise DataError(f"data.classes {file} must list distinct class names, one a line, in label order.")
    return names


def read_manifest(folder: Path) -> Shards:
    """The manifest `cnnzoo pack` wrote, every field checked (a manifest may come from someone else): shard
    names are plain names inside the folder, counts and labels agree, the shard files have their sizes."""
    from cnnzoo.safe_read import read_run_json

    path = folder / MANIFEST
    try:
        data = read_run_json(path) if path.stat().st_size <= MAX_MANIFEST_BYTES else None
    except (RunError, OSError) as exc:  # a link, a FIFO, not JSON
        raise DataError(f"{path}: not a readable pack manifest ({exc}).") from None
    shards = data.get("shards") if isinstance(data, dict) else None
    classes, labels = (data.get("classes"), data.get("labels")) if isinstance(data, dict) else (None, None)
    if (not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(shards, list)
            or not 0 < len(shards) <= MAX_SHARDS or not isinstance(classes, list) or not classes
            or not all(isinstance(c, str) for c in classes) or not isinstance(labels, list)):
        raise DataError(f"{path}: not a manifest written by `cnnzoo pack` (format, shards, classes and labels "
                        "are required). Pack the image folder again, or point data.path at the .tfrecord files.")
    files, counts = [], []
    for index, shard in enumerate(shards):
        fields = (shard.get(k) for k in ("file", "count", "bytes")) if isinstance(shard, dict) else (None,) * 3
        name, count, nbytes = fields
        if not isinstance(name, str) or not SHARD_NAME.fullmatch(name) or ".." in name:
            raise DataError(f"{path}: shards[{index}].file {printable(name)!r} is not a file name in the folder.")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (count, nbytes)):
            raise DataError(f"{path}: shards[{index}] needs whole-number `count` and `bytes`.")
        file = folder / name
        if not file.is_file() or file.stat().st_size != nbytes:
            raise DataError(f"{file}: missing, or not the {nbytes:,} bytes {MANIFEST} records; the pack is "
                            "incomplete or was changed. Pack the image folder again.")
        if record_count(file) != count:
            raise DataError(f"{file}: holds {record_count(file):,} TFRecord records, but {MANIFEST} says "
                            f"{count:,}; the pack was changed. Pack the image folder again.")
        files.append(str(file))
        counts.append(count)
    if sum(counts) != len(labels) or not all(isinstance(v, int) and 0 <= v < len(classes) for v in labels):
        raise DataError(f"{path}: `labels` must hold one class index (0 to {len(classes) - 1}) per record, "
                        f"{sum(counts):,} in all.")
    return Shards(files, np.array(counts, np.int64), np.array(labels, np.int64), classes,
                  f"TFRecord pack {folder} ({len(files)} shard(s), {len(labels):,} records)")


def record_count(file: str | Path) -> int:
    """The records in a TFRecord file, by walking its framing (length, CRC, data, CRC) with seeks: no record
    is read. A file that does not end exactly at a record boundary is damaged (DataError). Remembered by
    path, size and modification time: a run reads the manifest several times."""
    stat = os.stat(file)
    return _record_count(str(file), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _record_count(file: str, nbytes: int, mtime_ns: int) -> int:
    count, offset = 0, 0
    with open(file, "rb") as handle:
        while offset < nbytes:
            header = handle.read(8)
            length = int.from_bytes(header, "little") if len(header) == 8 else nbytes
            offset += 16 + length  # length, its CRC, the data, its CRC
            if offset > nbytes:
                raise DataError(f"{file}: not a complete TFRecord file (record {count} runs past its end); "
                                "it was truncated or is not TFRecord. Pack the image folder again.")
            handle.seek(offset)
            count += 1
    return count


def _folder(path: str | None, data_dir: Path | None) -> Path | None:
    for candidate in (Path(path).expanduser(), *([data_dir / path] if data_dir else [])):
        if candidate.is_dir():
            return candidate
    return None


def _shard_files(path: str, folder: Path | None, data_dir: Path | None) -> list[str]:
    if folder is not None:
        files = sorted(str(p) for p in folder.iterdir() if ".tfrecord" in p.name and p.is_file())
    else:
        pattern = os.path.expanduser(path)
        if data_dir is not None and not os.path.isabs(pattern) and not glob.glob(pattern):
            pattern = str(data_dir / pattern)
        files = sorted(f for f in glob.iglob(pattern) if os.path.isfile(f))[:MAX_SHARDS + 1]
    if not files:
        raise DataError(f"data.path {printable(path)} names no TFRecord shards: give a folder written by "
                        f"`cnnzoo pack`, a folder of .tfrecord files, or a glob such as data/train-*.tfrecord.")
    if len(files) > MAX_SHARDS:
        raise DataError(f"data.path {printable(path)} matches more than {MAX_SHARDS:,} files; name the shards "
                        "more narrowly.")
    return files


def label_pass(files: list[str], label_key: str, cache_dir: Path | None, progress: bool):
    """(every record's label, records per shard), parsing only the label feature; cached by the shards'
    paths, sizes and mtimes."""
    key = ["tfrecord labels", label_key, [[f, os.path.getsize(f), os.stat(f).st_mtime_ns] for f in files]]
    cached = cache_file(array_cache_dir(cache_dir), "tfrecord-labels", key)
    arrays, _ = cached_arrays(cached, lambda: _read_labels(files, label_key, progress))
    return np.asarray(arrays["labels"]), np.asarray(arrays["counts"])


def _read_labels(files: list[str], label_key: str, progress: bool) -> dict[str, np.ndarray]:
    from cnnzoo.data.progress import progress_bar
    from cnnzoo.tensorflow_import import import_tensorflow

    tf = import_tensorflow()
    spec = {label_key: tf.io.FixedLenFeature([], tf.int64, default_value=-1)}
    labels, counts = [], []
    with progress_bar("reading TFRecord labels", len(files), enabled=progress) as advance:
        for file in files:
            parsed = tf.data.TFRecordDataset(file).map(lambda r: tf.io.parse_single_example(r, spec)[label_key])
            try:
                found = np.fromiter(parsed.as_numpy_iterator(), np.int64)
            except tf.errors.OpError as exc:
                reason = exc.message.splitlines()[0][:200]
                raise DataError(f"{file}: not readable as TFRecord Examples ({reason}).") from None
            if (found < 0).any():
                raise DataError(f"{file}, record {int(np.flatnonzero(found < 0)[0])}: no int64 feature "
                                f"{label_key!r}; set data.label_key to the feature holding the class index.")
            labels.append(found)
            counts.append(len(found))
            advance(1)
    return {"labels": np.concatenate(labels), "counts": np.array(counts, np.int64)}


def manifest_json(classes: list[str], shards: list[dict[str, Any]], labels: list[int], image_size) -> str:
    return json.dumps({"format": FORMAT, "version": 1, "classes": classes, "count": len(labels),
                       "image_size": image_size, "shards": shards, "labels": labels}, separators=(",", ":"))
