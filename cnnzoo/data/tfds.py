"""tfds: any TensorFlow Datasets name (`data.name`) with its split names (`data.split: {train: train,
test: test}`), read as (input, label) arrays, or (an image dataset under `data.in_memory: false`, or `auto`
when it would not fit) streamed from the prepared dataset's own TFRecord shards. An optional dependency
(`pip install cnnzoo[tfds]`).
Prepared data is looked for in `data.path`, else <data dir>/tensorflow_datasets, else TFDS's own
default folder; what is not there is downloaded, and a failed download is one clear data error."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cnnzoo.data.images import image_shape
from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import explicit_path
from cnnzoo.data.splits import stratified_split
from cnnzoo.data.stream_pipeline import DECODE_PARALLELISM, SHUFFLE_WINDOW
from cnnzoo.data.streams import BadFiles, RecordStream
from cnnzoo.data.targets import encode_targets
from cnnzoo.data.tfrecord import label_pass
from cnnzoo.errors import DataError

INSTALL = "TensorFlow Datasets is not installed; `pip install 'cnnzoo[tfds]'` (or tensorflow-datasets) to use dataset: tfds."


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    train_split, test_split = spec.split or ("train", "test")
    folder = _folder(spec, req.data_dir)
    if req.stream:
        return _streamed(spec, req, folder, train_split, test_split)
    (x_train, y_train), info = _read(spec.name, train_split, folder)
    (x_test, y_test), _ = _read(spec.name, test_split, folder)
    for x in (x_train, x_test):
        if tuple(x.shape[1:]) != tuple(req.input_shape):
            raise DataError(f"TFDS {spec.name} examples have shape {list(x.shape[1:])}, but the model input is "
                            f"{list(req.input_shape)}; set `input: {{shape: {list(x.shape[1:])}}}`.")
    names = _label_names(info)
    (y_train, y_test), class_names = encode_targets([y_train, y_test], req.task, names=names,
                                                    what=f"the labels of TFDS {spec.name}")
    keep, held = stratified_split(y_train, spec.validation_split, req.seed)
    return DatasetSplits(x_train[keep], y_train[keep], x_train[held], y_train[held], x_test, y_test, class_names,
                         f"TFDS {spec.name} ({train_split}/{test_split}) in {folder or 'the TFDS default folder'}")


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    tfds = _tfds()
    try:
        names = _label_names(tfds.builder(spec.name, data_dir=_folder(spec, data_dir)).info)
    except Exception as exc:  # noqa: BLE001 - any TFDS failure is a data problem to report
        raise _failed(spec.name, exc) from None
    return names or []


def size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> tuple[int, int]:
    """(examples of the train and test splits, 0) from a prepared dataset's metadata; DataError (not counted)
    when it is not prepared yet."""
    builder = _prepared_builder(spec, data_dir)
    splits = spec.split or ("train", "test")
    return sum(builder.info.splits[s].num_examples for s in splits if s in builder.info.splits), 0


def stream_size(spec: DataSpec, shape: Sequence[int], data_dir: Path | None) -> int:
    builder = _prepared_builder(spec, data_dir)
    splits = [builder.info.splits[s] for s in spec.split or ("train", "test") if s in builder.info.splits]
    records = sum(s.num_examples for s in splits) or 1
    mean_record = sum(s.num_bytes for s in splits) / records
    return (24 * records + int(min(SHUFFLE_WINDOW, records) * mean_record)
            + 2 * DECODE_PARALLELISM * math.prod(shape))


def _prepared_builder(spec: DataSpec, data_dir: Path | None) -> Any:
    tfds = _tfds()
    try:
        builder = tfds.builder(spec.name, data_dir=_folder(spec, data_dir))
        prepared = _prepared(builder)
    except Exception as exc:  # noqa: BLE001 - any TFDS failure is a data problem to report
        raise _failed(spec.name, exc) from None
    if not prepared:
        raise DataError(f"TFDS {spec.name} is not prepared yet")
    return builder


def _streamed(spec: DataSpec, req: LoadRequest, folder: str | None, train_split: str,
              test_split: str) -> DatasetSplits:
    """The prepared dataset's own TFRecord shards, streamed: its image feature decoded per batch."""
    tfds = _tfds()
    shape = image_shape(req.input_shape, "tfds")
    try:
        builder = tfds.builder(spec.name, data_dir=folder)
        if not _prepared(builder):
            builder.download_and_prepare()
        info = builder.info
    except Exception as exc:  # noqa: BLE001 - not found, offline, corrupt: one clear data error
        raise _failed(spec.name, exc) from None
    keys = info.supervised_keys
    if not keys or not isinstance(info.features[keys[0]], tfds.features.Image) or "tfrecord" not in str(
            getattr(info, "file_format", "tfrecord")).lower():
        raise DataError(f"TFDS {spec.name} is streamed only when it holds images (a supervised Image feature) in "
                        f"TFRecord files; set `data.in_memory: true` to read it into memory.")
    bad = BadFiles(spec.bad_files)
    streams, labels = [], []
    for split in (train_split, test_split):
        if split not in info.splits:
            raise DataError(f"TFDS {spec.name} has no split {split!r} (splits: {', '.join(info.splits)}); "
                            f"set `data.split: {{train: ..., test: ...}}`.")
        files = [str(f) for f in info.splits[split].filepaths]
        found, counts = label_pass(files, keys[1], req.cache_dir, req.progress)
        streams.append(RecordStream(files, counts, tuple(keys), np.arange(len(found)), shape, bad))
        labels.append(found)
    names = _label_names(info)
    (y_train, y_test), class_names = encode_targets(labels, req.task, names=names,
                                                    what=f"the labels of TFDS {spec.name}")
    keep, held = stratified_split(y_train, spec.validation_split, req.seed)
    return DatasetSplits(streams[0][keep], y_train[keep], streams[0][held], y_train[held], streams[1], y_test,
                         class_names, f"TFDS {spec.name} ({train_split}/{test_split}) shards in {builder.data_dir}")


def _tfds() -> Any:
    try:
        import tensorflow_datasets
    except ImportError:
        raise DataError(INSTALL) from None
    return tensorflow_datasets


def _folder(spec: DataSpec, data_dir: Path | None) -> str | None:
    if spec.path:
        return str(explicit_path(spec.path, data_dir))
    inside = data_dir / "tensorflow_datasets" if data_dir else None
    return str(inside) if inside and inside.is_dir() else None


def _read(name: str, split: str, folder: str | None) -> tuple[tuple[np.ndarray, np.ndarray], Any]:
    tfds = _tfds()
    try:
        builder = tfds.builder(name, data_dir=folder)
        if split not in builder.info.splits and builder.info.splits:
            raise DataError(f"TFDS {name} has no split {split!r} (splits: {', '.join(builder.info.splits)}); "
                            f"set `data.split: {{train: ..., test: ...}}`.")
        if not _prepared(builder):
            builder.download_and_prepare()
        data = tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True, batch_size=-1))
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - not found, offline, corrupt: one clear data error
        raise _failed(name, exc) from None
    return (data[0], data[1]), builder.info


def _prepared(builder) -> bool:
    try:
        return bool(builder.is_prepared())
    except AttributeError:
        return Path(builder.data_dir).is_dir()


def _label_names(info) -> list[str] | None:
    keys = info.supervised_keys
    label = info.features[keys[1]] if keys and isinstance(keys[1], str) else None
    return list(label.names) if label is not None and hasattr(label, "names") else None


def _failed(name: str, exc: Exception) -> DataError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"TFDS dataset {name!r} could not be loaded or downloaded ({first[:300]}). Check the name "
                     f"(https://www.tensorflow.org/datasets/catalog), or prepare it where cnnzoo looks: `data.path`, "
                     f"<data dir>/tensorflow_datasets, or TFDS's default folder (`tfds build {name}` while online).")
