"""tfds: any TensorFlow Datasets name (`data.name`) with its split names (`data.split: {train: train,
test: test}`), read as (input, label) arrays. An optional dependency (`pip install cnnzoo[tfds]`).
Prepared data is looked for in `data.path`, else <data dir>/tensorflow_datasets, else TFDS's own
default folder; what is not there is downloaded, and a failed download is one clear data error."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cnnzoo.data.interface import DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.locate import explicit_path
from cnnzoo.data.splits import stratified_split
from cnnzoo.data.targets import encode_targets
from cnnzoo.errors import DataError

INSTALL = "TensorFlow Datasets is not installed; `pip install 'cnnzoo[tfds]'` (or tensorflow-datasets) to use dataset: tfds."


def load(spec: DataSpec, req: LoadRequest) -> DatasetSplits:
    train_split, test_split = spec.split or ("train", "test")
    folder = _folder(spec, req.data_dir)
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
    raise DataError("the size of a TFDS dataset is known once it is read")  # memory estimate: not counted


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
