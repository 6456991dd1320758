"""`data.standardize: true`: inputs shifted by the training split's mean and divided by its std, per
feature (per channel for images and series); the numbers are recorded in the run folder
(standardize.json) and reused by `eval` so the same transform applies."""

from __future__ import annotations

import json

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from cnnzoo.atomic import atomic_write_json
from cnnzoo.data.interface import DatasetSplits
from cnnzoo.errors import RunError
from cnnzoo.data.streams import refuse_stream
from cnnzoo.safe_read import read_run_file


def fit(x: np.ndarray) -> dict:
    """{"mean", "std"} over every axis but the last (features or channels); std 0 becomes 1."""
    values = np.asarray(x, np.float64).reshape(-1, x.shape[-1]) if x.ndim > 1 else np.asarray(x, np.float64)[:, None]
    std = values.std(axis=0)
    return {"mean": values.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}


def apply(splits: DatasetSplits, stats: dict | None) -> DatasetSplits:
    """All three splits standardized with `stats`, else with statistics fitted on x_train."""
    refuse_stream(splits.x_train, "data.standardize", "Set `data.in_memory: true`, or leave `standardize` out "
                  "(images are scaled by data.scale).")
    stats = stats or fit(splits.x_train)
    return replace(splits, x_train=transform(splits.x_train, stats), x_val=transform(splits.x_val, stats),
                   x_test=transform(splits.x_test, stats), standardization=stats)


def record(path: Path, splits: DatasetSplits) -> None:
    """The statistics written to ``path`` (a run's standardize.json), when the run standardizes its inputs."""
    if splits.standardization is not None:
        atomic_write_json(path, splits.standardization)


def recorded(path: Path) -> dict | None:
    """The statistics a run recorded, or None when it has none; RunError naming the file when it is damaged."""
    path = Path(path)
    if not os.path.lexists(path):
        return None
    text = read_run_file(path)
    try:
        stats = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's recursion
        stats = None
    shapes = [np.shape(stats.get(key)) for key in ("mean", "std")] if isinstance(stats, dict) else []
    numbers = len(shapes) == 2 and shapes[0] == shapes[1] and len(shapes[0]) == 1 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for key in ("mean", "std") for v in stats[key])
    if not numbers:
        raise RunError(f"{path}: is not the statistics cnnzoo records (lists `mean` and `std` of one number per "
                       f"feature). The file is damaged; restore it from the run folder or train the run again.")
    return stats


def for_new_inputs(x: np.ndarray, spec, path: Path) -> np.ndarray:
    """New inputs (predict, explain) standardized with the run's recorded numbers when it trained with
    `data.standardize: true` (``path``: its standardize.json); unchanged otherwise."""
    if spec is None or not spec.standardize:
        return x
    stats = recorded(path)
    if stats is None:
        path = Path(path)
        raise RunError(f"{path.parent}: the run trained with data.standardize: true, but {path.name} is missing, so "
                       f"new inputs cannot be prepared as its training data was. Restore the file from the run folder.")
    return transform(x, stats)


def transform(x: np.ndarray, stats: dict) -> np.ndarray:
    """float32 `x` shifted by stats["mean"] and divided by stats["std"] (per last axis)."""
    mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    return ((np.asarray(x, np.float32) - mean) / std).astype(np.float32)
