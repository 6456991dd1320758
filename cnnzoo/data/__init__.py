"""Datasets behind one registry, plus the tf.data pipelines that feed them to a model.

Importing this package does not import TensorFlow; loaders and `make_pipeline` do when called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from cnnzoo.data.interface import DATASET_MODULES, DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.registry import dataset_module
from cnnzoo.data.splits import limit_splits, stratified_split
from cnnzoo.errors import DataError

__all__ = ["DATASETS", "DataSpec", "DatasetSplits", "class_names", "default_scale", "load_dataset",
           "make_pipeline", "resolve_data_dir", "stratified_split"]

Loader = Callable[[DataSpec, LoadRequest], DatasetSplits]

DATASETS = tuple(DATASET_MODULES)
UNSCALED = ("ucr", "csv", "npz", "npy")  # numbers as they are, unless data.scale says

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


def resolve_data_dir(option: Path | None) -> Path | None:
    """The --data-dir option, else $CNNZOO_DATA_DIR, else None; a named folder must exist."""
    value, origin = (option, "--data-dir") if option else (os.environ.get("CNNZOO_DATA_DIR"), "CNNZOO_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"the data directory {path} (from {origin}) is not an existing folder; create it or "
                        f"point {origin} at the folder that holds the datasets.")
    return path


def default_scale(spec: DataSpec) -> float | None:
    """spec.scale if given; else 1/255 for image datasets and None for series, tables and arrays."""
    if spec.scale is not None:
        return spec.scale
    return None if spec.dataset in UNSCALED else 1.0 / 255.0
