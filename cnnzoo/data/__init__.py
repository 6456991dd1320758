"""Datasets behind one registry, plus the tf.data pipelines that feed them to a model.

Importing this package does not import TensorFlow; loaders and `make_pipeline` do when called.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from cnnzoo.data.interface import DATASET_MODULES, DataSpec, DatasetSplits, LoadRequest
from cnnzoo.data.splits import limit_splits, stratified_split
from cnnzoo.errors import DataError

__all__ = ["DATASETS", "DataSpec", "DatasetSplits", "class_names", "default_scale", "load_dataset",
           "make_pipeline", "resolve_data_dir", "stratified_split"]

Loader = Callable[[DataSpec, LoadRequest], DatasetSplits]

DATASETS = tuple(DATASET_MODULES)

def dataset_module(name: str) -> Any:
    """A dataset's module (its `load`, `size` and `class_names`), imported on first use."""
    if name not in DATASET_MODULES:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}.")
    return importlib.import_module(DATASET_MODULES[name])


def get_loader(name: str) -> Loader:
    return dataset_module(name).load


def load_dataset(spec: DataSpec, *, input_shape: Sequence[int], data_dir: Path | None, seed: int,
                 cache_dir: Path | None = None, progress: bool = True) -> DatasetSplits:
    """Find, read, split (and limit) the dataset `spec` names, shaped for `input_shape`."""
    loader = get_loader(spec.dataset)
    splits = loader(spec, LoadRequest(tuple(input_shape), data_dir, seed, cache_dir, progress))
    return limit_splits(splits, spec.limit, seed) if spec.limit else splits


def class_names(spec: DataSpec, data_dir: Path | None) -> list[str]:
    """The class names `load_dataset` gives this dataset, without reading its examples."""
    return dataset_module(spec.dataset).class_names(spec, data_dir)


def make_pipeline(x: np.ndarray, y: np.ndarray, *, batch_size: int, num_classes: int, one_hot: bool,
                  scale: float | None, shuffle: bool, seed: int, augment: Any = None, first_epoch: int = 0,
                  mix: Any = None):
    """A batched, prefetched tf.data.Dataset (endless when shuffled); see `cnnzoo.data.pipeline`."""
    from cnnzoo.data.pipeline import make_pipeline as build

    return build(x, y, batch_size=batch_size, num_classes=num_classes, one_hot=one_hot, scale=scale,
                 shuffle=shuffle, seed=seed, augment=augment, first_epoch=first_epoch, mix=mix)


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
    """spec.scale if given; else 1/255 for image datasets and None for UCR series."""
    if spec.scale is not None:
        return spec.scale
    return None if spec.dataset == "ucr" else 1.0 / 255.0
