"""Datasets behind one registry, plus the tf.data pipelines that feed them to a model.

Importing this package does not import TensorFlow; loaders and `make_pipeline` do when called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from cnnzoo.data.interface import DATASET_MODULES, DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.registry import dataset_module
from cnnzoo.data.splits import limit_splits, stratified_split
from cnnzoo.errors import DataError

__all__ = ["DATASETS", "DataSpec", "DatasetSplits", "RecordedDataDir", "class_names", "default_scale",
           "load_dataset", "make_pipeline", "resolve_data_dir", "stratified_split"]

Loader = Callable[[DataSpec, LoadRequest], DatasetSplits]

DATASETS = tuple(DATASET_MODULES)
UNSCALED = ("ucr", "uea", "csv", "npz", "npy")  # numbers as they are, unless data.scale says

def get_loader(name: str) -> Loader:
    return dataset_module(name).load


def load_dataset(spec: DataSpec, *, input_shape: Sequence[int], data_dir: Path | None, seed: int,
                 cache_dir: Path | None = None, progress: bool = True, task: str | None = None,
                 standardization: dict | None = None) -> DatasetSplits:
    """Find, read, split (and limit) the dataset `spec` names, shaped for `input_shape`; then take its
    cross-validation fold and standardize it (with `standardization` when a run recorded one)."""
    from dataclasses import replace

    from cnnzoo.data import standardize
    from cnnzoo.data.splits import fold_splits
    from cnnzoo.data.storage import choose_storage

    loader = get_loader(spec.dataset)
    storage = choose_storage(spec, input_shape, data_dir)
    splits = loader(spec, LoadRequest(tuple(input_shape), data_dir, seed, cache_dir, progress, task, storage.stream))
    splits = replace(splits, source=f"{splits.source}; {storage.reason}") if storage.reason else splits
    splits = limit_splits(splits, spec.limit, seed) if spec.limit else splits
    splits = fold_splits(splits, *spec.fold, seed) if spec.fold else splits
    return standardize.apply(splits, standardization) if spec.standardize else splits


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    """The class names `load_dataset` gives this dataset, without reading its examples."""
    return dataset_module(spec.dataset).class_names(spec, data_dir)


def make_pipeline(x: np.ndarray, y: np.ndarray, *, batch_size: int, num_classes: int, one_hot: bool,
                  scale: float | None, shuffle: bool, seed: int, augment: Any = None, first_epoch: int = 0,
                  drop_remainder: bool = False, mix: Any = None, shard: tuple[int, int, int] | None = None,
                  crop: Any = None):
    """A batched, prefetched tf.data.Dataset (endless when shuffled); see `cnnzoo.data.pipeline`."""
    from cnnzoo.data.pipeline import make_pipeline as build

    return build(x, y, batch_size=batch_size, num_classes=num_classes, one_hot=one_hot, scale=scale,
                 shuffle=shuffle, seed=seed, augment=augment, first_epoch=first_epoch,
                 drop_remainder=drop_remainder, mix=mix, shard=shard, crop=crop)


class RecordedDataDir(NamedTuple):
    """The data folder a run's training recorded (runs.folder.RunFolder.recorded_data_dir): `folder`, an
    absolute path as text, or None with `problem` saying why the record in `source` is unusable."""
    folder: str | None
    source: str
    problem: str | None = None


def resolve_data_dir(option: Path | None, recorded: RecordedDataDir | None = None,
                     say: Callable[[str], None] | None = None) -> Path | None:
    """The folder datasets are looked for in: the --data-dir option; else the folder the run was trained
    with (`recorded`), if it exists here; else $CNNZOO_DATA_DIR; else None. A folder named by --data-dir
    or CNNZOO_DATA_DIR must exist; a recorded one that does not is passed over with a note. The recorded
    folder wins over CNNZOO_DATA_DIR, a standing default of the shell: evaluating a run reads the files it
    was trained on. `say`, when given, is told which folder is used and why whenever a record was there
    to decide (with --data-dir, or without a record, nothing is said: the user chose, or nothing changed)."""
    tell = say if say is not None and recorded is not None else (lambda text: None)
    if option:
        return _named_folder(option, "--data-dir", lambda text: None)
    if recorded is not None and recorded.folder is not None and Path(recorded.folder).is_dir():
        standing = os.environ.get("CNNZOO_DATA_DIR")
        if not standing or Path(standing).expanduser().resolve() != Path(recorded.folder).resolve():
            tell(f"data folder: {recorded.folder} (the one training used, recorded in {recorded.source})")
        return Path(recorded.folder)
    if recorded is not None:
        tell(f"{recorded.problem}; it is ignored" if recorded.problem else
             f"the data folder training used, {recorded.folder[:300]} (recorded in {recorded.source}), does not "
             "exist here; pass --data-dir DIR to name the folder that holds the dataset")
    if os.environ.get("CNNZOO_DATA_DIR"):
        return _named_folder(os.environ["CNNZOO_DATA_DIR"], "CNNZOO_DATA_DIR", tell)
    tell("no other data folder (no --data-dir, CNNZOO_DATA_DIR unset): the dataset is looked for through "
         "data.path and the Keras cache")
    return None


def _named_folder(value: str | Path, origin: str, say: Callable[[str], None]) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"the data directory {path} (from {origin}) is not an existing folder; create it or "
                        f"point {origin} at the folder that holds the datasets.")
    say(f"data folder: {path} ({origin})")
    return path


def default_scale(spec: DataSpec) -> float | None:
    """spec.scale if given; else 1/255 for image datasets and None for series, tables and arrays."""
    if spec.scale is not None:
        return spec.scale
    return None if spec.dataset in UNSCALED else 1.0 / 255.0
